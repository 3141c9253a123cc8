/**
 * What the paying fetch asks its budget for before it pays, and the hold it gets (made up, with
 * an id, when there is no budget).
 *
 * @internal
 */
import type { Tags } from './call-tags.js';
import type { LightningOffer } from './offers.js';
import type { PayingContext } from './paying-context.js';
import type { Reservation, SpendRequest } from './types.js';

/**
 * The spend request of a Lightning offer for a call to `url`: its invoice amount and payee, the
 * fee ceiling, what it buys (one request, or a balance), and the call's tags.
 *
 * @internal
 */
export function lightningSpend(
  context: PayingContext,
  offer: LightningOffer,
  target: { url: URL; tags: Tags },
): SpendRequest {
  const { url, tags } = target;
  return {
    origin: url.origin,
    url: url.href,
    protocol: offer.protocol,
    payee: offer.invoice.payeePubkey,
    amountMsat: offer.amountMsat,
    maxFeeMsat: context.maxFeeMsat,
    ...(offer.buysBalance === true ? { buys: 'balance' as const } : {}),
    tags,
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
