import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { isTollwayError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStoreOptions } from '../../src/stores/sqlite.js';
import { claimUntil, describeStoreSuite, spend, use } from './store-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A database path in a directory that does not exist yet. */
function freshPath(): string {
  files += 1;
  return join(dir, `db-${files}`, 'nested', 'tollway.db');
}

async function open(options: SqliteStoreOptions) {
  const store = createSqliteStore(options);
  await store.init();
  return store;
}

/** Runs `work` on a plain better-sqlite3 connection to `path`. */
function inspect<T>(path: string, work: (db: Database.Database) => T): T {
  const db = new Database(path);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

describeStoreSuite('sqlite', async () => {
  const path = freshPath();
  return { store: await open({ path }), openPeer: () => open({ path }) };
});

describeStoreSuite('sqlite :memory:', async () => ({ store: await open({ path: ':memory:' }) }));

describe('sqlite store specifics', () => {
  it('creates the file private (0600, new folders 0700), in WAL mode, and records the migrations', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.close();
    expect(existsSync(path)).toBe(true);
    expect((statSync(path).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(dirname(path)).mode & 0o777).toString(8)).toBe('700');
    inspect(path, (db) => {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare('SELECT version, name FROM schema_migrations').all()).toStrictEqual([
        { version: 1, name: 'initial' },
        { version: 2, name: 'reservations' },
        { version: 3, name: 'challenges_expires_at' },
        { version: 4, name: 'sessions' },
        { version: 5, name: 'shared_limits' },
        { version: 6, name: 'documents' },
        { version: 7, name: 'x402_channels' },
        { version: 8, name: 'x402_channel_refunds' },
        { version: 9, name: 'holds_drop_expires_at_index' },
        { version: 10, name: 'x402_channel_credits' },
      ]);
    });
  });

  it('stores amounts as SQLite integers, never floats', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.recordSettlement({
      reference: 'r',
      service: 'api',
      protocol: 'l402',
      amount: 2n ** 63n - 1n,
      unit: 'msat',
      settledAt: 1,
    });
    await spend(store, 't', 2n ** 60n, 2n ** 62n);
    await store.close();
    inspect(path, (db) => {
      const types = db
        .prepare(
          'SELECT typeof(amount) AS a, typeof(settled_at) AS b FROM settlements UNION ALL SELECT typeof(spent_msat), typeof(uses) FROM token_usage',
        )
        .all();
      expect(types).toStrictEqual([
        { a: 'integer', b: 'integer' },
        { a: 'integer', b: 'integer' },
      ]);
    });
  });

  it('instances that init the same fresh file together both succeed, and a reopen keeps data', async () => {
    const path = freshPath();
    const a = createSqliteStore({ path });
    const b = createSqliteStore({ path });
    await Promise.all([a.init(), b.init()]);
    await use(a, 't', 2, 5);
    await Promise.all([a.close(), b.close()]);
    const reopened = await open({ path });
    expect(await reopened.getUsage('t')).toMatchObject({ uses: 2 });
    await reopened.close();
  });

  it('waits busyTimeoutMs for another writer, then fails with store_error', async () => {
    const path = freshPath();
    const store = await open({ path, busyTimeoutMs: 200 });
    const writer = new Database(path);
    writer.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    const error = await store
      .claim('k', claimUntil(Date.now() + 1000), Date.now())
      .catch((e: unknown) => e);
    const waited = performance.now() - started;
    writer.exec('ROLLBACK');
    writer.close();
    expect(isTollwayError(error, 'store_error')).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(180);
    expect(await store.claim('k', claimUntil(Date.now() + 1000), Date.now())).toBe(true);
    await store.close();
  });

  it('deletes expired single-use claims when it opens', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.claim('expired', claimUntil(Date.now() - 1), Date.now());
    await store.claim('live', claimUntil(Date.now() + 60_000), Date.now());
    await store.close();
    await (await open({ path })).close();
    inspect(path, (db) => {
      expect(db.prepare('SELECT claim_key FROM claims').pluck().all()).toStrictEqual(['live']);
    });
  });

  it('fails health and every operation once its file is deleted or replaced while open', async () => {
    for (const replace of [false, true]) {
      const path = freshPath();
      const store = await open({ path });
      const now = Date.now();
      const claim = { expiresAt: now + 60_000, heldUntil: now + 60_000 };
      expect(await store.claim('proof', claim, now)).toBe(true);
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      if (replace) await (await open({ path })).close();
      const health = await store.assertHealthy().catch((e: unknown) => e);
      expect(isTollwayError(health, 'store_error')).toBe(true);
      expect(String(health)).toContain('deleted or replaced');
      const again = await store.claim('proof', claim, now).catch((e: unknown) => e);
      expect(isTollwayError(again, 'store_error')).toBe(true);
      await store.close();
    }
  });

  it('refuses a database migrated by a newer Tollway, and use before init()', async () => {
    const path = freshPath();
    await (await open({ path })).close();
    inspect(path, (db) => {
      db.prepare("INSERT INTO schema_migrations VALUES (999, 'future', 0)").run();
    });
    const store = createSqliteStore({ path });
    const initError = await store.init().catch((e: unknown) => e);
    expect(isTollwayError(initError, 'store_error')).toBe(true);
    expect(String(initError)).toContain('newer');
    const useError = await store.getUsage('t').catch((e: unknown) => e);
    expect(isTollwayError(useError, 'store_error')).toBe(true);
  });
});
