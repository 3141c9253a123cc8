/**
 * The embedded default {@link Store}: one SQLite file through better-sqlite3 (an optional peer
 * dependency of `@tollway/sdk`).
 *
 * Several processes may open the same file: the file is in WAL mode, writers wait `busyTimeoutMs` for
 * each other, and every check-and-update is one SQL statement, so counters stay exact across processes.
 * Revocations made by another process are found by polling a revision counter (one primary-key read
 * per tick, only while someone is subscribed).
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { TollwayError } from '../errors.js';
import { openSqliteFile } from '../internal/sqlite-driver.js';
import type { HoldCharge, Store } from '../server/store.js';
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
  chargedOf,
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

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * The database file (created mode 0600, missing folders 0700), or `':memory:'` for a private
   * in-memory database.
   */
  path: string;
  /** How long a write waits for another connection's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** How often revocations made by other processes are looked for, in ms. Default 250. */
  revocationPollMs?: number;
}

/** A statement whose placeholders are `?`, and which of a query's values each one takes. */
interface AnonymousStatement {
  statement: Database.Statement;
  slots: number[];
}

/**
 * Prepares `text` with its `$n` placeholders rewritten to `?`: better-sqlite3 binds `$n` only from
 * an object (one built per statement, looked up by name in native code), `?` from the values in
 * order, about 0.8 µs less per statement. `slots` lists the value each `?` takes, as a `$n` may
 * appear twice. The SQL text has no `$` in literals.
 */
function prepareAnonymous(db: Database.Database, text: string): AnonymousStatement {
  const slots: number[] = [];
  const anonymous = text.replace(/\$(\d+)/g, (_, n: string) => {
    slots.push(Number(n) - 1);
    return '?';
  });
  return { statement: db.prepare(anonymous), slots };
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(CREATE_SCHEMA_MIGRATIONS);
    const applied = db
      .prepare('SELECT version FROM schema_migrations')
      .pluck()
      .all()
      .map((version) => Number(version));
    const record = db.prepare(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    );
    for (const migration of pendingMigrations(applied)) {
      for (const statement of migration.statements) db.exec(statement);
      record.run(migration.version, migration.name, Date.now());
    }
  }).immediate();
}

/**
 * Creates a {@link Store} on a SQLite file. Call `init()` first: it opens the file, sets WAL mode and
 * runs the migrations. Failures of the database are `store_error`.
 *
 * @example
 * ```ts
 * const store = createSqliteStore({ path: '.tollway/tollway.db' });
 * await store.init();
 * await store.getUsage('tok1'); // { tokenId: 'tok1', uses: 0, spentMsat: 0n, heldUses: 0, heldMsat: 0n }
 * ```
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const { path, busyTimeoutMs = 5000, revocationPollMs = 250 } = options;
  const q = createSqlQueries('');
  const statements = new Map<string, AnonymousStatement>();
  const listeners = createRevocationListeners();
  let db: Database.Database | undefined;
  /** The file opened, by identity; undefined for an in-memory database. */
  let opened: { path: string; dev: number; ino: number } | undefined;
  let lastRevision = 0n;
  let lastPrune = 0;
  let lastSweep = 0;
  let lastLimitPrune = 0;
  let poller: NodeJS.Timeout | undefined;
  /**
   * Runs its argument in a `BEGIN IMMEDIATE` transaction: made once per open database, as
   * better-sqlite3's `transaction()` builds four wrappers each time it is called (~2 µs, on every
   * write).
   */
  let immediate: ((work: () => unknown) => unknown) | undefined;

  function open(): Database.Database {
    if (db === undefined) {
      throw new TollwayError('store_error', 'The SQLite store is not open: call init() first');
    }
    return db;
  }

  /** The prepared statement of `query` and its arguments. */
  function prepare(query: SqlQuery): { statement: Database.Statement; args: unknown[] } {
    let prepared = statements.get(query.text);
    if (prepared === undefined) {
      prepared = prepareAnonymous(open(), query.text);
      statements.set(query.text, prepared);
    }
    const { values } = query;
    return { statement: prepared.statement, args: prepared.slots.map((slot) => values[slot]) };
  }

  function run(query: SqlQuery): SqlRow[] {
    const { statement, args } = prepare(query);
    if (!statement.reader) {
      statement.run(...args);
      return [];
    }
    return statement.all(...args) as SqlRow[];
  }

  /** Runs a statement that returns no rows; returns how many rows it changed. */
  function runCount(query: SqlQuery): number {
    const { statement, args } = prepare(query);
    return statement.run(...args).changes;
  }

  /**
   * Throws `store_error` when the database file is no longer the one opened: deleted, or replaced.
   * SQLite keeps writing to a deleted file it holds open, so counters would silently start from
   * zero at the next start; a `stat` per operation (about a microsecond) finds it first.
   */
  function assertSameFile(): void {
    if (opened === undefined) return;
    const now = statSync(opened.path, { throwIfNoEntry: false });
    if (now === undefined || now.ino !== opened.ino || now.dev !== opened.dev) {
      throw new TollwayError(
        'store_error',
        `The SQLite file ${opened.path} was deleted or replaced while open; restore it and restart (tokens' use counts and single-use claims are in it)`,
      );
    }
  }

  function guarded<T>(work: () => T): T {
    try {
      assertSameFile();
      return work();
    } catch (error) {
      throw toStoreError(error, 'SQLite');
    }
  }

  function transaction<T>(work: () => T): T {
    return guarded(() => {
      immediate ??= open().transaction((inside: () => unknown) => inside()).immediate;
      return immediate(work) as T;
    });
  }

  function currentRevision(): bigint {
    return bigintColumn(firstRow(run(q.currentRevision())), 'value');
  }

  function deliverRevocations(): void {
    if (listeners.size === 0) return;
    const current = currentRevision();
    if (current <= lastRevision) return;
    const rows = run(q.revocationsAfter(lastRevision));
    lastRevision = current;
    for (const row of rows) {
      const revision = bigintColumn(row, 'revision');
      if (revision > lastRevision) lastRevision = revision;
      listeners.emit(toRevocation(row));
    }
  }

  function pruneClaims(now: number): number {
    lastPrune = now;
    return runCount(q.pruneClaims(now));
  }

  /** Forgets full buckets and ended freebie windows, at most once a minute. */
  function pruneLimits(now: number): void {
    if (now - lastLimitPrune < CLAIM_PRUNE_INTERVAL_MS) return;
    lastLimitPrune = now;
    for (const query of q.pruneLimits(now)) run(query);
  }

  /** Releases the holds (of one token, or all) that expired by `now`; how many. In a transaction. */
  function releaseExpired(now: number, tokenId: string | undefined): number {
    if (tokenId === undefined) lastSweep = now;
    const rows = run(q.deleteExpiredHolds(now, tokenId)).map(toHeldRow);
    for (const held of rows) run(q.unholdUsage(held.tokenId, held, NOTHING));
    return rows.length;
  }

  /** Deletes a hold and charges `charge` of it (the rest released); false when it is gone. */
  function unhold(id: string, charge: HoldCharge): boolean {
    const row = run(q.deleteHold(id))[0];
    if (row === undefined) return false;
    const held = toHeldRow(row);
    run(q.unholdUsage(held.tokenId, held, chargedOf(held, charge)));
    return true;
  }

  return {
    async init() {
      if (db !== undefined) return;
      guarded(() => {
        const database = openSqliteFile(Database, path);
        try {
          database.defaultSafeIntegers(true);
          database.pragma(`busy_timeout = ${busyTimeoutMs}`);
          database.pragma('journal_mode = WAL');
          migrate(database);
        } catch (error) {
          database.close();
          throw error;
        }
        db = database;
        if (path !== ':memory:' && path !== '') {
          const { dev, ino } = statSync(path);
          opened = { path: resolve(path), dev, ino };
        }
        lastRevision = currentRevision();
        pruneClaims(Date.now());
      });
    },

    async close() {
      clearInterval(poller);
      poller = undefined;
      statements.clear();
      immediate = undefined;
      db?.close();
      db = undefined;
      opened = undefined;
    },

    async recordChallenges(challenges) {
      for (const c of challenges) assertStorableAmount(c.amountMsat, 'challenge amountMsat');
      const queries = q.insertChallenges(challenges);
      transaction(() => {
        for (const query of queries) run(query);
      });
    },

    async recordSettlement(settlement) {
      assertStorableAmount(settlement.amount, 'settlement amount');
      return guarded(() => run(q.insertSettlement(settlement)).length > 0);
    },

    async listSettlements(query) {
      return guarded(() => run(q.listSettlements(query)).map(toSettlement));
    },

    async revenue(query) {
      return guarded(() => run(q.revenue(query)).map(toRevenueRow));
    },

    async saveToken(token) {
      if (token.initialBalanceMsat !== undefined) {
        assertStorableAmount(token.initialBalanceMsat, 'token initialBalanceMsat');
      }
      guarded(() => run(q.insertToken(token)));
    },

    async getToken(tokenId) {
      return guarded(() => run(q.getToken(tokenId)).map(toTokenRecord)[0]);
    },

    async listTokens(query) {
      return guarded(() => run(q.listTokens(query)).map(toTokenRecord));
    },

    async getUsage(tokenId) {
      return guarded(() => toTokenUsage(tokenId, run(q.getUsage(tokenId))[0]));
    },

    async hold(hold, now) {
      assertHold(hold);
      const held = heldOf(hold);
      const fits =
        held.uses <= (hold.uses?.max ?? Number.MAX_SAFE_INTEGER) &&
        held.amountMsat <= (hold.balance?.initialMsat ?? MAX_STORED_AMOUNT);
      return transaction(() => {
        if (now - lastSweep >= CLAIM_PRUNE_INTERVAL_MS) releaseExpired(now, undefined);
        let row = fits ? run(q.holdUsage(hold))[0] : undefined;
        if (row === undefined && fits && releaseExpired(now, hold.tokenId) > 0) {
          row = run(q.holdUsage(hold))[0];
        }
        if (row !== undefined) run(q.insertHold(hold));
        const usage = toTokenUsage(hold.tokenId, row ?? run(q.getUsage(hold.tokenId))[0]);
        return holdOutcome(usage, row !== undefined);
      });
    },

    async settleHold(id, charge) {
      assertCharge(charge);
      return transaction(() => unhold(id, charge));
    },

    async releaseHold(id) {
      transaction(() => unhold(id, { uses: 0, amountMsat: 0n }));
    },

    async resizeHold(id, resize, now) {
      assertResize(resize);
      return transaction(() => {
        const row = run(q.getHold(id, ''))[0];
        if (row === undefined) return undefined;
        const held = toHeldRow(row);
        if (resizedBy(toHoldExpiry(row), resize)) {
          const usage = toTokenUsage(held.tokenId, run(q.getUsage(held.tokenId))[0]);
          return holdOutcome(usage, held.amountMsat === resize.amountMsat);
        }
        const step = resizeStep(held.amountMsat, resize);
        let usage = run(q.resizeUsage(held.tokenId, step, resize.initialMsat))[0];
        if (usage === undefined && releaseExpired(now, held.tokenId) > 0) {
          if (run(q.getHold(id, ''))[0] === undefined) return undefined;
          usage = run(q.resizeUsage(held.tokenId, step, resize.initialMsat))[0];
        }
        const ok = usage !== undefined;
        let amountMsat = resize.amountMsat;
        if (!ok) {
          const charged = chargeOnlyStep(held.amountMsat, resize);
          usage = run(q.resizeUsage(held.tokenId, charged, resize.initialMsat))[0];
          amountMsat = charged.amountMsat;
        }
        run(q.setHold(id, amountMsat, resize.expiresAt));
        return holdOutcome(toTokenUsage(held.tokenId, usage), ok);
      });
    },

    async takeFreebie(key, allowance, now) {
      assertAllowance(allowance);
      return transaction(() => {
        pruneLimits(now);
        return toFreebieTake(
          run(q.takeFreebie(key, allowance, now))[0],
          () => run(q.freebieResetsAt(key))[0],
          now,
        );
      });
    },

    async advanceBuckets(advances, now) {
      assertAdvances(advances);
      return transaction(() => {
        pruneLimits(now);
        return q.advanceBuckets(advances).flatMap((query) => run(query).map(toBucketClock));
      });
    },

    async pruneExpired(now) {
      return guarded(() => ({
        challenges: runCount(q.pruneChallenges(now)),
        claims: pruneClaims(now),
      }));
    },

    async assertHealthy() {
      guarded(() => run(q.currentRevision()));
    },

    async claim(key, claim, now) {
      return guarded(() => {
        if (now - lastPrune >= CLAIM_PRUNE_INTERVAL_MS) pruneClaims(now);
        return run(q.claim(key, claim, now)).length > 0;
      });
    },

    async confirmClaim(key) {
      guarded(() => run(q.confirmClaim(key)));
    },

    async releaseClaim(key) {
      guarded(() => run(q.releaseClaim(key)));
    },

    async renew(refs, until) {
      transaction(() => {
        if (refs.holds.length > 0) run(q.renewHolds(refs.holds, until));
        if (refs.claims.length > 0) run(q.renewClaims(refs.claims, until));
      });
    },

    async openSession(session) {
      assertStorableAmount(session.depositMsat, 'session depositMsat');
      return guarded(() => run(q.openSession(session)).length > 0);
    },

    async getSession(id) {
      return guarded(() => run(q.getSession(id)).map(toSessionRecord)[0]);
    },

    async creditSession(id, amountMsat) {
      assertStorableAmount(amountMsat, 'amountMsat');
      return guarded(() => run(q.creditSession(id, amountMsat)).length > 0);
    },

    async touchSession(id, at) {
      guarded(() => run(q.touchSession(id, at)));
    },

    async closeSession(id, at) {
      return guarded(() => run(q.closeSession(id, at)).map(toSessionRecord)[0]);
    },

    async recordRefund(id, refund) {
      guarded(() => run(q.recordRefund(id, refund.refundMsat, refund.refundStatus)));
    },

    async listIdleSessions(now, limit) {
      return guarded(() => run(q.listIdleSessions(now, limit)).map(toSessionRecord));
    },

    async creditChannel(channel, amount, reference) {
      assertStorableAmount(amount, 'channel deposit');
      assertCreditReference(reference);
      transaction(() => {
        if (run(q.noteChannelCredit(channel.id, reference)).length === 0) return;
        if (run(q.creditChannel(channel, amount)).length === 0) throw depositOverflow(amount);
      });
    },

    async getChannel(id) {
      return guarded(() => run(q.getChannel(id)).map(toChannelRecord)[0]);
    },

    async acceptVoucher(id, voucher) {
      assertStorableAmount(voucher.max, 'voucher max');
      return guarded(() => run(q.acceptVoucher(id, voucher.max, voucher.signature)).length > 0);
    },

    async noteClaimed(id, claimed) {
      assertStorableAmount(claimed, 'claimed');
      guarded(() => run(q.noteClaimed(id, claimed)));
    },

    async noteRefunded(id, refunded) {
      assertStorableAmount(refunded, 'refunded');
      guarded(() => run(q.noteRefunded(id, refunded)));
    },

    async noteWithdrawal(id, requestedAt) {
      assertCount(requestedAt, 'withdrawal time');
      guarded(() => run(q.noteWithdrawal(id, requestedAt)));
    },

    async listClaimableChannels(limit) {
      return guarded(() => run(q.listClaimableChannels(limit)).map(toChannelRecord));
    },

    async revoke(tokenId, reason) {
      const inserted = transaction(() => {
        const revision = bigintColumn(firstRow(run(q.nextRevision())), 'value');
        return run(q.insertRevocation(tokenId, reason, Date.now(), revision)).length > 0;
      });
      if (inserted) guarded(deliverRevocations);
    },

    async listRevocations() {
      return guarded(() => run(q.listRevocations()).map(toRevocation));
    },

    async readDocument(name) {
      return guarded(() => run(q.readDocument(name)).map(toStoredDocument)[0]);
    },

    async writeDocument(name, body, revision) {
      const written = guarded(() => run(q.writeDocument(name, body, revision))[0]);
      return written === undefined ? undefined : toDocumentRevision(written);
    },

    subscribeRevocations(listener) {
      if (listeners.size === 0) {
        if (db !== undefined) lastRevision = guarded(currentRevision);
        poller = setInterval(() => {
          try {
            deliverRevocations();
          } catch {
            // A busy or closing database: the next tick tries again.
          }
        }, revocationPollMs);
        poller.unref();
      }
      const remove = listeners.add(listener);
      return () => {
        remove();
        if (listeners.size === 0) {
          clearInterval(poller);
          poller = undefined;
        }
      };
    },
  };
}
