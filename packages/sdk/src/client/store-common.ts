/**
 * Rules shared by the memory and SQLite client stores, so both count windows, stale holds and
 * credential scopes the same way.
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import { assertStorableAmount } from '../stores/common.js';
import type {
  BudgetWindowStatus,
  ChannelPatch,
  LedgerEntry,
  LedgerGrouping,
  LedgerQuery,
  LedgerSum,
  LedgerSummary,
  StoredChannel,
  StoredCredential,
} from './types.js';

/** How long a hold without a live ledger entry counts, by default: 10 minutes. */
export const DEFAULT_STALE_HOLD_MS = 10 * 60_000;

/** Length of each rolling window in ms; `total` has none. */
const WINDOW_MS = {
  hour: 3_600_000,
  day: 86_400_000,
  month: 30 * 86_400_000,
} as const;

/**
 * Spend committed at time `t` counts in `window` at `now` when `t > windowStart(window, now)`: an
 * `hour` window is the last 3600 s, so spend leaves it exactly 3600 s after it was committed.
 *
 * @internal
 * @example
 * ```ts
 * windowStart('hour', 7_200_000); // 3_600_000
 * ```
 */
export function windowStart(window: BudgetWindowStatus['window'], now: number): number {
  if (window === 'hour' || window === 'day' || window === 'month') return now - WINDOW_MS[window];
  return Number.MIN_SAFE_INTEGER;
}

/**
 * True when `scope` covers `path` the way a cookie path does: equal, or a prefix ending at a `/`.
 *
 * @internal
 * @example
 * ```ts
 * scopeCovers('/api', '/api/v1'); // true
 * scopeCovers('/api', '/apix');   // false
 * ```
 */
export function scopeCovers(scope: string, path: string): boolean {
  if (!path.startsWith(scope)) return false;
  return path.length === scope.length || scope.endsWith('/') || path[scope.length] === '/';
}

/**
 * The credential of `candidates` (all of one origin) with the longest scope covering `path` that
 * has not expired at `now`.
 *
 * @internal
 * @example
 * ```ts
 * pickCredential(saved, '/api/v1/forecast', Date.now());
 * ```
 */
export function pickCredential(
  candidates: Iterable<StoredCredential>,
  path: string,
  now: number,
): StoredCredential | undefined {
  let best: StoredCredential | undefined;
  for (const credential of candidates) {
    if (credential.expiresAt !== undefined && credential.expiresAt <= now) continue;
    if (!scopeCovers(credential.scope, path)) continue;
    if (best === undefined || credential.scope.length > best.scope.length) best = credential;
  }
  return best;
}

/**
 * Throws `invalid_amount` unless the amounts of `entry` can be stored: none negative, msat amounts
 * within a signed 64-bit integer.
 *
 * @internal
 * @example
 * ```ts
 * assertLedgerEntry(entry);
 * ```
 */
export function assertLedgerEntry(
  entry: Pick<LedgerEntry, 'amount' | 'amountMsat' | 'feeMsat'>,
): void {
  if (entry.amount < 0n)
    throw new TollwayError('invalid_amount', 'a ledger amount must not be negative');
  assertStorableAmount(entry.amountMsat, 'amountMsat');
  assertStorableAmount(entry.feeMsat, 'feeMsat');
}

/**
 * Throws `invalid_amount` unless `limit` of a ledger query is absent or a non-negative integer.
 *
 * @internal
 * @example
 * ```ts
 * assertQueryLimit(query.limit);
 * ```
 */
export function assertQueryLimit(limit: number | undefined): void {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new TollwayError('invalid_amount', 'a ledger query limit must be a non-negative integer');
  }
}

/**
 * True when `entry` passes the filters of `query` (`since` inclusive, `until` exclusive); `limit`
 * is applied by the caller.
 *
 * @internal
 * @example
 * ```ts
 * entries.filter((e) => matchesQuery(e, { origin: 'https://api.example.com' }));
 * ```
 */
export function matchesQuery(entry: LedgerEntry, query: LedgerQuery): boolean {
  return (
    (query.since === undefined || entry.time >= query.since) &&
    (query.until === undefined || entry.time < query.until) &&
    (query.origin === undefined || entry.origin === query.origin) &&
    (query.status === undefined || entry.status === query.status) &&
    (query.kind === undefined || entry.kind === query.kind) &&
    (query.protocol === undefined || entry.protocol === query.protocol) &&
    (query.account === undefined || entry.account === query.account) &&
    (query.tag === undefined || entry.tags[query.tag.key] === query.tag.value)
  );
}

/**
 * The group key of `entry` under `by`: its origin, its account, or the value of a tag (`''`
 * when absent).
 *
 * @internal
 * @example
 * ```ts
 * groupKey(entry, { tag: 'agent' }); // 'researcher'
 * ```
 */
export function groupKey(entry: LedgerEntry, by: LedgerGrouping): string {
  if (by === 'origin') return entry.origin;
  if (by === 'account') return entry.account ?? '';
  return entry.tags[by.tag] ?? '';
}

function emptySum(): LedgerSum {
  return { count: 0, amountMsat: 0n, feeMsat: 0n };
}

/**
 * An empty summary row for `key`.
 *
 * @internal
 * @example
 * ```ts
 * emptySummary('https://api.example.com').purchases.count; // 0
 * ```
 */
export function emptySummary(key: string): LedgerSummary {
  return {
    key,
    purchases: emptySum(),
    draws: emptySum(),
    unsettledDraws: emptySum(),
    releases: 0,
    refunds: emptySum(),
  };
}

/**
 * Adds `entry` to the summary row it counts in (failed entries and pending purchases count
 * nowhere).
 *
 * @internal
 * @example
 * ```ts
 * for (const entry of entries) addToSummary(rows.get(groupKey(entry, by)), entry);
 * ```
 */
export function addToSummary(row: LedgerSummary, entry: LedgerEntry): void {
  if (entry.kind === 'release') {
    row.releases += 1;
    return;
  }
  let sum: LedgerSum | undefined;
  if (entry.status === 'succeeded') {
    sum =
      entry.kind === 'purchase' ? row.purchases : entry.kind === 'draw' ? row.draws : row.refunds;
  } else if (entry.status === 'pending' && entry.kind === 'draw') {
    sum = row.unsettledDraws;
  }
  if (sum === undefined) return;
  sum.count += 1;
  sum.amountMsat += entry.amountMsat;
  sum.feeMsat += entry.feeMsat;
}

/**
 * `channel` with `patch` applied (`record: null` removes its record).
 *
 * @internal
 */
export function patchChannel(channel: StoredChannel, patch: ChannelPatch): StoredChannel {
  const { record, ...rest } = patch;
  const next: StoredChannel = { ...channel, ...rest };
  if (record === null) delete next.record;
  else if (record !== undefined) next.record = { ...record };
  return next;
}
