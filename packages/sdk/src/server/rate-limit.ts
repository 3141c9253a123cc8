/**
 * Token-bucket rate limits: per token for paid requests, per client network for unauthenticated
 * ones, and for challenge minting (each 402 costs an invoice) both per client network and in total,
 * since an attacker holds many networks.
 *
 * Each bucket is a GCRA clock in this process's memory (the time it is full again), so a decision
 * needs no I/O. What a limiter takes is also counted with the other instances of the API: a
 * background sync (`limit-sync.ts`) drains the takes, adds them to shared clocks in a
 * `LimitStore`, and moves the local clocks up to the shared ones.
 */
import { TollwayError } from '../errors.js';
import { type Duration, parseDuration } from './duration.js';
import { createLru } from './lru.js';
import type { BucketAdvance } from './store.js';

/** A token bucket: `requests` per `per`, bursts of up to `burst` (default `requests`). */
export interface RateLimit {
  requests: number;
  per: Duration;
  burst?: number;
}

/** The outcome of {@link RateLimiter.take}. */
type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/** Buckets by key; see {@link createRateLimiter}. */
export interface RateLimiter {
  /** Takes one token from `key`'s bucket, or says how long until one is back. */
  take(key: string): RateDecision;
  /** The same buckets as the background sync sees them. */
  readonly shared: SharedBuckets;
}

/** A limiter's buckets as the background sync sees them (keys are the limiter's own). */
export interface SharedBuckets {
  /** Names the limit: buckets of equal names and keys are one bucket across instances. */
  readonly name: string;
  /** The takes since the last drain, per key, and forgets them. */
  drain(): BucketAdvance[];
  /** Moves a key's clock up to the shared one plus what was taken here since (never back). */
  learn(key: string, tatMicros: number): void;
  /** Gives back drained takes that could not be shared: the next drain has them again. */
  restore(advances: readonly BucketAdvance[]): void;
  /**
   * Calls `wake` when a bucket is taken from whose shared clock is unknown or older than
   * `staleMs` (a key new here, or quiet for a while): the sync should not wait for its interval.
   */
  onStale(staleMs: number, wake: () => void): void;
}

interface Bucket {
  /** When the bucket is full again, unix µs. */
  tat: number;
  /** The clock at the last take, unix µs: a clock set back moves `tat` back as far. */
  seen: number;
  /** µs taken here since the last drain, and when the first of them was taken. */
  pending: number;
  from: number;
  /** When the shared clock was last learned, unix µs (0: never). */
  learnedAt: number;
}

/** How many buckets one limiter remembers; the least recently used are forgotten (refilled). */
const MAX_BUCKETS = 100_000;
const ALLOWED: RateDecision = { ok: true };

function positiveCount(value: number | undefined, what: string): number {
  if (value === undefined || !Number.isSafeInteger(value) || value < 1) {
    throw new TollwayError('invalid_config', `${what} must be a positive whole number`);
  }
  return value;
}

/**
 * Creates token buckets for `limit`, one per key, full when first used. `now` is unix ms. Throws
 * `invalid_config` for a malformed limit.
 *
 * @example
 * ```ts
 * const limiter = createRateLimiter({ requests: 60, per: '1m', burst: 10 }, Date.now);
 * const decision = limiter.take('203.0.113.0/24');
 * if (!decision.ok) console.log(`retry in ${decision.retryAfterSeconds} s`);
 * ```
 */
export function createRateLimiter(limit: RateLimit, now: () => number): RateLimiter {
  const requests = positiveCount(limit.requests, 'rate limit requests');
  const capacity = positiveCount(limit.burst ?? requests, 'rate limit burst');
  const per = parseDuration(limit.per, 'rate limit per');
  // µs per token, rounded up so that rounding never lets more through.
  const interval = Math.ceil((per * 1_000_000) / requests);
  const depth = capacity * interval;
  const buckets = createLru<string, Bucket>(MAX_BUCKETS);
  const taken = new Set<string>();
  let staleMicros = Number.POSITIVE_INFINITY;
  let wake: (() => void) | undefined;
  return {
    take(key) {
      const time = now() * 1000;
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        bucket = { tat: 0, seen: time, pending: 0, from: 0, learnedAt: 0 };
        buckets.set(key, bucket);
      }
      // A clock set back (NTP, a test's clock) keeps what the bucket holds instead of emptying it
      // for as long as the step.
      if (time < bucket.seen) bucket.tat -= bucket.seen - time;
      bucket.seen = time;
      const base = Math.max(bucket.tat, time);
      const wait = base + interval - time - depth;
      if (wait > 0) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(wait / 1e6)) };
      bucket.tat = base + interval;
      const first = bucket.pending === 0;
      if (first) {
        bucket.from = time;
        taken.add(key);
      }
      bucket.pending += interval;
      if (first && time - bucket.learnedAt > staleMicros) wake?.();
      return ALLOWED;
    },
    shared: {
      name: `${requests}/${per}s/${capacity}`,
      drain() {
        const advances: BucketAdvance[] = [];
        for (const key of taken) {
          const bucket = buckets.get(key);
          if (bucket === undefined || bucket.pending === 0) continue;
          advances.push({ key, costMicros: bucket.pending, fromMicros: bucket.from });
          bucket.pending = 0;
        }
        taken.clear();
        return advances;
      },
      learn(key, tatMicros) {
        const bucket = buckets.get(key);
        if (bucket === undefined) return;
        bucket.learnedAt = now() * 1000;
        if (tatMicros + bucket.pending > bucket.tat) bucket.tat = tatMicros + bucket.pending;
      },
      restore(advances) {
        for (const { key, costMicros, fromMicros } of advances) {
          const bucket = buckets.get(key);
          if (bucket === undefined) continue;
          bucket.from = bucket.pending === 0 ? fromMicros : Math.min(bucket.from, fromMicros);
          bucket.pending += costMicros;
          taken.add(key);
        }
      },
      onStale(staleMs, listener) {
        staleMicros = staleMs * 1000;
        wake = listener;
      },
    },
  };
}

/** A challenge limiter's answer: which limit refused, when one did. */
export type ChallengeDecision =
  | { ok: true }
  | { ok: false; retryAfterSeconds: number; limit: 'network' | 'total' };

/** The limits on minting challenges; see {@link createChallengeLimiter}. */
export interface ChallengeLimiter {
  /** Takes one challenge for a client network, from its bucket and then from the total. */
  take(network: string): ChallengeDecision;
  /** Its buckets as the background sync sees them. */
  readonly shared: readonly SharedBuckets[];
}

/** Challenges per client network when none is configured: 30 a minute, bursts of 20. */
const DEFAULT_NETWORK_CHALLENGES: RateLimit = { requests: 30, per: '1m', burst: 20 };

/**
 * Challenges in total when none is configured: 600 a minute, bursts of 100. A client network is
 * an IPv4 /24 or an IPv6 /48, and an attacker may hold hundreds of them.
 */
const DEFAULT_TOTAL_CHALLENGES: RateLimit = { requests: 600, per: '1m', burst: 100 };

const TOTAL = 'total';

/**
 * The same buckets under a name that also says which limit they are.
 *
 * @example
 * ```ts
 * named('token', limiter.shared).name; // 'token:60/60s/60'
 * ```
 */
export function named(prefix: string, buckets: SharedBuckets): SharedBuckets {
  return { ...buckets, name: `${prefix}:${buckets.name}` };
}

/**
 * Creates the limits on minting challenges: one bucket per client network, then one for all of
 * them (`false` turns either off; undefined takes the default). Undefined when both are off.
 * Throws `invalid_config` for a malformed limit.
 *
 * @example
 * ```ts
 * const limiter = createChallengeLimiter({ network: undefined, total: { requests: 100, per: '1m' } }, Date.now);
 * limiter?.take('203.0.113.0/24'); // { ok: true }
 * ```
 */
export function createChallengeLimiter(
  limits: { network: RateLimit | false | undefined; total: RateLimit | false | undefined },
  now: () => number,
): ChallengeLimiter | undefined {
  const perNetwork =
    limits.network === false
      ? undefined
      : createRateLimiter(limits.network ?? DEFAULT_NETWORK_CHALLENGES, now);
  const total =
    limits.total === false
      ? undefined
      : createRateLimiter(limits.total ?? DEFAULT_TOTAL_CHALLENGES, now);
  if (perNetwork === undefined && total === undefined) return undefined;
  return {
    shared: [
      ...(perNetwork === undefined ? [] : [named('challenges', perNetwork.shared)]),
      ...(total === undefined ? [] : [named('challenges-total', total.shared)]),
    ],
    take(network) {
      const own = perNetwork?.take(network);
      if (own !== undefined && !own.ok) return { ...own, limit: 'network' };
      const all = total?.take(TOTAL);
      if (all !== undefined && !all.ok) return { ...all, limit: 'total' };
      return { ok: true };
    },
  };
}
