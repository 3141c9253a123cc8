/**
 * Freebies: a few free requests per client network (IPv4 /24, IPv6 /48) per period, so people and
 * agents can try a paid route before paying. Counted in this process's memory.
 */
import { TollwayError } from '../errors.js';
import { type Duration, parseDuration } from './duration.js';
import { createLru } from './lru.js';

/** `requests` free requests per client network per `per` (a fixed window from the first one). */
export interface FreebieOptions {
  requests: number;
  per: Duration;
}

/** Freebie counters; see {@link createFreebies}. */
export interface Freebies {
  /** Uses one of `network`'s free requests; false when none is left in the current period. */
  take(network: string): boolean;
}

interface Window {
  startedAt: number;
  used: number;
}

const MAX_NETWORKS = 100_000;

/**
 * Creates freebie counters. `now` is unix ms. Throws `invalid_config` for malformed options.
 *
 * @example
 * ```ts
 * const freebies = createFreebies({ requests: 3, per: '1d' }, Date.now);
 * freebies.take(clientNetwork(ip)); // true three times a day per /24 or /48
 * ```
 */
export function createFreebies(options: FreebieOptions, now: () => number): Freebies {
  if (!Number.isSafeInteger(options.requests) || options.requests < 1) {
    throw new TollwayError('invalid_config', 'freebies requests must be a positive whole number');
  }
  const periodMs = parseDuration(options.per, 'freebies per') * 1000;
  const windows = createLru<string, Window>(MAX_NETWORKS);
  return {
    take(network) {
      const time = now();
      let window = windows.get(network);
      if (window === undefined || time - window.startedAt >= periodMs) {
        window = { startedAt: time, used: 0 };
        windows.set(network, window);
      }
      if (window.used >= options.requests) return false;
      window.used += 1;
      return true;
    },
  };
}
