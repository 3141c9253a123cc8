/**
 * The statements of the SQL stores, written once for SQLite and PostgreSQL, and the decoding of their
 * rows. Placeholders are `$1`, `$2`, … (PostgreSQL binds them by position; better-sqlite3 binds them as
 * named parameters `1`, `2`, …). Every integer is bound as a bigint and read back as a bigint (SQLite
 * with `safeIntegers`, PostgreSQL with bigint type parsers), so no amount ever passes through a float.
 *
 * Conditional updates are written as `current <= limit - requested`, never `current + requested <=
 * limit`: SQLite silently turns an overflowing integer sum into a float.
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import type {
  BucketAdvance,
  BucketClock,
  ChannelRecord,
  FreebieTake,
  Hold,
  IssuedChallenge,
  PaymentProtocol,
  RevenueRow,
  Revocation,
  SessionRecord,
  Settlement,
  StoredDocument,
  TokenRecord,
  TokenUsage,
} from '../server/store.js';
import { type HeldAmounts, heldOf, MAX_STORED_AMOUNT, type ResizeStep } from './common.js';

/** A value bound to a placeholder. */
type SqlValue = string | bigint | null;

/** One statement and the values of its placeholders `$1…$n`. */
export interface SqlQuery {
  text: string;
  values: SqlValue[];
}

/** A row as a driver returns it. */
export type SqlRow = Record<string, unknown>;

/** The bucket widths of {@link Store.revenue}, in ms. Unix time is UTC, so these align to UTC. */
const BUCKET_MS = { hour: 3_600_000n, day: 86_400_000n } as const;

const CHANNEL_COLUMNS =
  'channel_id, network, config, deposit, voucher_max, voucher_signature, claimed, refunded, withdraw_requested_at';

const SESSION_COLUMNS =
  'session_id, service, deposit_msat, return_invoice, idle_timeout_ms, opened_at, last_used_at, closed_at, refund_msat, refund_status';

/** Rows per multi-row INSERT: far below SQLite's and PostgreSQL's limits on placeholders. */
const CHALLENGE_BATCH = 500;
const BUCKET_BATCH = 500;

function optional<T>(value: T | undefined): T | null {
  return value === undefined ? null : value;
}

function int(value: number): bigint {
  return BigInt(value);
}

/** Builds `WHERE …` and the values for optional equality and time-range filters. */
function where(
  timeColumn: string,
  filters: { since?: number; until?: number; equal?: Record<string, string | undefined> },
  values: SqlValue[],
): string {
  const clauses: string[] = [];
  const bind = (value: SqlValue) => {
    values.push(value);
    return `$${values.length}`;
  };
  if (filters.since !== undefined) clauses.push(`${timeColumn} >= ${bind(int(filters.since))}`);
  if (filters.until !== undefined) clauses.push(`${timeColumn} < ${bind(int(filters.until))}`);
  for (const [column, value] of Object.entries(filters.equal ?? {})) {
    if (value !== undefined) clauses.push(`${column} = ${bind(value)}`);
  }
  return clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
}

/** `LIMIT $n OFFSET $m`; no limit is the largest BIGINT (both dialects accept it, and need a LIMIT for OFFSET). */
function page(limit: number | undefined, offset: number | undefined, values: SqlValue[]): string {
  values.push(limit === undefined ? MAX_STORED_AMOUNT : int(limit), int(offset ?? 0));
  return `LIMIT $${values.length - 1} OFFSET $${values.length}`;
}

/**
 * The statements of one store. `prefix` qualifies table names: `''` for SQLite, `"schema".` for
 * PostgreSQL.
 *
 * @internal
 * @example
 * ```ts
 * const q = createSqlQueries('"tollway".');
 * const { text, values } = q.getUsage('tok1');
 * ```
 */
export function createSqlQueries(prefix: string) {
  const t = (table: string) => `${prefix}${table}`;
  return {
    insertChallenges(challenges: readonly IssuedChallenge[]): SqlQuery[] {
      const queries: SqlQuery[] = [];
      for (let start = 0; start < challenges.length; start += CHALLENGE_BATCH) {
        const values: SqlValue[] = [];
        const rows = challenges.slice(start, start + CHALLENGE_BATCH).map((c) => {
          values.push(
            c.paymentHash,
            c.tokenId,
            c.service,
            c.amountMsat,
            int(c.createdAt),
            int(c.expiresAt),
          );
          const n = values.length;
          return `($${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
        });
        queries.push({
          text: `INSERT INTO ${t('challenges')} (payment_hash, token_id, service, amount_msat, created_at, expires_at)
            VALUES ${rows.join(', ')} ON CONFLICT (payment_hash) DO NOTHING`,
          values,
        });
      }
      return queries;
    },

    insertSettlement(s: Settlement): SqlQuery {
      return {
        text: `INSERT INTO ${t('settlements')} (reference, token_id, service, protocol, amount, unit, settled_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (reference) DO NOTHING RETURNING reference`,
        values: [
          s.reference,
          optional(s.tokenId),
          s.service,
          s.protocol,
          s.amount,
          s.unit,
          int(s.settledAt),
        ],
      };
    },

    listSettlements(query: {
      since?: number;
      until?: number;
      service?: string;
      protocol?: PaymentProtocol;
      limit?: number;
    }): SqlQuery {
      const values: SqlValue[] = [];
      const filter = where(
        'settled_at',
        { ...query, equal: { service: query.service, protocol: query.protocol } },
        values,
      );
      return {
        text: `SELECT reference, token_id, service, protocol, amount, unit, settled_at FROM ${t('settlements')}
          ${filter} ORDER BY settled_at DESC, reference ${page(query.limit, undefined, values)}`,
        values,
      };
    },

    revenue(query: { since?: number; until?: number; bucket: 'hour' | 'day' }): SqlQuery {
      const values: SqlValue[] = [BUCKET_MS[query.bucket]];
      const filter = where('settled_at', query, values);
      return {
        text: `SELECT (settled_at / CAST($1 AS BIGINT)) * CAST($1 AS BIGINT) AS bucket, service, protocol, unit,
            SUM(amount) AS amount, COUNT(*) AS count
          FROM ${t('settlements')} ${filter}
          GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
        values,
      };
    },

    insertToken(token: TokenRecord): SqlQuery {
      return {
        text: `INSERT INTO ${t('tokens')} (token_id, payment_hash, service, tier, created_at, expires_at, max_uses,
            initial_balance_msat)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (token_id) DO NOTHING`,
        values: [
          token.tokenId,
          token.paymentHash,
          token.service,
          int(token.tier),
          int(token.createdAt),
          token.expiresAt === undefined ? null : int(token.expiresAt),
          token.maxUses === undefined ? null : int(token.maxUses),
          optional(token.initialBalanceMsat),
        ],
      };
    },

    getToken(tokenId: string): SqlQuery {
      return {
        text: `SELECT token_id, payment_hash, service, tier, created_at, expires_at, max_uses, initial_balance_msat
          FROM ${t('tokens')} WHERE token_id = $1`,
        values: [tokenId],
      };
    },

    listTokens(query: { service?: string; limit?: number; offset?: number }): SqlQuery {
      const values: SqlValue[] = [];
      const filter = where('created_at', { equal: { service: query.service } }, values);
      return {
        text: `SELECT token_id, payment_hash, service, tier, created_at, expires_at, max_uses, initial_balance_msat
          FROM ${t('tokens')} ${filter} ORDER BY created_at, token_id ${page(query.limit, query.offset, values)}`,
        values,
      };
    },

    getUsage(tokenId: string): SqlQuery {
      return {
        text: `SELECT uses, spent_msat, held_uses, held_msat FROM ${t('token_usage')} WHERE token_id = $1`,
        values: [tokenId],
      };
    },

    /**
     * Adds a hold's uses and msat to the token's held counters if they fit under its limits;
     * returns the new counters only when it did. Limits absent from the hold are the largest amount.
     */
    holdUsage(hold: Hold): SqlQuery {
      const { uses, amountMsat } = heldOf(hold);
      return {
        text: `INSERT INTO ${t('token_usage')} AS u (token_id, uses, spent_msat, held_uses, held_msat)
          VALUES ($1, 0, 0, $2, $3)
          ON CONFLICT (token_id) DO UPDATE SET held_uses = u.held_uses + excluded.held_uses,
            held_msat = u.held_msat + excluded.held_msat
          WHERE u.uses + u.held_uses <= CAST($4 AS BIGINT) - excluded.held_uses
            AND u.spent_msat + u.held_msat <= CAST($5 AS BIGINT) - excluded.held_msat
          RETURNING uses, spent_msat, held_uses, held_msat`,
        values: [
          hold.tokenId,
          int(uses),
          amountMsat,
          hold.uses === undefined ? MAX_STORED_AMOUNT : int(hold.uses.max),
          hold.balance?.initialMsat ?? MAX_STORED_AMOUNT,
        ],
      };
    },

    insertHold(hold: Hold): SqlQuery {
      const { uses, amountMsat } = heldOf(hold);
      return {
        text: `INSERT INTO ${t('holds')} (hold_id, token_id, uses, amount_msat, expires_at)
          VALUES ($1, $2, $3, $4, $5)`,
        values: [hold.id, hold.tokenId, int(uses), amountMsat, int(hold.expiresAt)],
      };
    },

    /** Takes `held` off a token's held counters and adds `charged` to its spent ones. */
    unholdUsage(tokenId: string, held: HeldAmounts, charged: HeldAmounts): SqlQuery {
      return {
        text: `UPDATE ${t('token_usage')} SET held_uses = held_uses - $2, held_msat = held_msat - $3,
            uses = uses + $4, spent_msat = spent_msat + $5
          WHERE token_id = $1`,
        values: [tokenId, int(held.uses), held.amountMsat, int(charged.uses), charged.amountMsat],
      };
    },

    deleteHold(id: string): SqlQuery {
      return {
        text: `DELETE FROM ${t('holds')} WHERE hold_id = $1 RETURNING token_id, uses, amount_msat`,
        values: [id],
      };
    },

    /** Deletes the holds (of one token, or every token) that expired by `now`, returning them. */
    deleteExpiredHolds(now: number, tokenId: string | undefined): SqlQuery {
      return {
        text: `DELETE FROM ${t('holds')} WHERE expires_at <= $1 ${tokenId === undefined ? '' : 'AND token_id = $2'}
          RETURNING token_id, uses, amount_msat`,
        values: tokenId === undefined ? [int(now)] : [int(now), tokenId],
      };
    },

    /**
     * A hold's token, amount and expiry; `lock` appends a row lock (PostgreSQL's `FOR UPDATE`).
     */
    getHold(id: string, lock: string): SqlQuery {
      return {
        text: `SELECT token_id, uses, amount_msat, expires_at FROM ${t('holds')} WHERE hold_id = $1 ${lock}`,
        values: [id],
      };
    },

    /**
     * Applies a resize's step to the token's counters if its growth fits under `initialMsat`;
     * returns the new counters only when it did.
     */
    resizeUsage(tokenId: string, step: ResizeStep, initialMsat: bigint): SqlQuery {
      return {
        text: `UPDATE ${t('token_usage')} SET spent_msat = spent_msat + $2, held_msat = held_msat + $3
          WHERE token_id = $1 AND spent_msat + held_msat <= CAST($4 AS BIGINT) - $5
          RETURNING uses, spent_msat, held_uses, held_msat`,
        values: [tokenId, step.chargeMsat, step.heldDeltaMsat, initialMsat, step.growthMsat],
      };
    },

    setHold(id: string, amountMsat: bigint, expiresAt: number): SqlQuery {
      return {
        text: `UPDATE ${t('holds')} SET amount_msat = $2, expires_at = $3 WHERE hold_id = $1`,
        values: [id, amountMsat, int(expiresAt)],
      };
    },

    renewHolds(ids: readonly string[], until: number): SqlQuery {
      const values: SqlValue[] = [int(until), ...ids];
      const list = ids.map((_, i) => `$${i + 2}`).join(', ');
      return {
        text: `UPDATE ${t('holds')} SET expires_at = $1 WHERE hold_id IN (${list})`,
        values,
      };
    },

    /**
     * Inserts the claim, or takes over one that expired or whose hold lapsed by `now`; returns a row
     * only when the caller won.
     */
    claim(key: string, claim: { expiresAt: number; heldUntil: number }, now: number): SqlQuery {
      return {
        text: `INSERT INTO ${t('claims')} AS c (claim_key, expires_at, held_until) VALUES ($1, $2, $3)
          ON CONFLICT (claim_key) DO UPDATE SET expires_at = excluded.expires_at,
            held_until = excluded.held_until
          WHERE c.expires_at <= CAST($4 AS BIGINT)
            OR (c.held_until IS NOT NULL AND c.held_until <= CAST($4 AS BIGINT))
          RETURNING claim_key`,
        values: [key, int(claim.expiresAt), int(claim.heldUntil), int(now)],
      };
    },

    confirmClaim(key: string): SqlQuery {
      return {
        text: `UPDATE ${t('claims')} SET held_until = NULL WHERE claim_key = $1`,
        values: [key],
      };
    },

    releaseClaim(key: string): SqlQuery {
      return {
        text: `DELETE FROM ${t('claims')} WHERE claim_key = $1 AND held_until IS NOT NULL`,
        values: [key],
      };
    },

    renewClaims(keys: readonly string[], until: number): SqlQuery {
      const values: SqlValue[] = [int(until), ...keys];
      const list = keys.map((_, i) => `$${i + 2}`).join(', ');
      return {
        text: `UPDATE ${t('claims')} SET held_until = $1
          WHERE held_until IS NOT NULL AND claim_key IN (${list})`,
        values,
      };
    },

    openSession(session: SessionRecord): SqlQuery {
      return {
        text: `INSERT INTO ${t('sessions')} (session_id, service, deposit_msat, return_invoice, idle_timeout_ms,
            opened_at, last_used_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id) DO NOTHING RETURNING session_id`,
        values: [
          session.id,
          session.service,
          session.depositMsat,
          session.returnInvoice,
          int(session.idleTimeoutMs),
          int(session.openedAt),
          int(session.lastUsedAt),
        ],
      };
    },

    getSession(id: string): SqlQuery {
      return {
        text: `SELECT ${SESSION_COLUMNS} FROM ${t('sessions')} WHERE session_id = $1`,
        values: [id],
      };
    },

    creditSession(id: string, amountMsat: bigint): SqlQuery {
      return {
        text: `UPDATE ${t('sessions')} SET deposit_msat = deposit_msat + $2
          WHERE session_id = $1 AND closed_at IS NULL AND deposit_msat <= CAST($3 AS BIGINT) - $2
          RETURNING session_id`,
        values: [id, amountMsat, MAX_STORED_AMOUNT],
      };
    },

    touchSession(id: string, at: number): SqlQuery {
      return {
        text: `UPDATE ${t('sessions')} SET last_used_at = $2
          WHERE session_id = $1 AND closed_at IS NULL AND last_used_at < $2`,
        values: [id, int(at)],
      };
    },

    closeSession(id: string, at: number): SqlQuery {
      return {
        text: `UPDATE ${t('sessions')} SET closed_at = $2 WHERE session_id = $1 AND closed_at IS NULL
          RETURNING ${SESSION_COLUMNS}`,
        values: [id, int(at)],
      };
    },

    recordRefund(id: string, refundMsat: bigint, refundStatus: string): SqlQuery {
      return {
        text: `UPDATE ${t('sessions')} SET refund_msat = $2, refund_status = $3 WHERE session_id = $1`,
        values: [id, refundMsat, refundStatus],
      };
    },

    listIdleSessions(now: number, limit: number): SqlQuery {
      return {
        text: `SELECT ${SESSION_COLUMNS} FROM ${t('sessions')}
          WHERE closed_at IS NULL AND last_used_at <= CAST($1 AS BIGINT) - idle_timeout_ms
          ORDER BY last_used_at LIMIT $2`,
        values: [int(now), int(limit)],
      };
    },

    /**
     * Takes one free request of a window: starts a new window when the last one ended by `now`,
     * else counts one more if some are left. Returns a row only when the request was granted.
     */
    takeFreebie(
      key: string,
      allowance: { requests: number; periodMs: number },
      now: number,
    ): SqlQuery {
      return {
        text: `INSERT INTO ${t('freebie_windows')} AS w (window_key, used, resets_at) VALUES ($1, 1, $2)
          ON CONFLICT (window_key) DO UPDATE SET
            used = CASE WHEN w.resets_at <= CAST($3 AS BIGINT) THEN 1 ELSE w.used + 1 END,
            resets_at = CASE WHEN w.resets_at <= CAST($3 AS BIGINT) THEN excluded.resets_at ELSE w.resets_at END
          WHERE w.resets_at <= CAST($3 AS BIGINT) OR w.used < CAST($4 AS BIGINT)
          RETURNING resets_at`,
        values: [key, int(now + allowance.periodMs), int(now), int(allowance.requests)],
      };
    },

    freebieResetsAt(key: string): SqlQuery {
      return {
        text: `SELECT resets_at FROM ${t('freebie_windows')} WHERE window_key = $1`,
        values: [key],
      };
    },

    /**
     * Advances bucket clocks: `tat = max(tat, from) + cost`. The row keeps the last cost so that the
     * update can tell it from the inserted clock (`excluded.tat` is `from + cost`).
     */
    advanceBuckets(advances: readonly BucketAdvance[]): SqlQuery[] {
      const queries: SqlQuery[] = [];
      for (let start = 0; start < advances.length; start += BUCKET_BATCH) {
        const values: SqlValue[] = [];
        const rows = advances.slice(start, start + BUCKET_BATCH).map((a) => {
          values.push(a.key, int(a.fromMicros + a.costMicros), int(a.costMicros));
          const n = values.length;
          return `($${n - 2}, $${n - 1}, $${n})`;
        });
        queries.push({
          text: `INSERT INTO ${t('rate_buckets')} AS b (bucket_key, tat, cost) VALUES ${rows.join(', ')}
            ON CONFLICT (bucket_key) DO UPDATE SET
              tat = CASE WHEN b.tat > excluded.tat - excluded.cost THEN b.tat + excluded.cost ELSE excluded.tat END,
              cost = excluded.cost
            RETURNING bucket_key, tat`,
          values,
        });
      }
      return queries;
    },

    /** Forgets buckets full again by `nowMicros` and freebie windows ended by `now` (ms). */
    pruneLimits(now: number): SqlQuery[] {
      return [
        { text: `DELETE FROM ${t('rate_buckets')} WHERE tat <= $1`, values: [int(now * 1000)] },
        { text: `DELETE FROM ${t('freebie_windows')} WHERE resets_at <= $1`, values: [int(now)] },
      ];
    },

    readDocument(name: string): SqlQuery {
      return {
        text: `SELECT revision, body FROM ${t('documents')} WHERE name = $1`,
        values: [name],
      };
    },

    /** Writes a document at `revision` (0: a first write); returns a row only when it was written. */
    writeDocument(name: string, body: string, revision: number): SqlQuery {
      if (revision === 0) {
        return {
          text: `INSERT INTO ${t('documents')} (name, revision, body) VALUES ($1, 1, $2)
            ON CONFLICT (name) DO NOTHING RETURNING revision`,
          values: [name, body],
        };
      }
      return {
        text: `UPDATE ${t('documents')} SET body = $2, revision = revision + 1
          WHERE name = $1 AND revision = $3 RETURNING revision`,
        values: [name, body, int(revision)],
      };
    },

    /** Notes the credit `reference` of a channel; a row when it is new. */
    noteChannelCredit(id: string, reference: string): SqlQuery {
      return {
        text: `INSERT INTO ${t('x402_channel_credits')} (channel_id, reference) VALUES ($1, $2)
          ON CONFLICT DO NOTHING RETURNING reference`,
        values: [id, reference],
      };
    },

    creditChannel(
      channel: Pick<ChannelRecord, 'id' | 'network' | 'config'>,
      amount: bigint,
    ): SqlQuery {
      return {
        text: `INSERT INTO ${t('x402_channels')} (${CHANNEL_COLUMNS})
          VALUES ($1, $2, $3, $4, 0, '', 0, 0, 0)
          ON CONFLICT (channel_id) DO UPDATE SET deposit = ${t('x402_channels')}.deposit + excluded.deposit
          WHERE ${t('x402_channels')}.deposit <= CAST($5 AS BIGINT) - excluded.deposit
          RETURNING channel_id`,
        values: [channel.id, channel.network, channel.config, amount, MAX_STORED_AMOUNT],
      };
    },

    getChannel(id: string): SqlQuery {
      return {
        text: `SELECT ${CHANNEL_COLUMNS} FROM ${t('x402_channels')} WHERE channel_id = $1`,
        values: [id],
      };
    },

    acceptVoucher(id: string, max: bigint, signature: string): SqlQuery {
      return {
        text: `UPDATE ${t('x402_channels')} SET voucher_max = $2, voucher_signature = $3
          WHERE channel_id = $1 AND voucher_max < $2 RETURNING channel_id`,
        values: [id, max, signature],
      };
    },

    noteClaimed(id: string, claimed: bigint): SqlQuery {
      return {
        text: `UPDATE ${t('x402_channels')} SET claimed = $2 WHERE channel_id = $1 AND claimed < $2`,
        values: [id, claimed],
      };
    },

    noteRefunded(id: string, refunded: bigint): SqlQuery {
      return {
        text: `UPDATE ${t('x402_channels')} SET refunded = $2 WHERE channel_id = $1 AND refunded < $2`,
        values: [id, refunded],
      };
    },

    noteWithdrawal(id: string, requestedAt: number): SqlQuery {
      return {
        text: `UPDATE ${t('x402_channels')} SET withdraw_requested_at = $2 WHERE channel_id = $1`,
        values: [id, int(requestedAt)],
      };
    },

    listClaimableChannels(limit: number): SqlQuery {
      return {
        text: `SELECT ${CHANNEL_COLUMNS} FROM ${t('x402_channels')} WHERE voucher_max > claimed
          ORDER BY channel_id LIMIT $1`,
        values: [int(limit)],
      };
    },

    pruneChallenges(now: number): SqlQuery {
      return {
        text: `DELETE FROM ${t('challenges')} WHERE expires_at <= $1`,
        values: [int(now)],
      };
    },

    pruneClaims(now: number): SqlQuery {
      return {
        text: `DELETE FROM ${t('claims')} WHERE expires_at <= $1`,
        values: [int(now)],
      };
    },

    /** Takes the next revocation revision (in PostgreSQL this row lock orders concurrent revocations). */
    nextRevision(): SqlQuery {
      return {
        text: `UPDATE ${t('counters')} SET value = value + 1 WHERE name = 'revocations' RETURNING value`,
        values: [],
      };
    },

    currentRevision(): SqlQuery {
      return {
        text: `SELECT value FROM ${t('counters')} WHERE name = 'revocations'`,
        values: [],
      };
    },

    insertRevocation(
      tokenId: string,
      reason: string | undefined,
      revokedAt: number,
      revision: bigint,
    ): SqlQuery {
      return {
        text: `INSERT INTO ${t('revocations')} (token_id, reason, revoked_at, revision) VALUES ($1, $2, $3, $4)
          ON CONFLICT (token_id) DO NOTHING RETURNING token_id`,
        values: [tokenId, optional(reason), int(revokedAt), revision],
      };
    },

    listRevocations(): SqlQuery {
      return {
        text: `SELECT token_id, reason, revoked_at, revision FROM ${t('revocations')} ORDER BY revision`,
        values: [],
      };
    },

    revocationsAfter(revision: bigint): SqlQuery {
      return {
        text: `SELECT token_id, reason, revoked_at, revision FROM ${t('revocations')}
          WHERE revision > $1 ORDER BY revision`,
        values: [revision],
      };
    },
  };
}

/** The statements of one store; see {@link createSqlQueries}. */
export type SqlQueries = ReturnType<typeof createSqlQueries>;

function badRow(column: string): TollwayError {
  return new TollwayError('store_error', `Unexpected value in column ${column}`);
}

/**
 * Reads an integer column (drivers return bigint here).
 *
 * @internal
 * @example
 * ```ts
 * bigintColumn({ uses: 3n }, 'uses'); // 3n
 * ```
 */
export function bigintColumn(row: SqlRow, column: string): bigint {
  const value = row[column];
  if (typeof value !== 'bigint') throw badRow(column);
  return value;
}

/**
 * The first row of a statement that must return one (`RETURNING`, or a lookup by primary key of a row
 * the migrations create).
 *
 * @internal
 * @example
 * ```ts
 * const revision = bigintColumn(firstRow(rows), 'value');
 * ```
 */
export function firstRow(rows: readonly SqlRow[]): SqlRow {
  const row = rows[0];
  if (row === undefined) throw new TollwayError('store_error', 'A statement returned no row');
  return row;
}

function numberColumn(row: SqlRow, column: string): number {
  return Number(bigintColumn(row, column));
}

function textColumn(row: SqlRow, column: string): string {
  const value = row[column];
  if (typeof value !== 'string') throw badRow(column);
  return value;
}

function isNull(row: SqlRow, column: string): boolean {
  return row[column] === null || row[column] === undefined;
}

function protocolColumn(row: SqlRow): PaymentProtocol {
  const value = textColumn(row, 'protocol');
  if (value === '') throw badRow('protocol');
  return value;
}

/**
 * Decodes a `documents` row.
 *
 * @internal
 * @example
 * ```ts
 * const document = rows.map(toStoredDocument)[0];
 * ```
 */
export function toStoredDocument(row: SqlRow): StoredDocument {
  return { revision: numberColumn(row, 'revision'), body: textColumn(row, 'body') };
}

/**
 * The revision a document write returned.
 *
 * @internal
 * @example
 * ```ts
 * const revision = toDocumentRevision(rows[0]);
 * ```
 */
export function toDocumentRevision(row: SqlRow): number {
  return numberColumn(row, 'revision');
}

/**
 * Decodes a `rate_buckets` row returned by an advance.
 *
 * @internal
 * @example
 * ```ts
 * const clocks = rows.map(toBucketClock);
 * ```
 */
export function toBucketClock(row: SqlRow): BucketClock {
  return { key: textColumn(row, 'bucket_key'), tatMicros: numberColumn(row, 'tat') };
}

/**
 * The outcome of a freebie take: granted when its statement returned a row, else refused until
 * the window's end (read by a second statement; `now` when the window is gone meanwhile).
 *
 * @internal
 * @example
 * ```ts
 * const take = toFreebieTake(run(q.takeFreebie(key, allowance, now))[0], () => run(q.freebieResetsAt(key))[0], now);
 * ```
 */
export function toFreebieTake(
  granted: SqlRow | undefined,
  window: () => SqlRow | undefined,
  now: number,
): FreebieTake {
  if (granted !== undefined) return { granted: true, resetsAt: numberColumn(granted, 'resets_at') };
  const row = window();
  return { granted: false, resetsAt: row === undefined ? now : numberColumn(row, 'resets_at') };
}

/**
 * Decodes a `settlements` row.
 *
 * @internal
 * @example
 * ```ts
 * const settlements = rows.map(toSettlement);
 * ```
 */
export function toSettlement(row: SqlRow): Settlement {
  return {
    reference: textColumn(row, 'reference'),
    ...(isNull(row, 'token_id') ? {} : { tokenId: textColumn(row, 'token_id') }),
    service: textColumn(row, 'service'),
    protocol: protocolColumn(row),
    amount: bigintColumn(row, 'amount'),
    unit: textColumn(row, 'unit'),
    settledAt: numberColumn(row, 'settled_at'),
  };
}

/**
 * Decodes a `tokens` row.
 *
 * @internal
 * @example
 * ```ts
 * const tokens = rows.map(toTokenRecord);
 * ```
 */
export function toTokenRecord(row: SqlRow): TokenRecord {
  return {
    tokenId: textColumn(row, 'token_id'),
    paymentHash: textColumn(row, 'payment_hash'),
    service: textColumn(row, 'service'),
    tier: numberColumn(row, 'tier'),
    createdAt: numberColumn(row, 'created_at'),
    ...(isNull(row, 'expires_at') ? {} : { expiresAt: numberColumn(row, 'expires_at') }),
    ...(isNull(row, 'max_uses') ? {} : { maxUses: numberColumn(row, 'max_uses') }),
    ...(isNull(row, 'initial_balance_msat')
      ? {}
      : { initialBalanceMsat: bigintColumn(row, 'initial_balance_msat') }),
  };
}

/**
 * Decodes a `revocations` row.
 *
 * @internal
 * @example
 * ```ts
 * const revocations = rows.map(toRevocation);
 * ```
 */
export function toRevocation(row: SqlRow): Revocation {
  return {
    tokenId: textColumn(row, 'token_id'),
    ...(isNull(row, 'reason') ? {} : { reason: textColumn(row, 'reason') }),
    revokedAt: numberColumn(row, 'revoked_at'),
  };
}

/**
 * Decodes a row of the revenue query.
 *
 * @internal
 * @example
 * ```ts
 * const report = rows.map(toRevenueRow);
 * ```
 */
export function toRevenueRow(row: SqlRow): RevenueRow {
  return {
    bucket: numberColumn(row, 'bucket'),
    service: textColumn(row, 'service'),
    protocol: protocolColumn(row),
    unit: textColumn(row, 'unit'),
    amount: bigintColumn(row, 'amount'),
    count: numberColumn(row, 'count'),
  };
}

/**
 * Decodes a `token_usage` row (or its absence) of token `tokenId`.
 *
 * @internal
 * @example
 * ```ts
 * toTokenUsage('tok1', rows[0]); // { tokenId: 'tok1', uses: 2, spentMsat: 0n, heldUses: 1, heldMsat: 0n }
 * ```
 */
export function toTokenUsage(tokenId: string, row: SqlRow | undefined): TokenUsage {
  if (row === undefined) return { tokenId, uses: 0, spentMsat: 0n, heldUses: 0, heldMsat: 0n };
  return {
    tokenId,
    uses: numberColumn(row, 'uses'),
    spentMsat: bigintColumn(row, 'spent_msat'),
    heldUses: numberColumn(row, 'held_uses'),
    heldMsat: bigintColumn(row, 'held_msat'),
  };
}

/**
 * Decodes a deleted `holds` row: its token and what it held.
 *
 * @internal
 * @example
 * ```ts
 * toHeldRow(rows[0]); // { tokenId: 'tok1', uses: 1, amountMsat: 0n }
 * ```
 */
export function toHeldRow(row: SqlRow): HeldAmounts & { tokenId: string } {
  return {
    tokenId: textColumn(row, 'token_id'),
    uses: numberColumn(row, 'uses'),
    amountMsat: bigintColumn(row, 'amount_msat'),
  };
}

/**
 * The expiry of a `holds` row read by `getHold`, unix ms.
 *
 * @internal
 * @example
 * ```ts
 * toHoldExpiry(rows[0]); // 1765000000000
 * ```
 */
export function toHoldExpiry(row: SqlRow): number {
  return numberColumn(row, 'expires_at');
}

/**
 * Decodes an `x402_channels` row.
 *
 * @internal
 * @example
 * ```ts
 * toChannelRecord(rows[0]).voucherMax; // 3000n
 * ```
 */
export function toChannelRecord(row: SqlRow): ChannelRecord {
  return {
    id: textColumn(row, 'channel_id'),
    network: textColumn(row, 'network'),
    config: textColumn(row, 'config'),
    deposit: bigintColumn(row, 'deposit'),
    voucherMax: bigintColumn(row, 'voucher_max'),
    voucherSignature: textColumn(row, 'voucher_signature'),
    claimed: bigintColumn(row, 'claimed'),
    refunded: bigintColumn(row, 'refunded'),
    withdrawRequestedAt: Number(bigintColumn(row, 'withdraw_requested_at')),
  };
}

/**
 * Decodes a `sessions` row.
 *
 * @internal
 * @example
 * ```ts
 * toSessionRecord(rows[0]).depositMsat; // 5000000n
 * ```
 */
export function toSessionRecord(row: SqlRow): SessionRecord {
  const session: SessionRecord = {
    id: textColumn(row, 'session_id'),
    service: textColumn(row, 'service'),
    depositMsat: bigintColumn(row, 'deposit_msat'),
    returnInvoice: textColumn(row, 'return_invoice'),
    idleTimeoutMs: numberColumn(row, 'idle_timeout_ms'),
    openedAt: numberColumn(row, 'opened_at'),
    lastUsedAt: numberColumn(row, 'last_used_at'),
  };
  if (!isNull(row, 'closed_at')) session.closedAt = numberColumn(row, 'closed_at');
  if (!isNull(row, 'refund_msat')) session.refundMsat = bigintColumn(row, 'refund_msat');
  if (!isNull(row, 'refund_status')) {
    const status = textColumn(row, 'refund_status');
    if (status !== 'succeeded' && status !== 'failed' && status !== 'skipped') {
      throw badRow('refund_status');
    }
    session.refundStatus = status;
  }
  return session;
}
