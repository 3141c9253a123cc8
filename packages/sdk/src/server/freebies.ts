/**
 * Freebies: a few free requests per client network (IPv4 /24, IPv6 /48) per period, so people and
 * agents can try a paid route before paying. Counted exactly in a {@link LimitStore} shared by every
 * instance of the API: an allowance of 10 is 10 in total, however many instances serve it. Only a
 * request that may be free waits on the store (the alternative is a 402, which creates an invoice);
 * a network whose allowance is used up is answered from memory until its window ends.
 */
import { TollwayError } from '../errors.js';
import { type Duration, parseDuration } from './duration.js';
import { createLru } from './lru.js';
import type { PaywallLogger } from './recorder.js';
import type { LimitStore } from './store.js';

/** `requests` free requests per client network per `per` (a fixed window from the first one). */
export interface FreebieOptions {
  requests: number;
  per: Duration;
}

/** Freebie counters; see {@link createFreebies}. */
export interface Freebies {
  /**
   * Uses one of `network`'s free requests; false when none is left in the current period (or
   * the store cannot say: nothing is given away then). A promise when the store is asked.
   */
  take(network: string): boolean | Promise<boolean>;
}

const MAX_NETWORKS = 100_000;

/**
 * Creates freebie counters in `store`, under keys `<scope>|freebies|<allowance>|<network>`. `now` is
 * unix ms. Throws `invalid_config` for malformed options.
 *
 * @example
 * ```ts
 * const freebies = createFreebies({ requests: 3, per: '1d' }, { store, scope: 'default', now: Date.now, logger });
 * await freebies.take(clientNetwork(ip)); // true three times a day per /24 or /48
 * ```
 */
export function createFreebies(
  options: FreebieOptions,
  shared: { store: LimitStore; scope: string; now: () => number; logger: PaywallLogger },
): Freebies {
  if (!Number.isSafeInteger(options.requests) || options.requests < 1) {
    throw new TollwayError('invalid_config', 'freebies requests must be a positive whole number');
  }
  const { store, now, logger } = shared;
  const allowance = {
    requests: options.requests,
    periodMs: parseDuration(options.per, 'freebies per') * 1000,
  };
  const prefix = `${shared.scope}|freebies|${allowance.requests}/${allowance.periodMs}ms|`;
  /** Networks with nothing left, until their window ends (unix ms). */
  const exhausted = createLru<string, number>(MAX_NETWORKS);
  return {
    take(network) {
      const time = now();
      const until = exhausted.get(network);
      if (until !== undefined && until > time) return false;
      return store.takeFreebie(`${prefix}${network}`, allowance, time).then(
        (take) => {
          if (!take.granted) exhausted.set(network, take.resetsAt);
          return take.granted;
        },
        (error: unknown) => {
          logger.warn({ err: error }, 'freebies cannot be counted now; the request is not free');
          return false;
        },
      );
    },
  };
}
