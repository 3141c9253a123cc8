/**
 * Conversion to whole satoshis for backends whose API takes sats (LNbits, phoenixd).
 *
 * The rule: an amount that is not a whole number of sats is refused, never rounded. Rounding down
 * would ask for less than the caller's price; rounding up would charge the payer more than the
 * caller said, and an invoice for another amount than requested is refused by the safety layer anyway.
 */
import { TollwayError } from '../errors.js';

/**
 * Returns `msat / 1000`, or throws `invalid_amount` when `msat` is not a whole number of sats.
 *
 * @example
 * ```ts
 * msatToWholeSats(21_000n, 'phoenixd'); // 21n
 * msatToWholeSats(21_500n, 'phoenixd'); // throws invalid_amount
 * ```
 */
export function msatToWholeSats(msat: bigint, backend: string): bigint {
  if (msat % 1000n !== 0n) {
    throw new TollwayError(
      'invalid_amount',
      `${backend} works in whole satoshis: ${msat} msat is not a whole number of sats`,
      { details: { amountMsat: msat.toString() } },
    );
  }
  return msat / 1000n;
}
