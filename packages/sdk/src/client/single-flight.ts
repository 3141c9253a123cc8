/**
 * One payment at a time per origin and credential scope, within one process: concurrent requests
 * that hit the same 402 share the payment of the first instead of each paying.
 *
 * @internal
 */
import { scopeCovers } from './store-common.js';

/** Flights keyed by origin and scope. See {@link createSingleFlight}. */
export interface SingleFlight<T> {
  /**
   * Runs `work` unless a flight for (`origin`, `scope`) is already running; either way returns the
   * flight's promise, and `leader: true` for the call that started it.
   */
  run(
    origin: string,
    scope: string,
    work: () => Promise<T>,
  ): { promise: Promise<T>; leader: boolean };
  /** Resolves once every flight on `origin` whose scope covers `path` has settled (whatever the outcome). */
  settled(origin: string, path: string): Promise<void>;
}

/**
 * Creates an empty set of flights.
 *
 * @internal
 * @example
 * ```ts
 * const flights = createSingleFlight<string>();
 * const { promise, leader } = flights.run('https://api.example.com', '/', () => payAndBuildCredential());
 * ```
 */
export function createSingleFlight<T>(): SingleFlight<T> {
  const byOrigin = new Map<string, Map<string, Promise<T>>>();
  return {
    run(origin, scope, work) {
      const flights = byOrigin.get(origin) ?? new Map<string, Promise<T>>();
      byOrigin.set(origin, flights);
      const running = flights.get(scope);
      if (running !== undefined) return { promise: running, leader: false };
      const promise = work().finally(() => {
        flights.delete(scope);
        if (flights.size === 0) byOrigin.delete(origin);
      });
      flights.set(scope, promise);
      return { promise, leader: true };
    },
    async settled(origin, path) {
      const flights = byOrigin.get(origin);
      if (flights === undefined) return;
      const covering = [...flights].filter(([scope]) => scopeCovers(scope, path)).map(([, p]) => p);
      await Promise.allSettled(covering);
    },
  };
}
