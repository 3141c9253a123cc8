/**
 * A quote: the request sent without paying, and what a 402 would cost. Nothing is paid or held.
 *
 * @internal
 */
import { callTags, tagsOf } from './call-tags.js';
import { findSavedCredential } from './credentials.js';
import { bufferedBody, outgoingRequest, readOffers, send } from './http-exchange.js';
import type { PayingContext } from './paying-context.js';
import type { PayingRequestInit, Quote } from './paying-fetch.js';
import { rankOffers } from './select.js';
import { lightningSpend, pausedVerdict } from './spend.js';
import { walletsByNetwork } from './wallets.js';

/**
 * Sends the request without paying and reports the offers of a 402 with their decoded prices,
 * the offer a payment would use and the budget's verdict on it.
 *
 * @internal
 */
export async function quote(
  context: PayingContext,
  input: string | URL | Request,
  init?: PayingRequestInit,
): Promise<Quote> {
  const request = outgoingRequest(input, init);
  const body = await bufferedBody(context, request);
  const { url } = request;
  const target = { path: url.pathname, method: request.method };
  const saved = await findSavedCredential(context, url.origin, target);
  const response = await send(request, body, undefined);
  const result: Quote = {
    url: url.href,
    status: response.status,
    cached: saved !== undefined,
    offers: [],
    rejected: [],
  };
  if (response.status !== 402) {
    await response.body?.cancel();
    return result;
  }
  const parsed = await readOffers(response, context.now());
  await response.body?.cancel();
  const { byNetwork, failure } = await walletsByNetwork(context);
  const ranked = rankOffers(parsed.offers, {
    preferences: context.preferences,
    networks: new Set(byNetwork.keys()),
  });
  if (ranked.candidates.length === 0 && failure !== undefined) throw failure;
  result.offers = parsed.offers;
  result.rejected = [...parsed.rejected, ...ranked.rejected];
  const choice = parsed.rejected.some((r) => r.code === 'amount_mismatch')
    ? undefined
    : ranked.candidates[0];
  if (choice === undefined) return result;
  result.choice = choice;
  const paused = await pausedVerdict(context);
  if (paused !== undefined) {
    result.budget = paused;
  } else if (context.budget !== undefined) {
    const tags = callTags(context, tagsOf(init), body)();
    result.budget = await context.budget.check(lightningSpend(context, choice, { url, tags }));
  }
  return result;
}
