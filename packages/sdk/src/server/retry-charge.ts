/**
 * Charging a request that was answered must survive a short store outage (a PostgreSQL restart, a
 * failover). Its hold keeps the use or the amount counted meanwhile; but a hold left unsettled
 * expires, is released, and what was answered would be given again. So the charge is retried for
 * as long as the hold can last.
 */

const FIRST_RETRY_MS = 50;
const LONGEST_WAIT_MS = 2000;

/**
 * Runs `charge` (the store write that charges a hold or confirms a claim) until it succeeds,
 * waiting between attempts (50 ms, doubling, at most 2 s apart); once the waits would pass
 * `holdTtlMs`, the hold is gone anyway and the last failure is thrown.
 *
 * @internal
 * @example
 * ```ts
 * await retryCharge(() => store.settleHold(id, charge), context.inflight.ttlMs);
 * ```
 */
export async function retryCharge<T>(charge: () => Promise<T>, holdTtlMs: number): Promise<T> {
  let waited = 0;
  let wait = FIRST_RETRY_MS;
  for (;;) {
    try {
      return await charge();
    } catch (error) {
      if (waited + wait > holdTtlMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
      waited += wait;
      wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    }
  }
}
