/**
 * The agent's default {@link ClientStore}: one SQLite file (`~/.tollway/agent.sqlite` unless told
 * otherwise) holding budget holds and spend, the kill switches and the pause, the ledger (payments, draws,
 * releases, refunds), cached credentials, payment sessions and x402 channels (./sqlite-channels.ts).
 * A file of an older schema is migrated when opened.
 *
 * Several processes of one agent may share the file: it is in WAL mode, writers wait for each other
 * (`busy_timeout`), and every check-and-hold runs in one `BEGIN IMMEDIATE` transaction, so no two
 * processes can both take the last of a budget. `better-sqlite3` is an optional peer of the SDK,
 * loaded when a store is opened, not when this module is imported. msat amounts are INTEGER columns
 * read back as `bigint`; times are unix ms.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { TollwayError } from '../errors.js';
import { minBigint } from '../internal/bigint.js';
import { loadSqliteDriver, openSqliteFile } from '../internal/sqlite-driver.js';
import type { PaymentChallenge } from '../mpp/challenge.js';
import { assertStorableAmount, toStoreError } from '../stores/common.js';
import { CHANNELS_SCHEMA, sqliteChannels } from './sqlite-channels.js';
import {
  assertLedgerEntry,
  assertQueryLimit,
  DEFAULT_STALE_HOLD_MS,
  pickCredential,
  windowStart,
} from './store-common.js';
import type {
  BudgetWindowStatus,
  ClientProtocol,
  ClientStore,
  LedgerEntry,
  LedgerQuery,
  LedgerSum,
  LedgerSummary,
  StoredCredential,
  StoredSession,
} from './types.js';

/** Options of {@link createSqliteClientStore}. */
export interface SqliteClientStoreOptions {
  /** The database file (parent directories are created). Default: {@link defaultAgentDbPath}. */
  path?: string;
  /** How long a write waits for another process's lock before failing with `store_error`, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * A hold older than this (ms) stops counting unless a ledger entry with its reservation id is
   * pending or succeeded (the payment may be in flight, or done but not yet committed).
   * Default 10 minutes.
   */
  staleHoldMs?: number;
}

/** The first schema. */
const SCHEMA_1 = `
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) STRICT;
-- One row per budget a reservation is held in, so that each window sum is one index range.
CREATE TABLE holds (
  reservation_id TEXT NOT NULL REFERENCES reservations (id),
  budget TEXT NOT NULL,
  origin TEXT NOT NULL,
  held_msat INTEGER NOT NULL CHECK (held_msat >= 0),
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'committed', 'released')),
  spent_msat INTEGER CHECK (spent_msat >= 0),
  committed_at INTEGER,
  CHECK ((state = 'committed') = (committed_at IS NOT NULL AND spent_msat IS NOT NULL)),
  PRIMARY KEY (reservation_id, budget)
) STRICT, WITHOUT ROWID;
CREATE INDEX holds_open ON holds (budget, origin) WHERE state = 'open';
CREATE INDEX holds_spent ON holds (budget, committed_at, spent_msat) WHERE state = 'committed';
CREATE INDEX holds_spent_origin ON holds (budget, origin, committed_at, spent_msat)
  WHERE state = 'committed';
-- Running sums of committed spend, so the 'total' window costs one lookup however long the history.
CREATE TABLE spend_totals (
  budget TEXT PRIMARY KEY,
  spent_msat INTEGER NOT NULL
) STRICT;
CREATE TABLE spend_totals_by_origin (
  budget TEXT NOT NULL,
  origin TEXT NOT NULL,
  spent_msat INTEGER NOT NULL,
  PRIMARY KEY (budget, origin)
) STRICT, WITHOUT ROWID;
CREATE TABLE disabled_budgets (
  budget TEXT PRIMARY KEY,
  disabled_at INTEGER NOT NULL
) STRICT;
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  time INTEGER NOT NULL,
  tags TEXT NOT NULL,
  url TEXT NOT NULL,
  origin TEXT NOT NULL,
  protocol TEXT NOT NULL,
  -- decimal text: token base units may not fit 64 bits
  amount TEXT NOT NULL CHECK (amount <> '' AND amount NOT GLOB '*[^0-9]*'),
  unit TEXT NOT NULL,
  amount_msat INTEGER NOT NULL CHECK (amount_msat >= 0),
  fee_msat INTEGER NOT NULL CHECK (fee_msat >= 0),
  rate TEXT,
  reference TEXT NOT NULL,
  proof TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  payee TEXT,
  resume TEXT
) STRICT;
CREATE INDEX payments_time ON payments (time);
CREATE INDEX payments_pending ON payments (time) WHERE status = 'pending';
CREATE TABLE credentials (
  origin TEXT NOT NULL,
  scope TEXT NOT NULL,
  protocol TEXT NOT NULL,
  header_name TEXT NOT NULL,
  header_value TEXT NOT NULL,
  expires_at INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (origin, scope)
) STRICT;
`;

/** Version 2: ledger kinds and accounts (draws, releases, refunds), sessions. */
const SCHEMA_2 = `
ALTER TABLE payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'purchase'
  CHECK (kind IN ('purchase', 'draw', 'release', 'refund'));
ALTER TABLE payments ADD COLUMN account TEXT;
CREATE INDEX payments_account ON payments (account) WHERE account IS NOT NULL;
ALTER TABLE credentials ADD COLUMN account TEXT;
ALTER TABLE credentials ADD COLUMN single_use INTEGER NOT NULL DEFAULT 0 CHECK (single_use IN (0, 1));
UPDATE credentials SET single_use = 1 WHERE protocol <> 'l402';
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  origin TEXT NOT NULL,
  scope TEXT NOT NULL,
  url TEXT NOT NULL,
  method TEXT NOT NULL,
  challenge TEXT NOT NULL,
  preimage TEXT NOT NULL,
  return_invoice TEXT NOT NULL,
  return_invoice_expires_at INTEGER NOT NULL,
  idle_timeout_ms INTEGER NOT NULL,
  opened_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('opening', 'open', 'closing', 'closed')),
  closed_at INTEGER,
  refund_msat INTEGER CHECK (refund_msat >= 0),
  refund_status TEXT
) STRICT;
CREATE INDEX sessions_origin ON sessions (origin, state);
`;

/** Version 3: the owner's pause of every payment (one row while paused). */
const SCHEMA_3 = `
CREATE TABLE paused (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  paused_at INTEGER NOT NULL
) STRICT;
`;

/** The schema of each version, in order: a file at version n runs those after n. */
const MIGRATIONS: readonly string[] = [SCHEMA_1, SCHEMA_2, SCHEMA_3, CHANNELS_SCHEMA];

/** Committed spend of a budget after `@start` (exclusive), all origins or one. */
const SPENT = `SELECT COALESCE(SUM(spent_msat), 0) FROM holds
  WHERE budget = @budget AND state = 'committed' AND committed_at > @start`;

/** Open holds of a budget that still count: young, or with a pending or succeeded ledger entry. */
const HELD = `SELECT COALESCE(SUM(held_msat), 0) FROM holds h
  WHERE budget = @budget AND state = 'open' AND (created_at > @staleBefore OR EXISTS (
    SELECT 1 FROM payments p WHERE p.id = h.reservation_id AND p.status IN ('pending', 'succeeded')
  ))`;

/** Ledger filters, shared by `list`, `totals` and `summary`; unset filters are NULL. */
const FILTERS = `(@since IS NULL OR time >= @since) AND (@until IS NULL OR time < @until)
  AND (@origin IS NULL OR origin = @origin) AND (@status IS NULL OR status = @status)
  AND (@kind IS NULL OR kind = @kind) AND (@protocol IS NULL OR protocol = @protocol)
  AND (@account IS NULL OR account = @account)
  AND (@tagKey IS NULL OR EXISTS (
    SELECT 1 FROM json_each(payments.tags) t WHERE t.key = @tagKey AND t.value = @tagValue
  ))`;

/** The group keys of `summary`, by grouping. */
const GROUP_KEYS = {
  origin: 'origin',
  account: "COALESCE(account, '')",
  tag: "COALESCE((SELECT t.value FROM json_each(payments.tags) t WHERE t.key = @groupTag), '')",
} as const;

/** One sum of `summary`: its count, amount and fee columns over the entries `condition` picks. */
function sumColumns(name: string, condition: string): string {
  return `SUM(${condition}) AS ${name}_count,
    SUM(CASE WHEN ${condition} THEN amount_msat ELSE 0 END) AS ${name}_amount,
    SUM(CASE WHEN ${condition} THEN fee_msat ELSE 0 END) AS ${name}_fee`;
}

/** Spend grouped by `key`: see {@link Ledger.summary}. */
function summarySql(key: string): string {
  return `SELECT ${key} AS key,
    ${sumColumns('purchases', "kind = 'purchase' AND status = 'succeeded'")},
    ${sumColumns('draws', "kind = 'draw' AND status = 'succeeded'")},
    ${sumColumns('unsettled', "kind = 'draw' AND status = 'pending'")},
    ${sumColumns('refunds', "kind = 'refund' AND status = 'succeeded'")},
    SUM(kind = 'release') AS releases
    FROM payments WHERE ${FILTERS} GROUP BY key ORDER BY key`;
}

type SumName = 'purchases' | 'draws' | 'unsettled' | 'refunds';
type RawSummary = { key: string; releases: bigint } & Record<
  `${SumName}_${'count' | 'amount' | 'fee'}`,
  bigint
>;

interface RawPayment {
  id: string;
  kind: string;
  account: string | null;
  time: bigint;
  tags: string;
  url: string;
  origin: string;
  protocol: string;
  amount: string;
  unit: string;
  amount_msat: bigint;
  fee_msat: bigint;
  rate: string | null;
  reference: string;
  proof: string | null;
  status: string;
  payee: string | null;
  resume: string | null;
}

interface RawCredential {
  origin: string;
  scope: string;
  protocol: string;
  header_name: string;
  header_value: string;
  expires_at: bigint | null;
  created_at: bigint;
  account: string | null;
  single_use: bigint;
}

interface RawSession {
  id: string;
  origin: string;
  scope: string;
  url: string;
  method: string;
  challenge: string;
  preimage: string;
  return_invoice: string;
  return_invoice_expires_at: bigint;
  idle_timeout_ms: bigint;
  opened_at: bigint;
  state: string;
  closed_at: bigint | null;
  refund_msat: bigint | null;
  refund_status: string | null;
}

interface FilterParams {
  since: number | null;
  until: number | null;
  origin: string | null;
  status: string | null;
  kind: string | null;
  protocol: string | null;
  account: string | null;
  tagKey: string | null;
  tagValue: string | null;
}

/**
 * The default agent database: `$TOLLWAY_AGENT_DB` when set, else `~/.tollway/agent.sqlite`.
 *
 * @example
 * ```ts
 * defaultAgentDbPath(); // '/home/me/.tollway/agent.sqlite'
 * ```
 */
export function defaultAgentDbPath(): string {
  const fromEnv = process.env.TOLLWAY_AGENT_DB;
  return fromEnv !== undefined && fromEnv !== ''
    ? fromEnv
    : join(homedir(), '.tollway', 'agent.sqlite');
}

function migrate(db: BetterSqlite3.Database): void {
  db.transaction(() => {
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version === MIGRATIONS.length) return;
    if (version > MIGRATIONS.length) {
      throw new TollwayError(
        'store_error',
        `the agent database has schema version ${version}; this Tollway knows ${MIGRATIONS.length}`,
      );
    }
    for (const schema of MIGRATIONS.slice(version)) db.exec(schema);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

function toEntry(row: RawPayment): LedgerEntry {
  return {
    id: row.id,
    kind: row.kind as LedgerEntry['kind'],
    time: Number(row.time),
    tags: JSON.parse(row.tags) as Record<string, string>,
    url: row.url,
    origin: row.origin,
    protocol: row.protocol as ClientProtocol,
    amount: BigInt(row.amount),
    unit: row.unit,
    amountMsat: row.amount_msat,
    feeMsat: row.fee_msat,
    ...(row.rate !== null ? { rate: row.rate } : {}),
    reference: row.reference,
    ...(row.account !== null ? { account: row.account } : {}),
    ...(row.proof !== null ? { proof: row.proof } : {}),
    status: row.status as LedgerEntry['status'],
    ...(row.payee !== null ? { payee: row.payee } : {}),
    ...(row.resume !== null ? { resume: row.resume } : {}),
  };
}

function toCredential(row: RawCredential): StoredCredential {
  return {
    origin: row.origin,
    scope: row.scope,
    protocol: row.protocol as ClientProtocol,
    header: { name: row.header_name, value: row.header_value },
    ...(row.account !== null ? { account: row.account } : {}),
    ...(row.single_use === 1n ? { singleUse: true } : {}),
    ...(row.expires_at !== null ? { expiresAt: Number(row.expires_at) } : {}),
    createdAt: Number(row.created_at),
  };
}

function toSession(row: RawSession): StoredSession {
  return {
    id: row.id,
    origin: row.origin,
    scope: row.scope,
    url: row.url,
    method: row.method,
    challenge: JSON.parse(row.challenge) as PaymentChallenge,
    preimage: row.preimage,
    returnInvoice: row.return_invoice,
    returnInvoiceExpiresAt: Number(row.return_invoice_expires_at),
    idleTimeoutMs: Number(row.idle_timeout_ms),
    openedAt: Number(row.opened_at),
    state: row.state as StoredSession['state'],
    ...(row.closed_at !== null ? { closedAt: Number(row.closed_at) } : {}),
    ...(row.refund_msat !== null ? { refundMsat: row.refund_msat } : {}),
    ...(row.refund_status !== null ? { refundStatus: row.refund_status } : {}),
  };
}

function fromSession(session: StoredSession): RawSession {
  return {
    id: session.id,
    origin: session.origin,
    scope: session.scope,
    url: session.url,
    method: session.method,
    challenge: JSON.stringify(session.challenge),
    preimage: session.preimage,
    return_invoice: session.returnInvoice,
    return_invoice_expires_at: BigInt(session.returnInvoiceExpiresAt),
    idle_timeout_ms: BigInt(session.idleTimeoutMs),
    opened_at: BigInt(session.openedAt),
    state: session.state,
    closed_at: session.closedAt === undefined ? null : BigInt(session.closedAt),
    refund_msat: session.refundMsat ?? null,
    refund_status: session.refundStatus ?? null,
  };
}

function toSum(row: RawSummary, name: SumName): LedgerSum {
  return {
    count: Number(row[`${name}_count`]),
    amountMsat: row[`${name}_amount`],
    feeMsat: row[`${name}_fee`],
  };
}

function toSummary(row: RawSummary): LedgerSummary {
  return {
    key: row.key,
    purchases: toSum(row, 'purchases'),
    draws: toSum(row, 'draws'),
    unsettledDraws: toSum(row, 'unsettled'),
    releases: Number(row.releases),
    refunds: toSum(row, 'refunds'),
  };
}

function filterParams(query: LedgerQuery): FilterParams {
  return {
    since: query.since ?? null,
    until: query.until ?? null,
    origin: query.origin ?? null,
    status: query.status ?? null,
    kind: query.kind ?? null,
    protocol: query.protocol ?? null,
    account: query.account ?? null,
    tagKey: query.tag?.key ?? null,
    tagValue: query.tag?.value ?? null,
  };
}

/**
 * Opens (creating if needed) the agent's SQLite file, in WAL mode, and migrates its schema. A new
 * file is made readable by its owner only (it holds credentials). Failures of the database are
 * `store_error`; a missing `better-sqlite3` is `capability_unsupported`.
 *
 * @example
 * ```ts
 * const store = createSqliteClientStore({ path: '.tollway/agent.sqlite' });
 * const budget = createBudget({ store, limits: { day: '1000 sat' } });
 * ```
 */
export function createSqliteClientStore(options: SqliteClientStoreOptions = {}): ClientStore {
  const { path = defaultAgentDbPath(), busyTimeoutMs = 5000 } = options;
  const staleHoldMs = options.staleHoldMs ?? DEFAULT_STALE_HOLD_MS;
  const Driver = loadSqliteDriver('the SQLite agent store');
  let db: BetterSqlite3.Database;
  try {
    db = openSqliteFile(Driver, path);
    db.defaultSafeIntegers(true);
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (error) {
    throw toStoreError(error, 'SQLite');
  }
  const open = db;

  const q = {
    spent: open.prepare<{ budget: string; start: number }, bigint>(SPENT).pluck(),
    spentAt: open
      .prepare<{ budget: string; origin: string; start: number }, bigint>(
        `${SPENT} AND origin = @origin`,
      )
      .pluck(),
    held: open.prepare<{ budget: string; staleBefore: number }, bigint>(HELD).pluck(),
    heldAt: open
      .prepare<{ budget: string; origin: string; staleBefore: number }, bigint>(
        `${HELD} AND origin = @origin`,
      )
      .pluck(),
    holdExists: open.prepare<[string], { id: string }>('SELECT id FROM reservations WHERE id = ?'),
    insertReservation: open.prepare<[string, number]>(
      'INSERT INTO reservations (id, created_at) VALUES (?, ?)',
    ),
    insertHold: open.prepare<[string, string, string, bigint, number]>(
      `INSERT OR IGNORE INTO holds (reservation_id, budget, origin, held_msat, created_at, state)
       VALUES (?, ?, ?, ?, ?, 'open')`,
    ),
    commitHold: open.prepare<[bigint, number, string], { budget: string; origin: string }>(
      `UPDATE holds SET state = 'committed', spent_msat = ?, committed_at = ?
       WHERE reservation_id = ? AND state = 'open' RETURNING budget, origin`,
    ),
    total: open
      .prepare<[string], bigint>('SELECT spent_msat FROM spend_totals WHERE budget = ?')
      .pluck(),
    totalAt: open
      .prepare<[string, string], bigint>(
        'SELECT spent_msat FROM spend_totals_by_origin WHERE budget = ? AND origin = ?',
      )
      .pluck(),
    addTotal: open.prepare<[string, bigint]>(
      `INSERT INTO spend_totals (budget, spent_msat) VALUES (?, ?)
       ON CONFLICT (budget) DO UPDATE SET spent_msat = spent_msat + excluded.spent_msat`,
    ),
    addTotalAt: open.prepare<[string, string, bigint]>(
      `INSERT INTO spend_totals_by_origin (budget, origin, spent_msat) VALUES (?, ?, ?)
       ON CONFLICT (budget, origin) DO UPDATE SET spent_msat = spent_msat + excluded.spent_msat`,
    ),
    refundHold: open.prepare<[bigint, string], { budget: string; origin: string }>(
      `UPDATE holds SET spent_msat = spent_msat - ?
       WHERE reservation_id = ? AND state = 'committed' RETURNING budget, origin`,
    ),
    spentOf: open
      .prepare<[string], bigint>(
        `SELECT spent_msat FROM holds WHERE reservation_id = ? AND state = 'committed' LIMIT 1`,
      )
      .pluck(),
    releaseHold: open.prepare<[string]>(
      `UPDATE holds SET state = 'released' WHERE reservation_id = ? AND state = 'open'`,
    ),
    disable: open.prepare<[string, number]>(
      'INSERT OR IGNORE INTO disabled_budgets (budget, disabled_at) VALUES (?, ?)',
    ),
    enable: open.prepare<[string]>('DELETE FROM disabled_budgets WHERE budget = ?'),
    disabled: open.prepare<[], { budget: string }>(
      'SELECT budget FROM disabled_budgets ORDER BY budget',
    ),
    pause: open.prepare<[number]>('INSERT OR IGNORE INTO paused (id, paused_at) VALUES (1, ?)'),
    resume: open.prepare('DELETE FROM paused'),
    paused: open.prepare<[], bigint>('SELECT COUNT(*) FROM paused').pluck(),
    insertPayment: open.prepare<
      [
        string,
        number,
        string,
        string,
        string,
        string,
        string,
        string,
        bigint,
        bigint,
        string | null,
        string,
        string | null,
        string,
        string | null,
        string | null,
        string,
        string | null,
      ]
    >(
      `INSERT INTO payments (id, time, tags, url, origin, protocol, amount, unit, amount_msat, fee_msat,
         rate, reference, proof, status, payee, resume, kind, account)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getPayment: open.prepare<[string], RawPayment>('SELECT * FROM payments WHERE id = ?'),
    updatePayment: open.prepare<
      [string, string | null, bigint, string | null, string, bigint, string]
    >(
      `UPDATE payments SET status = ?, proof = ?, fee_msat = ?, account = ?, amount = ?, amount_msat = ?
       WHERE id = ?`,
    ),
    pending: open.prepare<[], RawPayment>(
      `SELECT * FROM payments WHERE status = 'pending' AND kind = 'purchase' ORDER BY time, rowid`,
    ),
    list: open.prepare<FilterParams & { limit: number }, RawPayment>(
      `SELECT * FROM payments WHERE ${FILTERS} ORDER BY time DESC, rowid DESC LIMIT @limit`,
    ),
    totals: open.prepare<
      FilterParams,
      { origin: string; count: bigint; amount_msat: bigint; fee_msat: bigint }
    >(
      `SELECT origin, COUNT(*) AS count, SUM(amount_msat) AS amount_msat, SUM(fee_msat) AS fee_msat
       FROM payments WHERE status = 'succeeded' AND kind = 'purchase' AND ${FILTERS}
       GROUP BY origin ORDER BY origin`,
    ),
    summaryBy: {
      origin: open.prepare<FilterParams, RawSummary>(summarySql(GROUP_KEYS.origin)),
      account: open.prepare<FilterParams, RawSummary>(summarySql(GROUP_KEYS.account)),
      tag: open.prepare<FilterParams & { groupTag: string }, RawSummary>(
        summarySql(GROUP_KEYS.tag),
      ),
    },
    saveCredential: open.prepare<
      [string, string, string, string, string, number | null, number, string | null, number]
    >(
      `INSERT INTO credentials (origin, scope, protocol, header_name, header_value, expires_at,
         created_at, account, single_use)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin, scope) DO UPDATE SET protocol = excluded.protocol,
         header_name = excluded.header_name, header_value = excluded.header_value,
         expires_at = excluded.expires_at, created_at = excluded.created_at,
         account = excluded.account, single_use = excluded.single_use`,
    ),
    credentials: open.prepare<[string], RawCredential>(
      'SELECT * FROM credentials WHERE origin = ?',
    ),
    deleteCredential: open.prepare<[string, string]>(
      'DELETE FROM credentials WHERE origin = ? AND scope = ?',
    ),
    saveSession: open.prepare<RawSession>(
      `INSERT OR REPLACE INTO sessions (id, origin, scope, url, method, challenge, preimage,
         return_invoice, return_invoice_expires_at, idle_timeout_ms, opened_at, state, closed_at,
         refund_msat, refund_status)
       VALUES (@id, @origin, @scope, @url, @method, @challenge, @preimage, @return_invoice,
         @return_invoice_expires_at, @idle_timeout_ms, @opened_at, @state, @closed_at,
         @refund_msat, @refund_status)`,
    ),
    getSession: open.prepare<[string], RawSession>('SELECT * FROM sessions WHERE id = ?'),
    sessions: open.prepare<{ origin: string | null }, RawSession>(
      'SELECT * FROM sessions WHERE (@origin IS NULL OR origin = @origin) ORDER BY opened_at, rowid',
    ),
  };

  /** Committed spend in the window; the `total` window reads the running sums. */
  function spent(
    budget: string,
    window: 'hour' | 'day' | 'month' | 'total',
    origin: string | undefined,
    now: number,
  ): bigint | undefined {
    if (window === 'total') {
      return origin === undefined ? q.total.get(budget) : q.totalAt.get(budget, origin);
    }
    const start = windowStart(window, now);
    return origin === undefined
      ? q.spent.get({ budget, start })
      : q.spentAt.get({ budget, origin, start });
  }

  function usage(
    budget: string,
    window: BudgetWindowStatus['window'],
    origin: string | undefined,
    now: number,
  ): { spentMsat: bigint; heldMsat: bigint } {
    if (window === 'request') return { spentMsat: 0n, heldMsat: 0n };
    const staleBefore = now - staleHoldMs;
    const heldMsat =
      origin === undefined
        ? q.held.get({ budget, staleBefore })
        : q.heldAt.get({ budget, origin, staleBefore });
    return { spentMsat: spent(budget, window, origin, now) ?? 0n, heldMsat: heldMsat ?? 0n };
  }

  /** Runs `work` and turns driver failures into `store_error`. */
  async function run<T>(work: () => T): Promise<T> {
    try {
      return work();
    } catch (error) {
      throw toStoreError(error, 'SQLite');
    }
  }

  return {
    tryHold: (reservation, wanted, now) =>
      run(() => {
        assertStorableAmount(reservation.heldMsat, 'heldMsat');
        return open
          .transaction(() => {
            if (q.holdExists.get(reservation.id) !== undefined) {
              throw new TollwayError(
                'store_error',
                `reservation ${reservation.id} is already held`,
              );
            }
            for (const { budget, window, origin, limitMsat } of wanted) {
              const { spentMsat, heldMsat } = usage(budget, window, origin, now);
              const used = spentMsat + heldMsat;
              if (used + reservation.heldMsat > limitMsat) {
                const remainingMsat = limitMsat > used ? limitMsat - used : 0n;
                return {
                  ok: false as const,
                  budget,
                  window,
                  ...(origin !== undefined ? { origin } : {}),
                  remainingMsat,
                };
              }
            }
            q.insertReservation.run(reservation.id, reservation.createdAt);
            for (const { budget } of wanted) {
              q.insertHold.run(
                reservation.id,
                budget,
                reservation.request.origin,
                reservation.heldMsat,
                reservation.createdAt,
              );
            }
            return { ok: true as const };
          })
          .immediate();
      }),

    commitHold: (reservationId, spentMsat, now) =>
      run(() => {
        assertStorableAmount(spentMsat, 'spentMsat');
        open
          .transaction(() => {
            if (q.holdExists.get(reservationId) === undefined) {
              throw new TollwayError('store_error', `no reservation ${reservationId} to commit`);
            }
            for (const { budget, origin } of q.commitHold.all(spentMsat, now, reservationId)) {
              q.addTotal.run(budget, spentMsat);
              q.addTotalAt.run(budget, origin, spentMsat);
            }
          })
          .immediate();
      }),

    refundHold: (reservationId, amountMsat) =>
      run(() =>
        open
          .transaction(() => {
            if (amountMsat <= 0n) return 0n;
            const spent = q.spentOf.get(reservationId);
            if (spent === undefined) return 0n;
            const back = minBigint(amountMsat, spent);
            for (const { budget, origin } of q.refundHold.all(back, reservationId)) {
              q.addTotal.run(budget, -back);
              q.addTotalAt.run(budget, origin, -back);
            }
            return back;
          })
          .immediate(),
      ),

    releaseHold: (reservationId) =>
      run(() => {
        q.releaseHold.run(reservationId);
      }),

    windowStatus: (budget, window, origin, now) => run(() => usage(budget, window, origin, now)),

    setBudgetDisabled: (budget, off) =>
      run(() => {
        if (off) q.disable.run(budget, Date.now());
        else q.enable.run(budget);
      }),

    disabledBudgets: () => run(() => q.disabled.all().map((row) => row.budget)),

    setPaused: (paused) =>
      run(() => {
        if (paused) q.pause.run(Date.now());
        else q.resume.run();
      }),

    isPaused: () => run(() => q.paused.get() !== 0n),

    recordPayment: (entry) =>
      run(() => {
        assertLedgerEntry(entry);
        q.insertPayment.run(
          entry.id,
          entry.time,
          JSON.stringify(entry.tags),
          entry.url,
          entry.origin,
          entry.protocol,
          entry.amount.toString(),
          entry.unit,
          entry.amountMsat,
          entry.feeMsat,
          entry.rate ?? null,
          entry.reference,
          entry.proof ?? null,
          entry.status,
          entry.payee ?? null,
          entry.resume ?? null,
          entry.kind,
          entry.account ?? null,
        );
      }),

    updatePayment: (id, patch) =>
      run(() => {
        open
          .transaction(() => {
            const row = q.getPayment.get(id);
            if (row === undefined)
              throw new TollwayError('store_error', `no payment ${id} in the ledger`);
            const entry = { ...toEntry(row), ...patch };
            assertLedgerEntry(entry);
            q.updatePayment.run(
              entry.status,
              entry.proof ?? null,
              entry.feeMsat,
              entry.account ?? null,
              entry.amount.toString(),
              entry.amountMsat,
              id,
            );
          })
          .immediate();
      }),

    findPayment: (id) =>
      run(() => {
        const row = q.getPayment.get(id);
        return row === undefined ? undefined : toEntry(row);
      }),

    pendingPayments: () => run(() => q.pending.all().map(toEntry)),

    list: (query = {}) =>
      run(() => {
        assertQueryLimit(query.limit);
        return q.list.all({ ...filterParams(query), limit: query.limit ?? -1 }).map(toEntry);
      }),

    totals: (query = {}) =>
      run(() =>
        q.totals.all(filterParams(query)).map((row) => ({
          origin: row.origin,
          count: Number(row.count),
          amountMsat: row.amount_msat,
          feeMsat: row.fee_msat,
        })),
      ),

    summary: (query, by) =>
      run(() => {
        const params = filterParams(query);
        const rows =
          by === 'origin' || by === 'account'
            ? q.summaryBy[by].all(params)
            : q.summaryBy.tag.all({ ...params, groupTag: by.tag });
        return rows.map(toSummary);
      }),

    saveCredential: (credential) =>
      run(() => {
        q.saveCredential.run(
          credential.origin,
          credential.scope,
          credential.protocol,
          credential.header.name,
          credential.header.value,
          credential.expiresAt ?? null,
          credential.createdAt,
          credential.account ?? null,
          credential.singleUse === true ? 1 : 0,
        );
      }),

    findCredential: (origin, path, now) =>
      run(() => pickCredential(q.credentials.all(origin).map(toCredential), path, now)),

    deleteCredential: (origin, scope) =>
      run(() => {
        q.deleteCredential.run(origin, scope);
      }),

    saveSession: (session) =>
      run(() => {
        if (session.refundMsat !== undefined) {
          assertStorableAmount(session.refundMsat, 'refundMsat');
        }
        q.saveSession.run(fromSession(session));
      }),

    getSession: (id) =>
      run(() => {
        const row = q.getSession.get(id);
        return row === undefined ? undefined : toSession(row);
      }),

    listSessions: (query = {}) =>
      run(() =>
        q.sessions
          .all({ origin: query.origin ?? null })
          .map(toSession)
          .filter((s) => query.states === undefined || query.states.includes(s.state)),
      ),

    updateSession: (id, patch, from) =>
      run(() => {
        if (patch.refundMsat !== undefined) assertStorableAmount(patch.refundMsat, 'refundMsat');
        return open
          .transaction(() => {
            const row = q.getSession.get(id);
            if (row === undefined || (from !== undefined && row.state !== from)) return false;
            q.saveSession.run(fromSession({ ...toSession(row), ...patch }));
            return true;
          })
          .immediate();
      }),

    ...sqliteChannels(open, run),

    close: () =>
      run(() => {
        open.close();
      }),
  };
}
