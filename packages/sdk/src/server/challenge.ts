/**
 * The 402: a fresh invoice (one for every Lightning offer, none when only invoice-less kinds are
 * offered), each offer kind's part, and a problem body naming the price, what a payment buys and
 * the offers. A refused credential gets the same, with its own status and code.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { createTokenId } from '../l402/identifier.js';
import type { CreatedInvoice } from '../lightning/types.js';
import { formatMsat, formatUsd } from '../money.js';
import { passFree, passShadow, type Refusal, respond, unavailable } from './answers.js';
import type { PaywallContext } from './context.js';
import { type Exchange, isQuote } from './exchange.js';
import type { ChallengeParts, OfferKind, OfferPart } from './offers.js';
import { priceToMsat, type Quote } from './pricing.js';
import type { Route } from './route.js';
import type { PaywallDecision } from './types.js';

const INVOICE_TIMEOUT_MS = 10_000;

/** What a settlement that failed adds to the 402 that replaces the answer. */
export interface ChallengeExtras {
  headers?: ReadonlyArray<[string, string]>;
  settlement?: { kind: string; data: unknown };
  /**
   * The 402 as a preview (discovery): no rate limit counts it, and only the kinds that take no
   * invoice are offered, so nothing is minted or recorded.
   */
  preview?: boolean;
}

/**
 * A 402 (or, for a refused credential, 401) with fresh offers backed by one new invoice. A request
 * its price makes free passes instead; the challenge rate limits apply per client network and in
 * total.
 */
export async function challenge(
  context: PaywallContext,
  exchange: Exchange,
  refusal: Refusal,
  extras: ChallengeExtras = {},
): Promise<PaywallDecision> {
  const { route } = exchange;
  const limiter = extras.preview === true ? undefined : context.limiters.challenges;
  // The client's network is read while the request is surely open: adapters read its address on
  // first use, and a request priced by its body is only priced once the body has arrived.
  const network = limiter === undefined ? undefined : exchange.network();
  const quote = await exchange.quote();
  if (!isQuote(quote)) return respond(context, exchange, quote);
  if (quote.msat === 0n) return passFree(context, exchange, 'free_route');
  // Shadow mode: what would be charged is known; no invoice is made, no challenge counted. A
  // preview (discovery) still shows the 402 the route will answer once it charges.
  if (route.shadow && refusal.code === 'payment_required' && extras.preview !== true) {
    return passShadow(context, exchange, quote.msat);
  }
  const allowed = network === undefined ? undefined : limiter?.take(network);
  if (allowed !== undefined && !allowed.ok) {
    // A refused credential's answer carries a fresh invoice too, so it counts; the 429 still
    // says why the credential was refused.
    const refused =
      refusal.code === 'payment_required'
        ? {}
        : { extensions: { refused: { code: refusal.code, detail: refusal.detail } } };
    return respond(
      context,
      exchange,
      {
        status: 429,
        code: 'rate_limited',
        detail:
          allowed.limit === 'network'
            ? 'Too many payment challenges from your network; retry later.'
            : 'Too many payment challenges right now; retry later.',
        retryAfterSeconds: allowed.retryAfterSeconds,
      },
      refused,
    );
  }
  let amountMsat = quote.msat;
  if (route.balance !== undefined) {
    try {
      amountMsat = await priceToMsat(route.balance, context.rates);
    } catch (error) {
      context.logger.warn({ err: error }, 'the balance could not be priced');
      return respond(
        context,
        exchange,
        unavailable('price_unavailable', 'The price is unavailable.'),
      );
    }
  }
  let minted: MintedOffer[];
  try {
    const all = offeredKinds(context, exchange);
    const kinds = extras.preview === true ? all.filter((kind) => kind.invoice === false) : all;
    const { trace } = exchange;
    minted = await (trace === undefined
      ? mintOffers(context, exchange, kinds, quote, amountMsat)
      : trace.step('tollway.challenge', () =>
          mintOffers(context, exchange, kinds, quote, amountMsat),
        ));
  } catch (error) {
    const code = isTollwayError(error) ? error.code : undefined;
    context.logger.warn({ err: error, code }, 'no invoice for a payment challenge');
    return respond(
      context,
      exchange,
      unavailable('invoice_unavailable', 'No invoice can be created right now; retry later.'),
    );
  }
  const status = refusal.status === 401 && context.aperture ? 402 : refusal.status;
  const parts = minted.map((offer) => offer.part);
  const offers: Record<string, unknown> = {};
  for (const { kind, part } of minted) if (part.data !== undefined) offers[kind] = part.data;
  return respond(
    context,
    exchange,
    { ...refusal, status },
    {
      headers: [...(extras.headers ?? []), ...challengeHeaders(parts)],
      extensions: {
        ...Object.assign({}, ...parts.map((part) => part.body)),
        service: route.service,
        price: describePrice(quote),
        ...(route.balance === undefined ? {} : { balance: describeMsat(amountMsat) }),
        grants: describeGrants(route),
        offers: parts.map((part) => part.entry),
      },
      offers,
      ...(extras.settlement === undefined ? {} : { settlement: extras.settlement }),
    },
  );
}

/** The kinds a 402 for this request lists: every kind, or those the request names. */
function offeredKinds(context: PaywallContext, exchange: Exchange): readonly OfferKind[] {
  const wanted = exchange.request.offers;
  const { kinds } = context;
  return wanted === undefined ? kinds : kinds.filter((kind) => wanted.includes(kind.name));
}

/** One offer kind's part of a 402. */
interface MintedOffer {
  kind: string;
  part: OfferPart;
}

/** Each offered kind's part for one new invoice (none when no offered kind takes one); recorded. */
async function mintOffers(
  context: PaywallContext,
  exchange: Exchange,
  offered: readonly OfferKind[],
  quote: Quote,
  amountMsat: bigint,
): Promise<MintedOffer[]> {
  const { route } = exchange;
  const invoice = offered.some((kind) => kind.invoice !== false)
    ? await createInvoice(context, route, amountMsat)
    : undefined;
  const tokenId = createTokenId();
  const shared: ChallengeParts = {
    route,
    path: exchange.path,
    method: exchange.method,
    invoice,
    tokenId,
    priceMsat: quote.msat,
    price: quote.amount,
    priceMicroUsd: quote.microUsd,
    amountMsat,
    now: exchange.now,
  };
  const minted: MintedOffer[] = [];
  for (const kind of offered) {
    const part = kind.offer(shared);
    if (part !== undefined) minted.push({ kind: kind.name, part });
  }
  exchange.trace?.set({
    'tollway.price.amount': quote.msat.toString(),
    'tollway.price.unit': 'msat',
    'tollway.offers': minted.map((offer) => offer.kind),
    ...(invoice === undefined ? {} : { 'tollway.payment.hash': invoice.paymentHash }),
  });
  if (invoice !== undefined) {
    context.invoices.noteCreated(invoice.paymentHash, amountMsat);
    context.recorder.challenge({
      paymentHash: invoice.paymentHash,
      tokenId: bytesToHex(tokenId),
      service: route.service,
      amountMsat,
      createdAt: exchange.now,
      expiresAt: invoice.expiresAt,
    });
  }
  return minted;
}

/** A new invoice from the backend, within {@link INVOICE_TIMEOUT_MS}. */
async function createInvoice(
  context: PaywallContext,
  route: Route,
  amountMsat: bigint,
): Promise<CreatedInvoice> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TollwayError(
            'backend_unavailable',
            'the Lightning backend did not create the invoice in time',
          ),
        ),
      INVOICE_TIMEOUT_MS,
    );
  });
  const created = context.lightning.createInvoice({
    amountMsat,
    memo: route.description,
    expirySeconds: context.challengeExpiry,
  });
  try {
    return await Promise.race([created, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function challengeHeaders(parts: readonly OfferPart[]): Array<[string, string]> {
  return [
    ...parts.flatMap((part) =>
      part.challenges.map((value): [string, string] => ['WWW-Authenticate', value]),
    ),
    ...parts.flatMap((part) => part.headers ?? []),
  ];
}

function describeMsat(msat: bigint): Record<string, string> {
  return { amount: msat.toString(), unit: 'msat', display: formatMsat(msat) };
}

function describePrice(quote: Quote): Record<string, string> {
  return {
    ...describeMsat(quote.msat),
    ...(quote.amount.unit === 'usd' ? { listed: formatUsd(quote.amount.microUsd) } : {}),
  };
}

function describeGrants(route: Route): Record<string, unknown> {
  return {
    service: route.service,
    tier: route.tier,
    ...(route.validForSeconds === undefined ? {} : { validForSeconds: route.validForSeconds }),
    ...(route.uses === undefined ? {} : { uses: route.uses }),
    ...(route.balance === undefined ? {} : { prepaidBalance: true }),
    ...(route.paths === undefined ? {} : { paths: route.paths }),
    ...(route.methods === undefined ? {} : { methods: route.methods }),
    ...(route.capabilities === undefined ? {} : { capabilities: route.capabilities }),
  };
}
