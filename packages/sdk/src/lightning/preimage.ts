/**
 * The proof of a Lightning payment: a preimage whose SHA-256 is the payment hash. Apart from
 * `bolt11.ts` so that checking a proof loads no elliptic-curve code (the paying fetch checks
 * proofs on paths that decode no invoice).
 */
import { TollwayError } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';
import { sha256, timingSafeEqual } from '../internal/crypto.js';

/**
 * True when `preimage` is the proof of payment for `paymentHash` (32 bytes of hex each, either
 * case): `sha256(preimage) == paymentHash`, compared in constant time. False for anything that is
 * not 32 bytes of hex.
 *
 * @example
 * ```ts
 * const { preimage, paymentHash } = createPreimage();
 * preimageMatches(preimage, paymentHash); // true
 * ```
 */
export function preimageMatches(preimage: string, paymentHash: string): boolean {
  try {
    return timingSafeEqual(sha256(hexToBytes(preimage, 32)), hexToBytes(paymentHash, 32));
  } catch (error) {
    if (error instanceof TollwayError) return false;
    throw error;
  }
}
