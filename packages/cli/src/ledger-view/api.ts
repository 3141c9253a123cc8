/**
 * What the ledger view's JSON API answers, read from the agent's store: spend over time grouped
 * as `tollway ledger --by` groups it, what each budget window has left, the recent ledger entries,
 * and whether payments are paused. Amounts are msat bigints (decimal strings on the wire).
 */
import type {
  AgentBudget,
  BudgetWindowStatus,
  ClientStore,
  LedgerEntry,
  LedgerGrouping,
} from '@tollway/sdk/client';
import { type SpendRow, spendRow } from '../ledger-spend.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The buckets of spend over time: the last 24 hours by hour, or the last 30 days by day (UTC). */
const BUCKETS = {
  hour: { ms: HOUR_MS, count: 24 },
  day: { ms: DAY_MS, count: 30 },
} as const;

/** `hour` or `day`. */
type BucketSize = keyof typeof BUCKETS;

/** Spend over a range, grouped, and the same per bucket of it. */
export interface SpendOverTime {
  bucket: BucketSize;
  /** Unix ms: the start of the first bucket, the end of the last (exclusive). */
  since: number;
  until: number;
  /** Each group's spend over the whole range. */
  groups: SpendRow[];
  /** Every bucket of the range, oldest first, with the groups that spent or were charged in it. */
  buckets: Array<{ start: number; rows: SpendRow[] }>;
}

/**
 * Spend grouped by `by` over the last 24 hours (`hour`) or 30 days (`day`), and per bucket: the
 * ledger's own summary, asked once for the range and once per bucket.
 *
 * @example
 * ```ts
 * await spendOverTime(store, { tag: 'agent' }, 'hour', Date.now());
 * ```
 */
export async function spendOverTime(
  store: ClientStore,
  by: LedgerGrouping,
  bucket: BucketSize,
  now: number,
): Promise<SpendOverTime> {
  const { ms, count } = BUCKETS[bucket];
  const until = Math.floor(now / ms) * ms + ms;
  const since = until - count * ms;
  const groups = (await store.summary({ since, until }, by)).map(spendRow);
  const buckets: SpendOverTime['buckets'] = [];
  for (let start = since; start < until; start += ms) {
    const rows = (await store.summary({ since: start, until: start + ms }, by)).map(spendRow);
    buckets.push({ start, rows });
  }
  return { bucket, since, until, groups, buckets };
}

/** One rolling window of the budget: its limit when one is set, what is spent, held and left. */
export interface WindowView {
  window: Exclude<BudgetWindowStatus['window'], 'request'>;
  limitMsat: bigint | null;
  spentMsat: bigint;
  heldMsat: bigint;
  remainingMsat: bigint | null;
}

const WINDOWS: ReadonlyArray<WindowView['window']> = ['hour', 'day', 'month', 'total'];

/**
 * The budget's rolling windows as the paying fetch counts them: the limited ones from the
 * budget's own status, the others with what the store counted in them and no limit.
 *
 * @example
 * ```ts
 * await budgetWindows(createBudget({ store, limits: { day: '5000 sat' } }), Date.now());
 * ```
 */
export async function budgetWindows(budget: AgentBudget, now: number): Promise<WindowView[]> {
  const limited = (await budget.status()).filter((w) => w.budget === budget.path);
  const views: WindowView[] = [];
  for (const window of WINDOWS) {
    const status = limited.find((w) => w.window === window && w.origin === undefined);
    if (status !== undefined) {
      const { limitMsat, spentMsat, heldMsat, remainingMsat } = status;
      views.push({ window, limitMsat, spentMsat, heldMsat, remainingMsat });
      continue;
    }
    const usage = await budget.store.windowStatus(budget.path, window, undefined, now);
    views.push({ window, limitMsat: null, ...usage, remainingMsat: null });
  }
  return views;
}

/** A ledger entry as the page shows it: no resume data or proof (what rebuilds a credential). */
export type EntryView = Omit<LedgerEntry, 'resume' | 'proof'>;

/**
 * The newest `limit` entries of the ledger: payments, draws, releases and refunds.
 *
 * @example
 * ```ts
 * await recentEntries(store, 50);
 * ```
 */
export async function recentEntries(store: ClientStore, limit: number): Promise<EntryView[]> {
  return (await store.list({ limit })).map(({ resume: _resume, proof: _proof, ...entry }) => entry);
}
