/**
 * Failures of a tool call as results a model can act on: `isError: true` and a short text that
 * starts with the error code, says whether anything was paid and what to do next. Never a thrown
 * protocol error.
 */

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { formatMsat, isTollwayError, TollwayError } from '@tollway/sdk';

/** What the texts quote from the configuration. */
export interface FailureContext {
  maxCostMsat: bigint;
  maxFeeMsat: bigint;
}

const NOTHING_PAID = 'nothing was paid';

function msat(value: unknown): string {
  return typeof value === 'bigint' ? formatMsat(value) : 'an unknown amount';
}

/** The text for a refusal or failure of the paying fetch, the budget or the wallet. */
function describe(error: TollwayError, context: FailureContext): string {
  const details = error.details ?? {};
  switch (error.code) {
    case 'over_price':
      return details.argument === 'max_cost'
        ? `over_price: this costs ${msat(details.amountMsat)}, above the max_cost of ${msat(details.limitMsat)} you gave; ${NOTHING_PAID}. If the price is worth it, call again with a higher max_cost (at most ${formatMsat(context.maxCostMsat)}, the user's cap).`
        : `over_price: this costs ${msat(details.amountMsat)}, above your per-request cap of ${msat(details.limitMsat)}; ${NOTHING_PAID}. Ask the user to raise --max-cost if it is worth it.`;
    case 'budget_exceeded': {
      const window = typeof details.window === 'string' ? details.window : 'a';
      const where = typeof details.origin === 'string' ? ` for ${details.origin}` : '';
      const next =
        window === 'total'
          ? 'Ask the user to raise --budget-total.'
          : `Wait for older payments to leave the rolling ${window} window (the budget tool shows it), or ask the user to raise --budget-${window}.`;
      return `budget_exceeded: the ${window} budget${where} has ${msat(details.remainingMsat)} left, and a payment holds its price plus up to ${formatMsat(context.maxFeeMsat)} of routing fees; ${NOTHING_PAID}. ${next}`;
    }
    case 'origin_denied':
      return `origin_denied: ${String(details.origin ?? 'this origin')} is not among the origins the user allows paying (--allow-origin); ${NOTHING_PAID}. Ask the user before using this service.`;
    case 'payments_paused':
      return `payments_paused: the user paused every payment of this agent; ${NOTHING_PAID}. Do not retry; tell the user, who can resume payments from the ledger view (tollway ledger --serve).`;
    case 'no_payable_offer':
      return `no_payable_offer: the server asks for payment, but in no way this wallet can pay; ${NOTHING_PAID}. ${error.message}`;
    case 'amount_mismatch':
      return `amount_mismatch: the server's stated price disagrees with its invoice, so it was refused; ${NOTHING_PAID}. Do not retry; tell the user.`;
    case 'payment_failed': {
      const reason = typeof details.reason === 'string' ? details.reason : 'unknown reason';
      const next =
        reason === 'insufficient_balance'
          ? 'Ask the user to fund the wallet.'
          : 'Retry later, or tell the user.';
      return `payment_failed: the wallet could not pay (${reason}); ${NOTHING_PAID}. ${next}`;
    }
    case 'payment_timeout':
      return `payment_timeout: ${error.message}. The payment may still complete. Calling fetch again later is safe (it settles the pending payment first and never pays twice); the payments tool shows it as pending meanwhile.`;
    case 'preimage_mismatch':
      return 'preimage_mismatch: the wallet returned a proof of payment that does not match the invoice; the payment is kept pending. Tell the user.';
    case 'fetch_failed':
      return `fetch_failed: ${error.message}. Check the URL or retry later; a payment made before the failure shows in the payments tool and its credential is reused by the next fetch.`;
    default:
      return `${error.code}: ${error.message}. Unless the payments tool shows a payment for this URL, ${NOTHING_PAID}; tell the user if it persists.`;
  }
}

/**
 * Turns what a tool call threw into a tool error result. A failure that is not a `TollwayError`
 * (a network error of `fetch`, a timeout) is reported as `fetch_failed`.
 *
 * @example
 * ```ts
 * try { return await work(); } catch (error) { return toolError(error, agent.config); }
 * ```
 */
export function toolError(error: unknown, context: FailureContext): CallToolResult {
  const failure = isTollwayError(error) ? error : toFetchFailed(error);
  return {
    isError: true,
    content: [{ type: 'text', text: describe(failure, context) }],
    structuredContent: { error: { code: failure.code, message: failure.message } },
  };
}

/** `fetch_failed` with what the runtime said: the cause of undici's "fetch failed", a timeout, … */
function toFetchFailed(error: unknown): TollwayError {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return new TollwayError('fetch_failed', 'no answer within the time limit (--timeout)', {
      cause: error,
    });
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return new TollwayError('fetch_failed', 'the call was cancelled', { cause: error });
  }
  const cause =
    error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  const message = error instanceof Error ? error.message : String(error);
  return new TollwayError('fetch_failed', `${message}${cause}`, { cause: error });
}
