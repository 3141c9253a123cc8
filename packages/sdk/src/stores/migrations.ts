/**
 * The one schema of the SQL stores, as numbered migration steps shared by SQLite and PostgreSQL.
 *
 * The SQL is portable: `TEXT`, `INTEGER` and `BIGINT` columns (SQLite gives `BIGINT` integer affinity;
 * both hold signed 64-bit integers), no dialect functions. PostgreSQL runs the steps with its
 * `search_path` set to the store's schema, so table names stay unqualified here. Applied steps are
 * recorded in `schema_migrations`; a step, once released, never changes: add a new one.
 *
 * @internal
 */
import { TollwayError } from '../errors.js';

/** One numbered step. */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

/** Creates the table that records applied steps; runs before any step. */
export const CREATE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/**
 * Every step, in order.
 *
 * @internal
 * @example
 * ```ts
 * for (const m of pendingMigrations(applied)) for (const sql of m.statements) db.exec(sql);
 * ```
 */
const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    statements: [
      `CREATE TABLE challenges (
        payment_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        service TEXT NOT NULL,
        amount_msat BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      'CREATE INDEX challenges_created_at ON challenges (created_at)',
      `CREATE TABLE settlements (
        reference TEXT PRIMARY KEY,
        token_id TEXT,
        service TEXT NOT NULL,
        protocol TEXT NOT NULL,
        amount BIGINT NOT NULL,
        unit TEXT NOT NULL,
        settled_at BIGINT NOT NULL
      )`,
      'CREATE INDEX settlements_settled_at ON settlements (settled_at)',
      `CREATE TABLE tokens (
        token_id TEXT PRIMARY KEY,
        payment_hash TEXT NOT NULL,
        service TEXT NOT NULL,
        tier INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        max_uses BIGINT,
        initial_balance_msat BIGINT
      )`,
      'CREATE INDEX tokens_service_created_at ON tokens (service, created_at)',
      `CREATE TABLE token_usage (
        token_id TEXT PRIMARY KEY,
        uses BIGINT NOT NULL,
        spent_msat BIGINT NOT NULL
      )`,
      `CREATE TABLE revocations (
        token_id TEXT PRIMARY KEY,
        reason TEXT,
        revoked_at BIGINT NOT NULL,
        revision BIGINT NOT NULL
      )`,
      'CREATE INDEX revocations_revision ON revocations (revision)',
      `CREATE TABLE claims (
        claim_key TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL
      )`,
      'CREATE INDEX claims_expires_at ON claims (expires_at)',
      `CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
      )`,
      "INSERT INTO counters (name, value) VALUES ('revocations', 0)",
    ],
  },
  {
    version: 2,
    name: 'reservations',
    statements: [
      'ALTER TABLE token_usage ADD COLUMN held_uses BIGINT NOT NULL DEFAULT 0',
      'ALTER TABLE token_usage ADD COLUMN held_msat BIGINT NOT NULL DEFAULT 0',
      `CREATE TABLE holds (
        hold_id TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        uses BIGINT NOT NULL,
        amount_msat BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      'CREATE INDEX holds_expires_at ON holds (expires_at)',
      'CREATE INDEX holds_token_id ON holds (token_id)',
      'ALTER TABLE claims ADD COLUMN held_until BIGINT',
    ],
  },
  {
    version: 3,
    name: 'challenges_expires_at',
    statements: ['CREATE INDEX challenges_expires_at ON challenges (expires_at)'],
  },
  {
    version: 4,
    name: 'sessions',
    statements: [
      `CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        deposit_msat BIGINT NOT NULL,
        return_invoice TEXT NOT NULL,
        idle_timeout_ms BIGINT NOT NULL,
        opened_at BIGINT NOT NULL,
        last_used_at BIGINT NOT NULL,
        closed_at BIGINT,
        refund_msat BIGINT,
        refund_status TEXT
      )`,
      'CREATE INDEX sessions_open_last_used ON sessions (closed_at, last_used_at)',
    ],
  },
  {
    version: 5,
    name: 'shared_limits',
    statements: [
      `CREATE TABLE rate_buckets (
        bucket_key TEXT PRIMARY KEY,
        tat BIGINT NOT NULL,
        cost BIGINT NOT NULL
      )`,
      'CREATE INDEX rate_buckets_tat ON rate_buckets (tat)',
      `CREATE TABLE freebie_windows (
        window_key TEXT PRIMARY KEY,
        used BIGINT NOT NULL,
        resets_at BIGINT NOT NULL
      )`,
      'CREATE INDEX freebie_windows_resets_at ON freebie_windows (resets_at)',
    ],
  },
  {
    version: 6,
    name: 'documents',
    statements: [
      `CREATE TABLE documents (
        name TEXT PRIMARY KEY,
        revision BIGINT NOT NULL,
        body TEXT NOT NULL
      )`,
    ],
  },
  {
    version: 7,
    name: 'x402_channels',
    statements: [
      `CREATE TABLE x402_channels (
        channel_id TEXT PRIMARY KEY,
        network TEXT NOT NULL,
        config TEXT NOT NULL,
        deposit BIGINT NOT NULL,
        voucher_max BIGINT NOT NULL,
        voucher_signature TEXT NOT NULL,
        claimed BIGINT NOT NULL
      )`,
    ],
  },
  {
    version: 8,
    name: 'x402_channel_refunds',
    statements: [
      'ALTER TABLE x402_channels ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0',
      'ALTER TABLE x402_channels ADD COLUMN withdraw_requested_at BIGINT NOT NULL DEFAULT 0',
    ],
  },
  {
    // Every resize and renewal of a hold moves its expiry: the index made each such write one
    // page more (a third of a lease's group commit in SQLite; no HOT update in PostgreSQL), to
    // speed a sweep that runs once a minute over a table of the holds in flight. Expired holds of
    // one token are still found through holds_token_id.
    version: 9,
    name: 'holds_drop_expires_at_index',
    statements: ['DROP INDEX holds_expires_at'],
  },
  {
    // The deposits credited to each channel, by reference: a credit tried again (after a failure
    // that may have come after its commit) is counted once.
    version: 10,
    name: 'x402_channel_credits',
    statements: [
      `CREATE TABLE x402_channel_credits (
        channel_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        PRIMARY KEY (channel_id, reference)
      )`,
    ],
  },
];

/**
 * The steps not yet applied, in order. Throws `store_error` when the database records a step this
 * version does not know (it was migrated by a newer Tollway).
 *
 * @internal
 * @example
 * ```ts
 * pendingMigrations([1]); // []
 * ```
 */
export function pendingMigrations(applied: readonly number[]): Migration[] {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = applied.filter((version) => !known.has(version));
  if (unknown.length > 0) {
    throw new TollwayError(
      'store_error',
      `The database schema is newer than this version of Tollway (unknown migration ${unknown.join(', ')})`,
      { details: { unknown } },
    );
  }
  const done = new Set(applied);
  return migrations.filter((m) => !done.has(m.version));
}
