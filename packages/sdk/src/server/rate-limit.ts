/**
 * Token-bucket rate limits, kept in this process's memory: per token for paid requests, per client
 * network for unauthenticated ones, and for challenge minting (each 402 costs an invoice) both per
 * client network and in total, since an attacker holds many networks.
 */
import { TollwayError } from '../errors.js';
import { type Duration, parseDuration } from './duration.js';
import { createLru } from './lru.js';

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
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** How many buckets one limiter remembers; the least recently used are forgotten (refilled). */
const MAX_BUCKETS = 100_000;

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
  const perMs = parseDuration(limit.per, 'rate limit per') * 1000;
  const refillPerMs = requests / perMs;
  const buckets = createLru<string, Bucket>(MAX_BUCKETS);
  return {
    take(key) {
      const time = now();
      const bucket = buckets.get(key) ?? { tokens: capacity, updatedAt: time };
      const elapsed = Math.max(0, time - bucket.updatedAt);
      bucket.tokens = Math.min(capacity, bucket.tokens + elapsed * refillPerMs);
      bucket.updatedAt = time;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      const waitMs = (1 - bucket.tokens) / refillPerMs;
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
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
    take(network) {
      const own = perNetwork?.take(network);
      if (own !== undefined && !own.ok) return { ...own, limit: 'network' };
      const all = total?.take(TOTAL);
      if (all !== undefined && !all.ok) return { ...all, limit: 'total' };
      return { ok: true };
    },
  };
}
