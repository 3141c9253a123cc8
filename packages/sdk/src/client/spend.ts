/**
 * What the paying fetch asks before it pays: whether its store is paused (the owner's kill
 * switch, whatever the budget), then its budget, and the hold it gets (made up, with an id, when
 * there is no budget).
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
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
 * The refusal of a payment while the store is paused, as a budget's verdict says it; undefined
 * when it is not paused.
 *
 * @internal
 */
export async function pausedVerdict(
  context: PayingContext,
): Promise<{ ok: false; code: 'payments_paused'; message: string } | undefined> {
  if (!(await context.store.isPaused())) return undefined;
  return {
    ok: false,
    code: 'payments_paused',
    message: 'payments are paused for every agent of this store (its owner can resume them)',
  };
}

/**
 * Holds `request` in the budget (throwing its refusal), or, without a budget, a reservation that
 * holds nothing but names the payment. Throws `payments_paused` first while the store is paused.
 *
 * @internal
 */
export async function reserveSpend(
  context: PayingContext,
  request: SpendRequest,
): Promise<Reservation> {
  const paused = await pausedVerdict(context);
  if (paused !== undefined) throw new TollwayError(paused.code, paused.message);
  if (context.budget !== undefined) return context.budget.reserve(request);
  return {
    id: globalThis.crypto.randomUUID(),
    request,
    heldMsat: request.amountMsat + request.maxFeeMsat,
    createdAt: context.now(),
  };
}
