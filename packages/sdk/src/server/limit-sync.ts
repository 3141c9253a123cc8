/**
 * The background reconciliation of rate limits between the instances of one API. Decisions are
 * taken on local bucket clocks (no I/O per request); every `syncIntervalMs` the takes since the last
 * sync are added to shared clocks in a {@link LimitStore} in one batch, and each local clock moves up
 * to its shared one. An instance therefore learns what the others took within one interval and
 * the store's round trip, which bounds how far the instances together may go past a limit:
 * `(instances - 1) × (burst + rate × (interval + round trip))`, once, after which the shared clock
 * is in debt and every instance refuses until it is paid back (docs/guides/scaling.md).
 *
 * When the store fails, takes are kept and sent with the next sync; meanwhile each instance limits
 * on its own, as a single instance would.
 */

import type { SharedBuckets } from './rate-limit.js';
import type { PaywallLogger } from './recorder.js';
import type { BucketAdvance, LimitStore } from './store.js';

/** How freebies and rate limits are counted with the other instances of an API. */
export interface SharedLimitOptions {
  /** Where the counters live. Default: the paywall's store. */
  store?: LimitStore;
  /** Paywalls of the same scope count together (for equal limits). Default `'default'`. */
  scope?: string;
  /** How often rate-limit buckets are reconciled with the other instances, ms. Default 250. */
  syncIntervalMs?: number;
}

/** The running reconciliation; see {@link createLimitSync}. */
export interface LimitSync {
  start(): void;
  /** Stops the timer and shares what is left. */
  stop(): Promise<void>;
  /** Shares the takes since the last sync now (one sync at a time). */
  flush(): Promise<void>;
}

const DEFAULT_SYNC_INTERVAL_MS = 250;
/** A failing store is reported at most this often. */
const WARN_EVERY_MS = 60_000;

/**
 * Creates the reconciliation of `buckets` through `store`, under keys `<scope>|<limit>|<key>`.
 *
 * @example
 * ```ts
 * const sync = createLimitSync({ store, scope: 'default', buckets: [limiter.shared], now: Date.now, logger });
 * sync.start();
 * ```
 */
export function createLimitSync(options: {
  store: LimitStore;
  scope: string;
  buckets: readonly SharedBuckets[];
  syncIntervalMs?: number;
  now: () => number;
  logger: PaywallLogger;
}): LimitSync {
  const { store, scope, buckets, now, logger } = options;
  const intervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | undefined;
  /** A take asked for a sync while one was running: run another after it. */
  let again = false;
  let warnedAt = Number.NEGATIVE_INFINITY;

  async function share(): Promise<void> {
    const drained = buckets.map((set) => ({ set, advances: set.drain() }));
    const owners = new Map<string, { set: SharedBuckets; key: string }>();
    const advances: BucketAdvance[] = [];
    for (const { set, advances: taken } of drained) {
      for (const advance of taken) {
        const key = `${scope}|${set.name}|${advance.key}`;
        owners.set(key, { set, key: advance.key });
        advances.push({ ...advance, key });
      }
    }
    if (advances.length === 0) return;
    try {
      for (const clock of await store.advanceBuckets(advances, now())) {
        const owner = owners.get(clock.key);
        owner?.set.learn(owner.key, clock.tatMicros);
      }
    } catch (error) {
      for (const { set, advances: taken } of drained) set.restore(taken);
      if (now() - warnedAt >= WARN_EVERY_MS) {
        warnedAt = now();
        logger.warn({ err: error }, 'rate limits cannot be shared now; each instance limits alone');
      }
    }
  }

  function flush(): Promise<void> {
    running ??= share().finally(() => {
      running = undefined;
      if (again && timer !== undefined) {
        again = false;
        void flush();
      }
    });
    return running;
  }

  /** Syncs soon: after the request that asked (never inside it), or after the running sync. */
  function wake(): void {
    if (timer === undefined || again) return;
    again = true;
    if (running === undefined) {
      setTimeout(() => {
        if (timer === undefined || running !== undefined || !again) return;
        again = false;
        void flush();
      }, 0);
    }
  }

  for (const set of buckets) set.onStale(intervalMs, wake);

  return {
    start() {
      if (timer !== undefined || buckets.length === 0) return;
      timer = setInterval(() => void flush(), intervalMs);
      timer.unref?.();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running;
      await flush();
    },
    flush,
  };
}
