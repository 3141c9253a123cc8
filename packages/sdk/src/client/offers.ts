/**
 * `@tollway/sdk/client/offers`: every offer of a 402 (or of a 401 that carries challenges), read the
 * way a paying client must read it: L402 in all its deployed forms, MPP `Payment` lightning charges, x402 v2 (`PAYMENT-REQUIRED`)
 * and v1 (JSON body). Lightning offers carry their invoice decoded with its signature checked, and
 * their price is the invoice amount, never a header's or a body's claim: a claim that disagrees with
 * the invoice is reported as `amount_mismatch`.
 */
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { base64ToBytes, bytesToUtf8 } from '../internal/bytes.js';
import { parseL402Challenges } from '../l402/challenge.js';
import type { L402Scheme } from '../l402/types.js';
import { type DecodedInvoice, decodeInvoice, isInvoiceExpired } from '../lightning/bolt11.js';
import { type PaymentChallenge, parsePaymentChallenges } from '../mpp/challenge.js';
import { decodeChargeRequest } from '../mpp/charge-request.js';
import { isJsonObject, type JsonObject, type JsonValue, parseJson } from '../mpp/json.js';
import { decodeSessionRequest } from '../mpp/session-request.js';
import type { X402PaymentRequired } from '../x402/types.js';
import { requirementsToWire } from '../x402/wire.js';

/** An L402 offer: a macaroon and the invoice whose preimage unlocks it. */
export interface L402Offer {
  protocol: 'l402';
  /** `L402` when the server offered that scheme name (alone or beside `LSAT`), else `LSAT`. */
  scheme: L402Scheme;
  /** The token exactly as received (opaque to the client). */
  macaroon: string;
  /** The invoice, decoded; its signature was checked. */
  invoice: DecodedInvoice;
  /** The price: the invoice amount. */
  amountMsat: bigint;
  /**
   * True when the invoice buys a prepaid balance that later requests draw from (a metered route's:
   * the 402's body names the `balance`, equal to the invoice amount), not one request.
   */
  buysBalance?: true;
}

/** An MPP `Payment` offer with method `lightning` and intent `charge`. */
export interface MppOffer {
  protocol: 'mpp';
  /** The challenge, echoed unchanged in the credential. */
  challenge: PaymentChallenge;
  invoice: DecodedInvoice;
  /** The price: the invoice amount (the request's `amount` was checked against it). */
  amountMsat: bigint;
  /** As {@link L402Offer.buysBalance}: the charge pays for a balance each later call draws from. */
  buysBalance?: true;
}

/**
 * An MPP `Payment` offer with method `lightning` and intent `session`: a deposit that many requests
 * draw from, what is left refunded to the payer's return invoice when the session closes.
 */
export interface MppSessionOffer {
  protocol: 'mpp-session';
  /** The challenge, echoed unchanged in the session's credentials. */
  challenge: PaymentChallenge;
  /** The deposit invoice, decoded. */
  invoice: DecodedInvoice;
  /** The deposit: the invoice amount (the request's `depositAmount` was checked against it). */
  amountMsat: bigint;
  /** The price of one request (the request's `amount`). */
  unitMsat: bigint;
  /** Seconds without a request after which the server closes the session and refunds it. */
  idleTimeoutSeconds?: number;
  /** A session is a balance. */
  buysBalance: true;
}

/** An x402 payment requirement (v2 header, v1 body, or the tool result of x402 over MCP). */
export interface X402Offer {
  protocol: 'x402';
  x402Version: 1 | 2;
  /** `exact`, `upto`, … */
  scheme: string;
  /** CAIP-2 (`eip155:8453`) in v2; a name (`base-sepolia`) in v1. */
  network: string;
  /** Token contract address (or asset id). */
  asset: string;
  /** Amount in the asset's base units (`amount` in v2, `maxAmountRequired` in v1). */
  amount: bigint;
  payTo: string;
  maxTimeoutSeconds?: number;
  /** The requirement object as received, to echo when paying. */
  requirement: JsonObject;
}

/** Any offer. Lightning offers (`l402`, `mpp`, `mpp-session`) carry a decoded invoice. */
export type Offer = L402Offer | MppOffer | MppSessionOffer | X402Offer;

/** An offer the client can pay with a Lightning wallet. */
export type LightningOffer = L402Offer | MppOffer | MppSessionOffer;

/** An offer, or something that looked like one, that the client will not pay, and why. */
export interface RejectedOffer {
  /** `l402`, `mpp`, `x402`, or another kind seen (`cashu`, `l402-offers`). */
  kind: string;
  code: TollwayErrorCode;
  reason: string;
}

/** What {@link parseOffers} found. */
export interface ParsedOffers {
  offers: Offer[];
  rejected: RejectedOffer[];
}

/** The parts of a response {@link parseOffers} reads. */
export interface OfferSource {
  headers: Headers;
  /** The response body as text, when it was read (the client reads at most 64 KiB). */
  body?: string;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function reject(kind: string, code: TollwayErrorCode, reason: string): RejectedOffer {
  return { kind, code, reason };
}

function reasonOf(error: unknown): { code: TollwayErrorCode; reason: string } {
  if (isTollwayError(error)) return { code: error.code, reason: error.message };
  throw error;
}

/** The skipped-challenge reasons a header parser put in its `invalid_challenge` error. */
function skippedReasons(error: unknown, kind: string): RejectedOffer[] {
  const { code, reason } = reasonOf(error);
  const skipped = isTollwayError(error) ? error.details?.skipped : undefined;
  if (code !== 'invalid_challenge' || !Array.isArray(skipped)) return [reject(kind, code, reason)];
  return skipped.map((why) => reject(kind, 'invalid_challenge', String(why)));
}

/** Decodes an invoice and checks what does not depend on the wallet: amount and expiry. */
function readInvoice(kind: string, text: string, now: number): DecodedInvoice | RejectedOffer {
  let invoice: DecodedInvoice;
  try {
    invoice = decodeInvoice(text);
  } catch (error) {
    const { code, reason } = reasonOf(error);
    return reject(kind, code, reason);
  }
  if (invoice.amountMsat === undefined) {
    return reject(
      kind,
      'amount_required',
      'the invoice names no amount; an amount chosen by the payer is refused',
    );
  }
  if (isInvoiceExpired(invoice, now)) {
    return reject(
      kind,
      'invoice_expired',
      `the invoice expired at ${new Date(invoice.expiresAt).toISOString()}`,
    );
  }
  return invoice;
}

function isRejected(value: DecodedInvoice | RejectedOffer): value is RejectedOffer {
  return 'reason' in value;
}

function l402Offers(value: string, now: number, out: ParsedOffers): void {
  let challenges: ReturnType<typeof parseL402Challenges>;
  try {
    challenges = parseL402Challenges(value);
  } catch (error) {
    out.rejected.push(
      ...skippedReasons(error, 'l402').filter((r) => r.reason !== 'no L402 challenge'),
    );
    return;
  }
  // Aperture sends the same token twice (LSAT, then L402): one offer, under the newer name.
  const byToken = new Map<string, L402Offer>();
  for (const challenge of challenges) {
    const key = `${challenge.macaroon}\n${challenge.invoice}`;
    const known = byToken.get(key);
    if (known !== undefined) {
      if (challenge.scheme === 'L402') known.scheme = 'L402';
      continue;
    }
    const invoice = readInvoice('l402', challenge.invoice, now);
    if (isRejected(invoice)) {
      out.rejected.push(invoice);
      continue;
    }
    const offer: L402Offer = {
      protocol: 'l402',
      scheme: challenge.scheme,
      macaroon: challenge.macaroon,
      invoice,
      amountMsat: invoice.amountMsat ?? 0n,
    };
    byToken.set(key, offer);
    out.offers.push(offer);
  }
}

/** The offer of a lightning session challenge, or why it cannot be paid. */
function mppSessionOffer(
  challenge: PaymentChallenge,
  now: number,
): MppSessionOffer | RejectedOffer {
  const expired = challengeExpiry('mpp-session', challenge, now);
  if (expired !== undefined) return expired;
  let request: ReturnType<typeof decodeSessionRequest>;
  try {
    request = decodeSessionRequest(challenge.request);
  } catch (error) {
    const { code, reason } = reasonOf(error);
    return reject('mpp-session', code, reason);
  }
  if (request.depositInvoice === undefined) {
    return reject(
      'mpp-session',
      'invalid_challenge',
      'the session challenge has no deposit invoice',
    );
  }
  const invoice = readInvoice('mpp-session', request.depositInvoice, now);
  if (isRejected(invoice)) return invoice;
  if (request.paymentHash !== invoice.paymentHash) {
    return reject(
      'mpp-session',
      'invalid_challenge',
      'the request names another payment hash than its deposit invoice',
    );
  }
  const amountMsat = invoice.amountMsat ?? 0n;
  if (request.depositAmountSat !== undefined && request.depositAmountSat * 1000n !== amountMsat) {
    return reject(
      'mpp-session',
      'amount_mismatch',
      `the challenge asks a deposit of ${request.depositAmountSat} sat, its invoice ${amountMsat} msat`,
    );
  }
  return {
    protocol: 'mpp-session',
    challenge,
    invoice,
    amountMsat,
    unitMsat: request.amountSat * 1000n,
    ...(request.idleTimeoutSeconds === undefined
      ? {}
      : { idleTimeoutSeconds: request.idleTimeoutSeconds }),
    buysBalance: true,
  };
}

/** Why a challenge cannot be answered any more (or its expiry is unreadable), if so. */
function challengeExpiry(
  kind: string,
  challenge: PaymentChallenge,
  now: number,
): RejectedOffer | undefined {
  if (challenge.expires === undefined) return undefined;
  const expires = Date.parse(challenge.expires);
  if (Number.isNaN(expires))
    return reject(kind, 'invalid_challenge', 'expires is not an RFC 3339 time');
  if (now >= expires) {
    return reject(kind, 'challenge_expired', `the challenge expired at ${challenge.expires}`);
  }
  return undefined;
}

function mppOffer(
  challenge: PaymentChallenge,
  now: number,
): MppOffer | MppSessionOffer | RejectedOffer {
  if (challenge.method === 'lightning' && challenge.intent === 'session') {
    return mppSessionOffer(challenge, now);
  }
  if (challenge.method !== 'lightning' || challenge.intent !== 'charge') {
    return reject(
      'mpp',
      'capability_unsupported',
      `Payment method "${challenge.method}", intent "${challenge.intent}" is not supported`,
    );
  }
  const expired = challengeExpiry('mpp', challenge, now);
  if (expired !== undefined) return expired;
  let request: ReturnType<typeof decodeChargeRequest>;
  try {
    request = decodeChargeRequest(challenge.request);
  } catch (error) {
    const { code, reason } = reasonOf(error);
    return reject('mpp', code, reason);
  }
  const invoice = readInvoice('mpp', request.invoice, now);
  if (isRejected(invoice)) return invoice;
  if (request.paymentHash !== undefined && request.paymentHash !== invoice.paymentHash) {
    return reject(
      'mpp',
      'invalid_challenge',
      'the request names another payment hash than its invoice',
    );
  }
  if (request.network !== undefined && request.network !== invoice.network) {
    return reject(
      'mpp',
      'wrong_network',
      `the request says ${request.network}, its invoice is for ${invoice.network}`,
    );
  }
  // The draft states the price twice, as the request's `amount` and in the invoice: both must agree.
  const amountMsat = invoice.amountMsat ?? 0n;
  if (request.amountSat * 1000n !== amountMsat) {
    return reject(
      'mpp',
      'amount_mismatch',
      `the challenge asks ${request.amountSat} sat, its invoice ${amountMsat} msat`,
    );
  }
  return { protocol: 'mpp', challenge, invoice, amountMsat };
}

function mppOffers(value: string, now: number, out: ParsedOffers): void {
  let challenges: PaymentChallenge[];
  try {
    challenges = parsePaymentChallenges(value);
  } catch (error) {
    out.rejected.push(
      ...skippedReasons(error, 'mpp').filter((r) => r.reason !== 'no Payment challenge'),
    );
    return;
  }
  for (const challenge of challenges) {
    const offer = mppOffer(challenge, now);
    if ('reason' in offer) out.rejected.push(offer);
    else out.offers.push(offer);
  }
}

function stringMember(object: JsonObject, name: string): string | undefined {
  const value = object[name];
  return typeof value === 'string' ? value : undefined;
}

function x402Offer(version: 1 | 2, requirement: JsonValue | undefined): X402Offer | RejectedOffer {
  if (!isJsonObject(requirement))
    return reject('x402', 'invalid_json', 'an accepts entry is not an object');
  const scheme = stringMember(requirement, 'scheme');
  const network = stringMember(requirement, 'network');
  const asset = stringMember(requirement, 'asset');
  const payTo = stringMember(requirement, 'payTo');
  const amount = stringMember(requirement, version === 2 ? 'amount' : 'maxAmountRequired');
  if (!scheme || !network || !asset || !payTo || amount === undefined) {
    return reject(
      'x402',
      'invalid_json',
      'an accepts entry lacks scheme, network, asset, payTo or amount',
    );
  }
  if (!DECIMAL.test(amount))
    return reject('x402', 'invalid_amount', `amount "${amount}" is not a decimal integer`);
  const offer: X402Offer = {
    protocol: 'x402',
    x402Version: version,
    scheme,
    network,
    asset,
    amount: BigInt(amount),
    payTo,
    requirement,
  };
  const timeout = requirement.maxTimeoutSeconds;
  if (typeof timeout === 'number' && Number.isSafeInteger(timeout))
    offer.maxTimeoutSeconds = timeout;
  return offer;
}

function x402Offers(version: 1 | 2, json: JsonObject, out: ParsedOffers): void {
  const accepts = json.accepts;
  if (!Array.isArray(accepts)) {
    out.rejected.push(reject('x402', 'invalid_json', `x402 v${version}: accepts is not a list`));
    return;
  }
  for (const requirement of accepts) {
    const offer = x402Offer(version, requirement);
    if ('reason' in offer) out.rejected.push(offer);
    else out.offers.push(offer);
  }
}

function parseJsonText(text: string): JsonValue | undefined {
  try {
    return parseJson(text);
  } catch (error) {
    if (isTollwayError(error)) return undefined;
    throw error;
  }
}

/** The v2 `PAYMENT-REQUIRED` header: standard base64 of the PaymentRequired JSON. */
function x402Header(value: string, out: ParsedOffers): void {
  let json: JsonValue | undefined;
  try {
    json = parseJsonText(bytesToUtf8(base64ToBytes(value.trim())));
  } catch (error) {
    const { code, reason } = reasonOf(error);
    out.rejected.push(reject('x402', code, `PAYMENT-REQUIRED: ${reason}`));
    return;
  }
  if (!isJsonObject(json) || json.x402Version !== 2) {
    out.rejected.push(
      reject('x402', 'invalid_json', 'PAYMENT-REQUIRED is not an x402 v2 PaymentRequired object'),
    );
    return;
  }
  x402Offers(2, json, out);
}

/**
 * The offers of an x402 v2 PaymentRequired already decoded (the payment-required tool result of
 * x402 over MCP, or a `PAYMENT-REQUIRED` header read with `parsePaymentRequiredHeader`): one offer
 * per requirement, the requirement kept in its wire form to echo when paying.
 *
 * @example
 * ```ts
 * const required = readMcpPaymentRequired(toolResult);
 * const offers = required === undefined ? [] : offersOfPaymentRequired(required);
 * ```
 */
export function offersOfPaymentRequired(required: X402PaymentRequired): X402Offer[] {
  return required.accepts.map((requirement) => ({
    protocol: 'x402',
    x402Version: 2,
    scheme: requirement.scheme,
    network: requirement.network,
    asset: requirement.asset,
    amount: requirement.amount,
    payTo: requirement.payTo,
    maxTimeoutSeconds: requirement.maxTimeoutSeconds,
    requirement: requirementsToWire(requirement) as JsonObject,
  }));
}

/**
 * Claims of price in a JSON body (Tollway's problem body lists `offers` with `invoice`, `amount`
 * and `unit`; a session's with `depositAmount`): each must equal the amount of the invoice it
 * names.
 */
function bodyClaims(json: JsonObject, offers: readonly Offer[], out: ParsedOffers): void {
  const entries = json.offers;
  if (!Array.isArray(entries)) return;
  for (const entry of entries) {
    if (!isJsonObject(entry)) continue;
    const invoiceText = stringMember(entry, 'invoice')?.toLowerCase();
    // A session's entry states the price of one request and, apart, its deposit: the invoice's.
    const session = stringMember(entry, 'intent') === 'session';
    const amount = stringMember(entry, session ? 'depositAmount' : 'amount');
    const unit = stringMember(entry, 'unit');
    if (invoiceText === undefined || amount === undefined || !DECIMAL.test(amount)) continue;
    if (unit !== 'msat' && unit !== 'sat') continue;
    const claimedMsat = unit === 'sat' ? BigInt(amount) * 1000n : BigInt(amount);
    for (const offer of offers) {
      if (offer.protocol === 'x402' || offer.invoice.paymentRequest !== invoiceText) continue;
      if (offer.amountMsat !== claimedMsat) {
        out.rejected.push(
          reject(
            offer.protocol,
            'amount_mismatch',
            `the body asks ${claimedMsat} msat, the invoice ${offer.amountMsat} msat`,
          ),
        );
      }
    }
  }
}

/** The msat of a body's `{ amount, unit }` (`msat` or `sat`), if it is one. */
function msatOfClaim(claim: JsonValue | undefined): bigint | undefined {
  if (!isJsonObject(claim)) return undefined;
  const amount = stringMember(claim, 'amount');
  const unit = stringMember(claim, 'unit');
  if (amount === undefined || !DECIMAL.test(amount) || amount.length > 24) return undefined;
  if (unit === 'msat') return BigInt(amount);
  return unit === 'sat' ? BigInt(amount) * 1000n : undefined;
}

/**
 * Marks the Lightning offers that buy the balance a JSON body names (Tollway's problem body of a
 * metered route: `balance: { amount, unit }`): those whose invoice is for that amount.
 */
function balanceClaim(json: JsonObject, offers: readonly Offer[]): void {
  const balanceMsat = msatOfClaim(json.balance);
  if (balanceMsat === undefined) return;
  for (const offer of offers) {
    if (offer.protocol !== 'x402' && offer.amountMsat === balanceMsat) offer.buysBalance = true;
  }
}

/**
 * Reads every offer of a payment-required response. Challenges of other schemes (Basic, Bearer, …)
 * are ignored; what looks like an offer but cannot be used is listed in `rejected` with a code:
 * `invalid_challenge` (incomplete header), `invalid_invoice`, `amount_required` (amountless
 * invoice), `invoice_expired`, `challenge_expired`, `wrong_network` (an MPP request naming another
 * network than its invoice), `capability_unsupported` (MPP methods other than lightning charge,
 * Cashu `X-Cashu`, Fewsats-style JSON offers), `invalid_json`, and `amount_mismatch` whenever an MPP
 * request or a JSON body claims another price than the invoice: a client must then pay nothing.
 *
 * Read: `WWW-Authenticate` (`L402`/`LSAT` with `macaroon=` or `token=`, quoted or not, any case,
 * comma-joined with other schemes; `Payment`), `PAYMENT-REQUIRED` (x402 v2), and a JSON body
 * (x402 v1 `{x402Version: 1, accepts}`, read only when there is no v2 header; price claims).
 *
 * @example
 * ```ts
 * const response = await fetch(url);
 * const { offers, rejected } = parseOffers({ headers: response.headers, body: await response.text() });
 * for (const offer of offers) console.log(offer.protocol, offer.protocol === 'x402' ? offer.amount : offer.amountMsat);
 * ```
 */
export function parseOffers(source: OfferSource, now: number = Date.now()): ParsedOffers {
  const out: ParsedOffers = { offers: [], rejected: [] };
  const authenticate = source.headers.get('www-authenticate');
  if (authenticate !== null) {
    l402Offers(authenticate, now, out);
    mppOffers(authenticate, now, out);
  }
  const paymentRequired = source.headers.get('payment-required');
  if (paymentRequired !== null) x402Header(paymentRequired, out);
  if (source.headers.get('x-cashu') !== null) {
    out.rejected.push(
      reject('cashu', 'capability_unsupported', 'Cashu (X-Cashu) payments are not supported'),
    );
  }
  const json = source.body === undefined ? undefined : parseJsonText(source.body);
  if (isJsonObject(json)) {
    if (json.x402Version === 1 && paymentRequired === null) x402Offers(1, json, out);
    if (typeof json.payment_request_url === 'string' && Array.isArray(json.offers)) {
      out.rejected.push(
        reject(
          'l402-offers',
          'capability_unsupported',
          'Fewsats-style JSON offers (paid through payment_request_url) are not supported',
        ),
      );
    }
    bodyClaims(json, out.offers, out);
    balanceClaim(json, out.offers);
  }
  return out;
}

/**
 * Throws `amount_mismatch` when any claim of price in the response disagrees with its invoice: such
 * a server is not paid at all, by any of its offers.
 *
 * @example
 * ```ts
 * const parsed = parseOffers({ headers: response.headers, body });
 * assertConsistentPrices(parsed);
 * ```
 */
export function assertConsistentPrices(parsed: ParsedOffers): void {
  const mismatch = parsed.rejected.find((r) => r.code === 'amount_mismatch');
  if (mismatch !== undefined) {
    throw new TollwayError(
      'amount_mismatch',
      `refusing to pay: ${mismatch.kind}: ${mismatch.reason}`,
      {
        details: { kind: mismatch.kind },
      },
    );
  }
}
