/**
 * Getting a credential for a refused request: one saved since by another call (shared, recovered,
 * or another process's), if its caveats let it serve the request, or a payment of the offer the
 * preferences, the wallets and the budget choose. Concurrent calls on one origin and scope share
 * one payment. A call tries at most one credential another call saved: once one is refused, it
 * pays.
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import type { LightningBackend } from '../lightning/types.js';
import { payBatch } from './batch-payment.js';
import type { Tags } from './call-tags.js';
import { type CallTrace, heldAttributes, paymentAttributes } from './call-trace.js';
import {
  acquiredOf,
  type CredentialTarget,
  credentialApplies,
  findSavedCredential,
  offeredServices,
} from './credentials.js';
import type { OutgoingRequest } from './http-exchange.js';
import { payLightning } from './lightning-payment.js';
import type { LightningOffer, ParsedOffers } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import { settlePendingPayments } from './recovery.js';
import { chooseOffer, type RankedOffers, rankOffers } from './select.js';
import { openSession, refusedSession, topUpSession } from './session-payment.js';
import { lightningSpend, reserveSpend } from './spend.js';
import { walletsByNetwork } from './wallets.js';
import { payX402, x402Candidate } from './x402-payment.js';

/** What {@link acquireCredential} gets a credential for. */
export interface CredentialNeed {
  url: URL;
  method: string;
  /** The scope of the single flight, and of a paid token whose caveats name no paths. */
  scope: string;
  /** The offers of the refusal. */
  parsed: ParsedOffers;
  /** The credential value the server refused just now: not to be sent again. */
  refused: string | undefined;
  /** False once the call has been refused a credential another call saved: it must pay. */
  mayUseSaved: boolean;
  /** The call's tags, for what it pays. */
  tags: () => Tags;
  /** The call's request and body, for a session's top-up (sent as the call is). */
  request: OutgoingRequest;
  body: Uint8Array | undefined;
  /** The call's spans, when tracing is on. */
  trace: CallTrace | undefined;
  /** Whether an x402 batch-settlement offer may be paid (not for a tool call over MCP). */
  batch: boolean;
}

/** The request a saved credential would serve: path, method, and the services offered for it. */
function targetOf(need: CredentialNeed): CredentialTarget {
  const services = offeredServices(need.parsed.offers);
  return { path: need.url.pathname, method: need.method, services };
}

/** True when a credential another call got may be sent for `need`. */
function mayShare(
  context: PayingContext,
  need: CredentialNeed,
  header: { name: string; value: string },
): boolean {
  if (!need.mayUseSaved || header.value === need.refused) return false;
  return credentialApplies(context, header, targetOf(need));
}

/**
 * `candidates` with the session offers moved first when `expectedCalls` requests, at a session's
 * price per request, would cost less than its deposit: the session gives back what they do not
 * use, a balance token keeps it. Otherwise (or without `expectedCalls`) as they are.
 */
function preferSessions(
  candidates: readonly LightningOffer[],
  expectedCalls: number | undefined,
): LightningOffer[] {
  if (expectedCalls === undefined) return [...candidates];
  const worth = (offer: LightningOffer): boolean =>
    offer.protocol === 'mpp-session' &&
    BigInt(Math.max(0, Math.ceil(expectedCalls))) * offer.unitMsat < offer.amountMsat;
  return [...candidates.filter(worth), ...candidates.filter((offer) => !worth(offer))];
}

/** Throws `payment_timeout` while an earlier payment to the origin is unresolved. */
async function assertNothingPending(context: PayingContext, origin: string): Promise<void> {
  const outcomes = await settlePendingPayments(context, origin);
  if (outcomes.includes('pending')) {
    throw new TollwayError(
      'payment_timeout',
      `an earlier payment to ${origin} is still unresolved; it is resolved by payment hash before paying again`,
      { details: { origin } },
    );
  }
}

/** The `no_payable_offer` error of a refusal, with every reason an offer was not paid. */
function noPayableOffer(url: URL, parsed: ParsedOffers, ranked: RankedOffers): TollwayError {
  const rejected = [...parsed.rejected, ...ranked.rejected];
  const reasons = rejected.map((r) => `${r.kind}: ${r.code} (${r.reason})`).join('; ');
  return new TollwayError(
    'no_payable_offer',
    `no offer this client can pay${reasons ? `: ${reasons}` : ''}`,
    { details: { url: url.href, rejected } },
  );
}

/**
 * Pays one offer: x402 when the EVM wallet pays one and x402 comes before the best Lightning
 * offer's protocol in the preferences; else the first Lightning offer, by preference then price,
 * that the budget accepts.
 */
async function payOffer(context: PayingContext, need: CredentialNeed): Promise<Acquired> {
  const { url, parsed, trace } = need;
  const { preferences } = context;
  const { byNetwork, failure } = await walletsByNetwork(context);
  const ranked = rankOffers(parsed.offers, { preferences, networks: new Set(byNetwork.keys()) });
  const evm = await x402Candidate(context, parsed.offers, need.batch);
  const best = ranked.candidates[0];
  const lightningRank =
    best === undefined ? preferences.length : preferences.indexOf(best.protocol);
  if (evm !== undefined && preferences.indexOf('x402') < lightningRank) {
    const params = { offer: evm, url, tags: need.tags(), trace };
    if (evm.scheme === 'batch-settlement') return paidIn(trace, () => payBatch(context, params));
    return paidIn(trace, () => payX402(context, params));
  }
  if (ranked.candidates.length === 0) throw failure ?? noPayableOffer(url, parsed, ranked);
  const candidates = preferSessions(ranked.candidates, context.sessions.expectedCalls);
  const choose = () =>
    chooseOffer(candidates, (o) =>
      reserveSpend(context, lightningSpend(context, o, { url, tags: need.tags() })),
    );
  const { offer, reservation } = await (trace === undefined
    ? choose()
    : trace.step('tollway.budget', async (span) => {
        const chosen = await choose();
        span.setAttributes(heldAttributes(chosen.reservation));
        return chosen;
      }));
  context.emit({ type: 'chosen', url: url.href, offer });
  const wallet = byNetwork.get(offer.invoice.network) as LightningBackend;
  const { scope, method } = need;
  if (offer.protocol !== 'mpp-session') {
    return paidIn(trace, () => payLightning(context, { offer, reservation, wallet, url, scope }));
  }
  const payment = { offer, reservation, wallet, url, scope, method };
  // A session whose bearer credential was refused for want of funds is topped up, not replaced.
  const session = await refusedSession(context, url.origin, need.refused);
  if (session === undefined) return paidIn(trace, () => openSession(context, payment));
  return paidIn(trace, () =>
    topUpSession(context, {
      ...payment,
      session,
      request: need.request,
      ...(need.body === undefined ? {} : { body: need.body }),
    }),
  );
}

/** Runs a payment in the call's `tollway.pay` span, whose attributes, and the call's, say what it paid. */
function paidIn(trace: CallTrace | undefined, pay: () => Promise<Acquired>): Promise<Acquired> {
  if (trace === undefined) return pay();
  return trace.step('tollway.pay', async (span) => {
    const acquired = await pay();
    if (acquired.payment !== undefined) {
      span.setAttributes(paymentAttributes(acquired.payment));
      trace.paid(acquired.payment);
    }
    return acquired;
  });
}

/**
 * Gets a credential for a refused request: one saved since (shared or recovered), or by paying.
 * Pays nothing while an earlier payment to the origin is unresolved (`payment_timeout`).
 */
async function acquireCredential(context: PayingContext, need: CredentialNeed): Promise<Acquired> {
  const { url } = need;
  await assertNothingPending(context, url.origin);
  // Another request may have paid since this one was refused, or a recovered payment left a
  // credential: use it rather than paying, if it can serve this request.
  const known = need.mayUseSaved
    ? await findSavedCredential(context, url.origin, targetOf(need))
    : undefined;
  if (known !== undefined && known.header.value !== need.refused) {
    context.emit({ type: 'shared', url: url.href });
    return acquiredOf(known);
  }
  return payOffer(context, need);
}

/**
 * {@link acquireCredential}, shared with concurrent calls on the same origin and scope: the call
 * that starts the flight pays; the others use its credential when it is reusable and can serve
 * them, and otherwise get one of their own.
 *
 * @internal
 */
export async function acquireShared(
  context: PayingContext,
  need: CredentialNeed,
): Promise<Acquired> {
  const { url } = need;
  let { scope } = need;
  for (;;) {
    const own = { ...need, scope };
    const flight = context.flights.run(url.origin, scope, () => acquireCredential(context, own));
    const acquired = await flight.promise;
    if (flight.leader) return acquired;
    if (acquired.reusable && mayShare(context, need, acquired.header)) {
      context.emit({ type: 'shared', url: url.href });
      const { header, protocol, account } = acquired;
      return { header, protocol, reusable: true, ...(account === undefined ? {} : { account }) };
    }
    // A single-use credential cannot be shared: queue for a payment of this call's own. A token
    // bought for another path or service, or one this call may not try: a flight of its path.
    if (acquired.reusable) scope = url.pathname;
  }
}
