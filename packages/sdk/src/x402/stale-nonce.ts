/**
 * Sends of the self-hosted facilitator made again when the node refused them for a stale nonce.
 *
 * The facilitator's one account sends every settlement, and concurrent ones (an `exact` payment,
 * a batch-settlement redeem, a refund) each take the account's next nonce from the node before
 * sending: two may take the same one, and the node refuses the later with "nonce too low" (or, while
 * the first is pending, as an underpriced replacement). Nothing of the refused send was broadcast,
 * so sending it again, with a nonce taken anew, is safe. A send the node already has ("already
 * known") is not sent again: it will be mined as it is.
 */
import { BaseError, NonceTooLowError } from 'viem';

/** Times a send refused for a stale nonce is made again. */
const STALE_NONCE_RETRIES = 5;

function isStaleNonce(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  const refused = error.walk(
    (cause) =>
      cause instanceof NonceTooLowError ||
      (cause instanceof BaseError && /replacement transaction underpriced/i.test(cause.details)),
  );
  if (!(refused instanceof BaseError)) return false;
  return !/already known|already imported/i.test(`${refused.details} ${refused.message}`);
}

/**
 * `send`, made again (up to {@link STALE_NONCE_RETRIES} times) while the node refuses it for a
 * stale nonce; any other failure is thrown at once.
 *
 * @example
 * ```ts
 * const hash = await retryStaleNonce(() => client.writeContract(args));
 * ```
 */
export async function retryStaleNonce<T>(send: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await send();
    } catch (error) {
      if (retry >= STALE_NONCE_RETRIES || !isStaleNonce(error)) throw error;
    }
  }
}
