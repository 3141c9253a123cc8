/**
 * The {@link Store} for several gateway instances: PostgreSQL through `pg` (an optional peer
 * dependency of `@tollway/sdk`).
 *
 * Tables live in their own schema (default `tollway`). Every check-and-update is one SQL statement, so
 * counters stay exact across instances. Migrations run under a transaction-scoped advisory lock, so
 * instances may start together. Revocations are announced with NOTIFY and heard on one dedicated
 * LISTEN connection per instance, which reconnects by itself and then catches up from a revision
 * counter, so none is missed. BIGINT and NUMERIC values are parsed to bigint per query, whatever
 * global type parsers the application set.
 */
import pg from 'pg';
import { bytesToHex } from '../internal/bytes.js';
import { sha256 } from '../internal/crypto.js';
import type { Hold, HoldCharge, Store } from '../server/store.js';
import {
  assertAdvances,
  assertAllowance,
  assertCharge,
  assertCount,
  assertCreditReference,
  assertHold,
  assertResize,
  assertStorableAmount,
  CLAIM_PRUNE_INTERVAL_MS,
  chargeOnlyStep,
  createRevocationListeners,
  depositOverflow,
  heldOf,
  holdOutcome,
  MAX_STORED_AMOUNT,
  NOTHING,
  resizedBy,
  resizeStep,
  toStoreError,
} from './common.js';
import { CREATE_SCHEMA_MIGRATIONS, pendingMigrations } from './migrations.js';
import {
  bigintColumn,
  createSqlQueries,
  firstRow,
  type SqlQueries,
  type SqlQuery,
  type SqlRow,
  toBucketClock,
  toChannelRecord,
  toDocumentRevision,
  toFreebieTake,
  toHeldRow,
  toHoldExpiry,
  toRevenueRow,
  toRevocation,
  toSessionRecord,
  toSettlement,
  toStoredDocument,
  toTokenRecord,
  toTokenUsage,
} from './sql.js';

/** Options of {@link createPostgresStore}: a connection string (the store owns its pool) or a pool. */
export type PostgresStoreOptions = {
  /** Schema that holds the tables; created when absent. Default `tollway`. */
  schema?: string;
} & (
  | {
      /** `postgres://user:password@host:5432/database`; the store creates its pool and ends it on close. */
      connectionString: string;
      /** Connections in the store's pool. Default 10. */
      maxConnections?: number;
    }
  | {
      /** An existing pool. The store never ends it; the LISTEN connection uses the same settings. */
      pool: pg.Pool;
    }
);

/** Key of the advisory lock that serialises migrations: the bytes of "tollway". */
const MIGRATION_LOCK = '32777976291041657';
const LISTENER_APPLICATION_NAME = 'tollway-revocations';
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/** Parses every integer and NUMERIC column to bigint, never through a float. */
const types = new pg.TypeOverrides();
for (const oid of [
  pg.types.builtins.INT2,
  pg.types.builtins.INT4,
  pg.types.builtins.INT8,
  pg.types.builtins.NUMERIC,
]) {
  types.setTypeParser(oid, (text: string) => BigInt(text));
}

async function run(client: pg.Pool | pg.PoolClient, query: SqlQuery): Promise<SqlRow[]> {
  return (await execute(client, query)).rows;
}

/** Runs a statement; its rows and how many rows it changed. */
async function execute(
  client: pg.Pool | pg.PoolClient,
  query: SqlQuery,
): Promise<pg.QueryResult<SqlRow>> {
  try {
    return await client.query<SqlRow>({ text: query.text, values: query.values, types });
  } catch (error) {
    throw toStoreError(error, 'PostgreSQL');
  }
}

/**
 * The reservation statements, each one statement (so one round trip, atomic) through PostgreSQL's
 * data-modifying CTEs: SQLite runs the same steps as several statements in one transaction.
 */
function createReservationQueries(prefix: string, q: SqlQueries) {
  const holds = `${prefix}holds`;
  const usage = `${prefix}token_usage`;
  return {
    /** Holds the usage and records the hold; returns the new counters only when it fit. */
    hold(hold: Hold): SqlQuery {
      const held = q.holdUsage(hold);
      return {
        text: `WITH u AS (${held.text}),
          h AS (INSERT INTO ${holds} (hold_id, token_id, uses, amount_msat, expires_at)
            SELECT $6, $1, $2, $3, $7 FROM u)
          SELECT uses, spent_msat, held_uses, held_msat FROM u`,
        values: [...held.values, hold.id, BigInt(hold.expiresAt)],
      };
    },

    /** Deletes a hold and charges `charge` of it (at most what it held); a row when it existed. */
    unhold(id: string, charge: HoldCharge): SqlQuery {
      return {
        text: `WITH gone AS (DELETE FROM ${holds} WHERE hold_id = $1 RETURNING token_id, uses, amount_msat)
          UPDATE ${usage} AS u SET held_uses = u.held_uses - gone.uses,
            held_msat = u.held_msat - gone.amount_msat,
            uses = u.uses + LEAST(CAST($2 AS BIGINT), gone.uses),
            spent_msat = u.spent_msat + LEAST(CAST($3 AS BIGINT), gone.amount_msat)
          FROM gone WHERE u.token_id = gone.token_id RETURNING u.token_id`,
        values: [id, BigInt(charge.uses), charge.amountMsat],
      };
    },

    /** Releases the holds (of one token, or all) that expired by `now`; a row per token. */
    releaseExpired(now: number, tokenId: string | undefined): SqlQuery {
      const expired = q.deleteExpiredHolds(now, tokenId);
      return {
        text: `WITH gone AS (${expired.text}),
          sums AS (SELECT token_id, SUM(uses) AS uses, SUM(amount_msat) AS msat FROM gone GROUP BY token_id)
          UPDATE ${usage} AS u SET held_uses = u.held_uses - sums.uses, held_msat = u.held_msat - sums.msat
          FROM sums WHERE u.token_id = sums.token_id RETURNING u.token_id`,
        values: expired.values,
      };
    },
  };
}

/**
 * Creates a {@link Store} on PostgreSQL. Call `init()` first: it creates the schema, runs the
 * migrations and starts listening for revocations. `close()` stops listening and ends the pool the
 * store created. Failures of the database are `store_error`.
 *
 * @example
 * ```ts
 * const store = createPostgresStore({ connectionString: process.env.DATABASE_URL ?? '' });
 * await store.init();
 * await store.recordSettlement({ reference, service: 'api', protocol: 'l402', amount: 10_000n, unit: 'msat', settledAt: Date.now() });
 * ```
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const schema = options.schema ?? 'tollway';
  const ownPool = !('pool' in options);
  const pool =
    'pool' in options
      ? options.pool
      : new pg.Pool({
          connectionString: options.connectionString,
          max: options.maxConnections ?? 10,
        });
  // An idle connection that drops is discarded by the pool; the next query opens a new one.
  if (ownPool) pool.on('error', () => {});
  const prefix = `${pg.escapeIdentifier(schema)}.`;
  const q = createSqlQueries(prefix);
  const reservations = createReservationQueries(prefix, q);
  const channel = `tollway_revocations_${bytesToHex(sha256(schema)).slice(0, 16)}`;
  const listeners = createRevocationListeners();
  let ready: Promise<void> | undefined;
  let closed = false;
  let listener: pg.Client | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconnectDelay = RECONNECT_MIN_MS;
  let lastRevision = 0n;
  let lastPrune = 0;
  let lastSweep = 0;
  let lastLimitPrune = 0;
  let delivery: Promise<void> = Promise.resolve();

  async function transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw toStoreError(error, 'PostgreSQL');
    }
    let broken = false;
    // The connection may drop between two statements (PostgreSQL shutting down): the client then
    // emits 'error', which would end the process with no listener; the next statement fails.
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await run(client, { text: 'BEGIN', values: [] });
      const result = await work(client);
      await run(client, { text: 'COMMIT', values: [] });
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw toStoreError(error, 'PostgreSQL');
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async function migrate(): Promise<void> {
    await transaction(async (client) => {
      const quoted = pg.escapeIdentifier(schema);
      await run(client, { text: 'SELECT pg_advisory_xact_lock($1)', values: [MIGRATION_LOCK] });
      await run(client, { text: `CREATE SCHEMA IF NOT EXISTS ${quoted}`, values: [] });
      await run(client, { text: `SET LOCAL search_path TO ${quoted}`, values: [] });
      await run(client, { text: CREATE_SCHEMA_MIGRATIONS, values: [] });
      const rows = await run(client, { text: 'SELECT version FROM schema_migrations', values: [] });
      const applied = rows.map((row) => Number(bigintColumn(row, 'version')));
      for (const migration of pendingMigrations(applied)) {
        for (const statement of migration.statements) {
          await run(client, { text: statement, values: [] });
        }
        await run(client, {
          text: 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
          values: [BigInt(migration.version), migration.name, BigInt(Date.now())],
        });
      }
    });
  }

  /** Emits the revocations after `lastRevision`, one fetch at a time. A failed fetch is retried by the next call. */
  function deliverRevocations(): Promise<void> {
    delivery = delivery
      .then(async () => {
        for (const row of await run(pool, q.revocationsAfter(lastRevision))) {
          const revision = bigintColumn(row, 'revision');
          if (revision <= lastRevision) continue;
          lastRevision = revision;
          listeners.emit(toRevocation(row));
        }
      })
      .catch(() => {});
    return delivery;
  }

  function scheduleReconnect(): void {
    if (closed || reconnectTimer !== undefined) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connectListener().catch(scheduleReconnect);
    }, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  async function connectListener(): Promise<void> {
    const client = new pg.Client({
      ...('pool' in options
        ? options.pool.options
        : { connectionString: options.connectionString }),
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
    });
    // A failure while connecting rejects below; on a live connection it ends the client (see 'end').
    client.on('error', () => {
      client.end().catch(() => {});
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      client.end().catch(() => {});
      throw toStoreError(error, 'PostgreSQL');
    }
    if (closed) {
      await client.end();
      return;
    }
    client.on('notification', () => {
      void deliverRevocations();
    });
    client.on('end', () => {
      if (listener === client) listener = undefined;
      scheduleReconnect();
    });
    listener = client;
    reconnectDelay = RECONNECT_MIN_MS;
    await deliverRevocations();
  }

  async function pruneClaims(now: number): Promise<number> {
    lastPrune = now;
    return (await execute(pool, q.pruneClaims(now))).rowCount ?? 0;
  }

  /** Forgets full buckets and ended freebie windows, at most once a minute. */
  async function pruneLimits(now: number): Promise<void> {
    if (now - lastLimitPrune < CLAIM_PRUNE_INTERVAL_MS) return;
    lastLimitPrune = now;
    for (const query of q.pruneLimits(now)) await run(pool, query);
  }

  async function start(): Promise<void> {
    await migrate();
    lastRevision = bigintColumn(firstRow(await run(pool, q.currentRevision())), 'value');
    await pruneClaims(Date.now());
    await connectListener();
  }

  return {
    init() {
      ready ??= start().catch((error: unknown) => {
        ready = undefined;
        throw toStoreError(error, 'PostgreSQL');
      });
      return ready;
    },

    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => {});
      await delivery;
      if (ownPool && !pool.ended) await pool.end();
    },

    async recordChallenges(challenges) {
      for (const c of challenges) assertStorableAmount(c.amountMsat, 'challenge amountMsat');
      for (const query of q.insertChallenges(challenges)) await run(pool, query);
    },

    async recordSettlement(settlement) {
      assertStorableAmount(settlement.amount, 'settlement amount');
      return (await run(pool, q.insertSettlement(settlement))).length > 0;
    },

    async listSettlements(query) {
      return (await run(pool, q.listSettlements(query))).map(toSettlement);
    },

    async revenue(query) {
      return (await run(pool, q.revenue(query))).map(toRevenueRow);
    },

    async saveToken(token) {
      if (token.initialBalanceMsat !== undefined) {
        assertStorableAmount(token.initialBalanceMsat, 'token initialBalanceMsat');
      }
      await run(pool, q.insertToken(token));
    },

    async getToken(tokenId) {
      return (await run(pool, q.getToken(tokenId))).map(toTokenRecord)[0];
    },

    async listTokens(query) {
      return (await run(pool, q.listTokens(query))).map(toTokenRecord);
    },

    async getUsage(tokenId) {
      return toTokenUsage(tokenId, (await run(pool, q.getUsage(tokenId)))[0]);
    },

    async hold(hold, now) {
      assertHold(hold);
      const held = heldOf(hold);
      const fits =
        held.uses <= (hold.uses?.max ?? Number.MAX_SAFE_INTEGER) &&
        held.amountMsat <= (hold.balance?.initialMsat ?? MAX_STORED_AMOUNT);
      if (now - lastSweep >= CLAIM_PRUNE_INTERVAL_MS) {
        lastSweep = now;
        await run(pool, reservations.releaseExpired(now, undefined));
      }
      let row = fits ? (await run(pool, reservations.hold(hold)))[0] : undefined;
      if (row === undefined && fits) {
        const released = await run(pool, reservations.releaseExpired(now, hold.tokenId));
        if (released.length > 0) row = (await run(pool, reservations.hold(hold)))[0];
      }
      const usage = toTokenUsage(
        hold.tokenId,
        row ?? (await run(pool, q.getUsage(hold.tokenId)))[0],
      );
      return holdOutcome(usage, row !== undefined);
    },

    async settleHold(id, charge) {
      assertCharge(charge);
      return (await run(pool, reservations.unhold(id, charge))).length > 0;
    },

    async releaseHold(id) {
      await run(pool, reservations.unhold(id, NOTHING));
    },

    async resizeHold(id, resize, now) {
      assertResize(resize);
      return transaction(async (client) => {
        // The row lock keeps another instance from releasing the hold (expired) meanwhile.
        const row = (await run(client, q.getHold(id, 'FOR UPDATE')))[0];
        if (row === undefined) return undefined;
        const held = toHeldRow(row);
        if (resizedBy(toHoldExpiry(row), resize)) {
          const usage = (await run(client, q.getUsage(held.tokenId)))[0];
          return holdOutcome(
            toTokenUsage(held.tokenId, usage),
            held.amountMsat === resize.amountMsat,
          );
        }
        const step = resizeStep(held.amountMsat, resize);
        const resizeUsage = q.resizeUsage(held.tokenId, step, resize.initialMsat);
        let usage = (await run(client, resizeUsage))[0];
        if (usage === undefined) {
          const released = await run(client, reservations.releaseExpired(now, held.tokenId));
          if (released.length > 0) {
            if ((await run(client, q.getHold(id, '')))[0] === undefined) return undefined;
            usage = (await run(client, resizeUsage))[0];
          }
        }
        const ok = usage !== undefined;
        let amountMsat = resize.amountMsat;
        if (!ok) {
          const charged = chargeOnlyStep(held.amountMsat, resize);
          usage = (await run(client, q.resizeUsage(held.tokenId, charged, resize.initialMsat)))[0];
          amountMsat = charged.amountMsat;
        }
        await run(client, q.setHold(id, amountMsat, resize.expiresAt));
        return holdOutcome(toTokenUsage(held.tokenId, usage), ok);
      });
    },

    async takeFreebie(key, allowance, now) {
      assertAllowance(allowance);
      await pruneLimits(now);
      const granted = (await run(pool, q.takeFreebie(key, allowance, now)))[0];
      const window =
        granted === undefined ? (await run(pool, q.freebieResetsAt(key)))[0] : undefined;
      return toFreebieTake(granted, () => window, now);
    },

    async advanceBuckets(advances, now) {
      assertAdvances(advances);
      await pruneLimits(now);
      const clocks = [];
      for (const query of q.advanceBuckets(advances)) {
        clocks.push(...(await run(pool, query)).map(toBucketClock));
      }
      return clocks;
    },

    async pruneExpired(now) {
      const challenges = (await execute(pool, q.pruneChallenges(now))).rowCount ?? 0;
      return { challenges, claims: await pruneClaims(now) };
    },

    async assertHealthy() {
      await run(pool, q.currentRevision());
    },

    async claim(key, claim, now) {
      if (now - lastPrune >= CLAIM_PRUNE_INTERVAL_MS) await pruneClaims(now);
      return (await run(pool, q.claim(key, claim, now))).length > 0;
    },

    async confirmClaim(key) {
      await run(pool, q.confirmClaim(key));
    },

    async releaseClaim(key) {
      await run(pool, q.releaseClaim(key));
    },

    async renew(refs, until) {
      if (refs.holds.length > 0) await run(pool, q.renewHolds(refs.holds, until));
      if (refs.claims.length > 0) await run(pool, q.renewClaims(refs.claims, until));
    },

    async openSession(session) {
      assertStorableAmount(session.depositMsat, 'session depositMsat');
      return (await run(pool, q.openSession(session))).length > 0;
    },

    async getSession(id) {
      return (await run(pool, q.getSession(id))).map(toSessionRecord)[0];
    },

    async creditSession(id, amountMsat) {
      assertStorableAmount(amountMsat, 'amountMsat');
      return (await run(pool, q.creditSession(id, amountMsat))).length > 0;
    },

    async touchSession(id, at) {
      await run(pool, q.touchSession(id, at));
    },

    async closeSession(id, at) {
      return (await run(pool, q.closeSession(id, at))).map(toSessionRecord)[0];
    },

    async recordRefund(id, refund) {
      await run(pool, q.recordRefund(id, refund.refundMsat, refund.refundStatus));
    },

    async listIdleSessions(now, limit) {
      return (await run(pool, q.listIdleSessions(now, limit))).map(toSessionRecord);
    },

    async creditChannel(channel, amount, reference) {
      assertStorableAmount(amount, 'channel deposit');
      assertCreditReference(reference);
      await transaction(async (client) => {
        if ((await run(client, q.noteChannelCredit(channel.id, reference))).length === 0) return;
        const credited = await run(client, q.creditChannel(channel, amount));
        if (credited.length === 0) throw depositOverflow(amount);
      });
    },

    async getChannel(id) {
      return (await run(pool, q.getChannel(id))).map(toChannelRecord)[0];
    },

    async acceptVoucher(id, voucher) {
      assertStorableAmount(voucher.max, 'voucher max');
      return (await run(pool, q.acceptVoucher(id, voucher.max, voucher.signature))).length > 0;
    },

    async noteClaimed(id, claimed) {
      assertStorableAmount(claimed, 'claimed');
      await run(pool, q.noteClaimed(id, claimed));
    },

    async noteRefunded(id, refunded) {
      assertStorableAmount(refunded, 'refunded');
      await run(pool, q.noteRefunded(id, refunded));
    },

    async noteWithdrawal(id, requestedAt) {
      assertCount(requestedAt, 'withdrawal time');
      await run(pool, q.noteWithdrawal(id, requestedAt));
    },

    async listClaimableChannels(limit) {
      return (await run(pool, q.listClaimableChannels(limit))).map(toChannelRecord);
    },

    async revoke(tokenId, reason) {
      const inserted = await transaction(async (client) => {
        const revision = bigintColumn(firstRow(await run(client, q.nextRevision())), 'value');
        const rows = await run(client, q.insertRevocation(tokenId, reason, Date.now(), revision));
        if (rows.length === 0) return false;
        await run(client, {
          text: 'SELECT pg_notify($1, $2)',
          values: [channel, revision.toString()],
        });
        return true;
      });
      if (inserted) await deliverRevocations();
    },

    async listRevocations() {
      return (await run(pool, q.listRevocations())).map(toRevocation);
    },

    subscribeRevocations(listener) {
      return listeners.add(listener);
    },

    async readDocument(name) {
      return (await run(pool, q.readDocument(name))).map(toStoredDocument)[0];
    },

    async writeDocument(name, body, revision) {
      const written = (await run(pool, q.writeDocument(name, body, revision)))[0];
      return written === undefined ? undefined : toDocumentRevision(written);
    },
  };
}
