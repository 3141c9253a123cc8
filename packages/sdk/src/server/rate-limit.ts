/**
 * Token-bucket rate limits, kept in this process's memory: per token for paid requests, per client
 * network for unauthenticated ones and for challenge minting (each 402 costs an invoice).
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
