/**
 * What the paying fetch asks its budget for before it pays, and the hold it gets (made up, with
 * an id, when there is no budget).
 *
 * @internal
 */
import type { LightningOffer } from './offers.js';
import type { PayingContext } from './paying-context.js';
import type { Reservation, SpendRequest } from './types.js';

/**
 * The spend request of a Lightning offer for `url`: its invoice amount and payee, and the fee
 * ceiling.
 *
 * @internal
 */
export function lightningSpend(
  context: PayingContext,
  offer: LightningOffer,
  url: URL,
): SpendRequest {
  return {
    origin: url.origin,
    url: url.href,
    protocol: offer.protocol,
    payee: offer.invoice.payeePubkey,
    amountMsat: offer.amountMsat,
    maxFeeMsat: context.maxFeeMsat,
    ...(context.tags !== undefined ? { tags: context.tags } : {}),
  };
}

/**
 * Holds `request` in the budget (throwing its refusal), or, without a budget, a reservation that
 * holds nothing but names the payment.
 *
 * @internal
 */
export async function reserveSpend(
  context: PayingContext,
  request: SpendRequest,
): Promise<Reservation> {
  if (context.budget !== undefined) return context.budget.reserve(request);
  return {
    id: globalThis.crypto.randomUUID(),
    request,
    heldMsat: request.amountMsat + request.maxFeeMsat,
    createdAt: context.now(),
  };
}
