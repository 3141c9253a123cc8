/**
 * Which offer of a 402 to pay: only offers some wallet can pay, in the caller's order of protocols,
 * the cheaper first within a protocol, and the first one the budget accepts.
 */
import { isTollwayError, type TollwayErrorCode } from '../errors.js';
import type { LightningNetwork } from '../lightning/types.js';
import type { LightningOffer, Offer, RejectedOffer, X402Offer } from './offers.js';
import type { ClientProtocol } from './types.js';

/** Options of {@link rankOffers}. */
export interface RankOffersOptions {
  /** Protocols to pay by, most wanted first; offers of other protocols are not paid. */
  preferences: readonly ClientProtocol[];
  /** The networks the client's Lightning wallets are on. */
  networks: ReadonlySet<LightningNetwork>;
}

/** What {@link rankOffers} returns. */
export interface RankedOffers {
  /** Payable offers, best first. */
  candidates: LightningOffer[];
  /** Offers no wallet or preference allows, and why. */
  rejected: RejectedOffer[];
}

/** Budget refusals that depend on the offer (its price or payee): a cheaper or other offer may pass. */
const PER_OFFER_REFUSALS: ReadonlySet<TollwayErrorCode> = new Set([
  'over_price',
  'budget_exceeded',
  'fee_too_high',
  'payee_denied',
]);

/**
 * Orders the offers the client can pay: by position of their protocol in `preferences`, then by
 * price (lowest first). x402 offers are rejected (`capability_unsupported`: no x402 wallet yet), as
 * are offers of a protocol not in `preferences` and Lightning invoices for a network no wallet is on
 * (`wrong_network`).
 *
 * @example
 * ```ts
 * const { candidates } = rankOffers(parsed.offers, {
 *   preferences: ['l402', 'mpp'],
 *   networks: new Set(['regtest']),
 * });
 * ```
 */
export function rankOffers(offers: readonly Offer[], options: RankOffersOptions): RankedOffers {
  const candidates: LightningOffer[] = [];
  const rejected: RejectedOffer[] = [];
  for (const offer of offers) {
    if (!options.preferences.includes(offer.protocol)) {
      rejected.push({
        kind: offer.protocol,
        code: 'capability_unsupported',
        reason: `${offer.protocol} is not among the preferred protocols (${options.preferences.join(', ')})`,
      });
    } else if (offer.protocol === 'x402') {
      rejected.push({
        kind: 'x402',
        code: 'capability_unsupported',
        reason: `no wallet pays x402 (${offer.amount} of ${offer.asset} on ${offer.network})`,
      });
    } else if (!options.networks.has(offer.invoice.network)) {
      const networks = [...options.networks].join(', ') || 'none';
      rejected.push({
        kind: offer.protocol,
        code: 'wrong_network',
        reason: `the invoice is for ${offer.invoice.network}; the wallets are on ${networks}`,
      });
    } else {
      candidates.push(offer);
    }
  }
  const rank = (offer: LightningOffer): number => options.preferences.indexOf(offer.protocol);
  candidates.sort(
    (a, b) =>
      rank(a) - rank(b) || (a.amountMsat < b.amountMsat ? -1 : a.amountMsat > b.amountMsat ? 1 : 0),
  );
  return { candidates, rejected };
}

/** Options of {@link chooseX402Offer}. */
export interface ChooseX402Options {
  /** How many calls the agent expects to make to the origin (`sessions.expectedCalls`). */
  expectedCalls?: number | undefined;
  /** True when the agent has an open channel with the receiver of this `batch-settlement` offer. */
  hasChannel(offer: X402Offer): boolean;
}

/**
 * Which of the x402 offers of one 402 (all payable) to pay, the cheaper first within a kind. A
 * `batch-settlement` offer costs a deposit up front, given back on close less what the calls drew,
 * and then a voucher per call with no chain round trip: it is chosen when the agent expects more
 * than one call, when it already has a channel with that receiver, or when nothing else is
 * offered. Otherwise a payment per call (`exact`, `upto`).
 *
 * @example
 * ```ts
 * const offer = chooseX402Offer(payable, { expectedCalls: 100, hasChannel: () => false });
 * ```
 */
export function chooseX402Offer(
  offers: readonly X402Offer[],
  options: ChooseX402Options,
): X402Offer | undefined {
  const cheapest = (of: readonly X402Offer[]): X402Offer | undefined =>
    of.reduce<X402Offer | undefined>(
      (best, offer) => (best === undefined || offer.amount < best.amount ? offer : best),
      undefined,
    );
  const batch = offers.filter((offer) => offer.scheme === 'batch-settlement');
  const perCall = offers.filter((offer) => offer.scheme !== 'batch-settlement');
  const many = (options.expectedCalls ?? 1) > 1;
  const worth = batch.filter((offer) => many || options.hasChannel(offer));
  return cheapest(worth) ?? cheapest(perCall) ?? cheapest(batch);
}

/**
 * Asks `reserve` for each candidate in order (offers, or any other choices: the sizes of a
 * deposit) and returns the first it grants. A refusal that depends
 * on the offer (`over_price`, `budget_exceeded`, `fee_too_high`, `payee_denied`) moves on to the
 * next candidate; when every candidate is refused, the first refusal is thrown. Any other error is
 * thrown at once.
 *
 * @example
 * ```ts
 * const { offer, reservation } = await chooseOffer(candidates, (o) => budget.reserve(spendRequest(o)));
 * ```
 */
export async function chooseOffer<T, O = LightningOffer>(
  candidates: readonly O[],
  reserve: (offer: O) => Promise<T>,
): Promise<{ offer: O; reservation: T }> {
  let firstRefusal: unknown;
  for (const offer of candidates) {
    try {
      return { offer, reservation: await reserve(offer) };
    } catch (error) {
      if (!isTollwayError(error) || !PER_OFFER_REFUSALS.has(error.code)) throw error;
      firstRefusal ??= error;
    }
  }
  throw firstRefusal;
}
