import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isTollwayError } from '../../src/errors.js';
import type { Revocation } from '../../src/server/store.js';
import { createPostgresStore, type PostgresStoreOptions } from '../../src/stores/postgres.js';
import { startTestPostgres } from '../support/postgres.js';
import { claimUntil, describeStoreSuite, spend } from './store-suite.js';

const postgres = await startTestPostgres();
afterAll(async () => {
  await postgres?.stop();
});

if (postgres === undefined) {
  describe.skip('postgres store: SKIPPED, PostgreSQL is unavailable (see the warning above)', () => {
    it('runs once PostgreSQL is available', () => {});
  });
} else {
  const url = await postgres.createDatabase();
  let schemas = 0;
  const freshSchema = () => {
    schemas += 1;
    return `test_${schemas}`;
  };

  async function open(options: PostgresStoreOptions) {
    const store = createPostgresStore(options);
    await store.init();
    return store;
  }

  /** Runs `work` with a plain client on the test database. */
  async function inspect<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  describeStoreSuite('postgres', async () => {
    const schema = freshSchema();
    return {
      store: await open({ connectionString: url, schema }),
      openPeer: () => open({ connectionString: url, schema }),
    };
  });

  describe('postgres store specifics', () => {
    it('a connection that fails while a transaction holds it fails that call, not the process', async () => {
      // PostgreSQL shutting down ends every connection ('terminating connection due to
      // administrator command'): pg then emits 'error' on a client checked out of the pool.
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on('error', () => {});
      const store = await open({ pool, schema: freshSchema() });
      const now = Date.now();
      const balance = { amountMsat: 100n, initialMsat: 1000n };
      await store.hold({ id: 'lease', tokenId: 't', balance, expiresAt: now + 60_000 }, now);
      const dropped = new Error('terminating connection due to administrator command');
      pool.once('acquire', (client) => {
        setImmediate(() => client.emit('error', dropped));
      });
      const resize = { chargeMsat: 10n, amountMsat: 100n, initialMsat: 1000n };
      await store
        .resizeHold('lease', { ...resize, expiresAt: now + 60_001 }, now)
        .catch((error: unknown) => expect(isTollwayError(error, 'store_error')).toBe(true));
      // The next call gets a fresh connection.
      expect(await store.getUsage('t')).toMatchObject({ heldMsat: 100n });
      await store.close();
      await pool.end();
    });

    it('instances that init a fresh schema together all succeed (advisory lock)', async () => {
      const schema = freshSchema();
      const stores = Array.from({ length: 4 }, () =>
        createPostgresStore({ connectionString: url, schema, maxConnections: 2 }),
      );
      await Promise.all(stores.map((s) => s.init()));
      await stores[0]!.recordSettlement({
        reference: 'r',
        service: 'api',
        protocol: 'l402',
        amount: 1n,
        unit: 'msat',
        settledAt: 1,
      });
      expect(await stores[3]!.listSettlements({})).toHaveLength(1);
      await Promise.all(stores.map((s) => s.close()));
      const applied = await inspect((c) =>
        c.query(`SELECT version, name FROM ${schema}.schema_migrations`),
      );
      expect(applied.rows).toStrictEqual([
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

    it('keeps its tables in the "tollway" schema by default, with BIGINT money columns', async () => {
      await (await open({ connectionString: url })).close();
      const columns = await inspect((c) =>
        c.query(
          `SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'tollway' AND column_name IN ('amount', 'amount_msat', 'spent_msat', 'initial_balance_msat')
           ORDER BY table_name, column_name`,
        ),
      );
      expect(columns.rows).toStrictEqual([
        { table_name: 'challenges', column_name: 'amount_msat', data_type: 'bigint' },
        { table_name: 'holds', column_name: 'amount_msat', data_type: 'bigint' },
        { table_name: 'settlements', column_name: 'amount', data_type: 'bigint' },
        { table_name: 'token_usage', column_name: 'spent_msat', data_type: 'bigint' },
        { table_name: 'tokens', column_name: 'initial_balance_msat', data_type: 'bigint' },
      ]);
    });

    it('reads BIGINT exactly even when the application parses int8 as a float globally', async () => {
      const previous = pg.types.getTypeParser(pg.types.builtins.INT8);
      pg.types.setTypeParser(pg.types.builtins.INT8, Number.parseFloat);
      try {
        const store = await open({ connectionString: url, schema: freshSchema() });
        await spend(store, 't', 2n ** 62n + 1n, 2n ** 63n - 1n);
        expect(await store.getUsage('t')).toMatchObject({ spentMsat: 2n ** 62n + 1n });
        await store.close();
      } finally {
        pg.types.setTypeParser(pg.types.builtins.INT8, previous);
      }
    });

    it('uses a pool it is given, and leaves it open on close', async () => {
      const pool = new pg.Pool({ connectionString: url, max: 3 });
      const schema = freshSchema();
      const store = await open({ pool, schema });
      const peer = await open({ connectionString: url, schema });
      const heard: Revocation[] = [];
      store.subscribeRevocations((r) => heard.push(r));
      await peer.revoke('t');
      await vi.waitFor(() => expect(heard).toHaveLength(1), { timeout: 1000, interval: 10 });
      await Promise.all([store.close(), peer.close()]);
      expect((await pool.query('SELECT 1 AS one')).rows).toStrictEqual([{ one: 1 }]);
      await pool.end();
    });

    it('the LISTEN connection reconnects after it is killed and catches up', async () => {
      const schema = freshSchema();
      const store = await open({ connectionString: url, schema });
      const peer = await open({ connectionString: url, schema });
      const heard: Revocation[] = [];
      store.subscribeRevocations((r) => heard.push(r));
      const killed = await inspect((c) =>
        c.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE application_name = 'tollway-revocations' AND datname = current_database()`,
        ),
      );
      expect(killed.rowCount).toBeGreaterThanOrEqual(2);
      await peer.revoke('while-down');
      await vi.waitFor(() => expect(heard.map((r) => r.tokenId)).toStrictEqual(['while-down']), {
        timeout: 3000,
        interval: 20,
      });
      await peer.revoke('after');
      await vi.waitFor(
        () => expect(heard.map((r) => r.tokenId)).toStrictEqual(['while-down', 'after']),
        { timeout: 1000, interval: 10 },
      );
      await Promise.all([store.close(), peer.close()]);
    });

    it('close() ends every connection it opened', async () => {
      const count = async () =>
        inspect(async (c) => {
          const result = await c.query(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()',
          );
          return Number(result.rows[0]?.n);
        });
      const before = await count();
      const store = await open({ connectionString: url, schema: freshSchema() });
      store.subscribeRevocations(() => {});
      await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          store.claim(`k${i}`, claimUntil(Date.now() + 1000), Date.now()),
        ),
      );
      expect(await count()).toBeGreaterThan(before);
      await store.close();
      await vi.waitFor(async () => expect(await count()).toBe(before), { timeout: 2000 });
    });

    it('refuses a schema migrated by a newer Tollway, and an unreachable server (health too), with store_error', async () => {
      const schema = freshSchema();
      await (await open({ connectionString: url, schema })).close();
      await inspect((c) =>
        c.query(`INSERT INTO ${schema}.schema_migrations VALUES (999, 'future', 0)`),
      );
      const newer = createPostgresStore({ connectionString: url, schema });
      const newerError = await newer.init().catch((e: unknown) => e);
      await newer.close();
      expect(isTollwayError(newerError, 'store_error')).toBe(true);
      expect(String(newerError)).toContain('newer');

      const nowhere = createPostgresStore({ connectionString: 'postgres://u:p@127.0.0.1:1/db' });
      const unreachable = await nowhere.init().catch((e: unknown) => e);
      const health = await nowhere.assertHealthy().catch((e: unknown) => e);
      await nowhere.close();
      expect(isTollwayError(unreachable, 'store_error')).toBe(true);
      expect(isTollwayError(health, 'store_error')).toBe(true);
    });
  });
}
