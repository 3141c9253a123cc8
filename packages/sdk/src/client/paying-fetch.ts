/**
 * The paying fetch: a drop-in `fetch` that answers HTTP 402 by paying one of the offers with a
 * Lightning wallet, within a budget, and retries with the proof. It caches reusable credentials
 * (L402 tokens) per origin and scope, shares one payment between concurrent requests that hit the
 * same 402, and never pays one invoice twice: the ledger entry is written (pending, with what is
 * needed to rebuild the credential) before the wallet is asked to pay, and a payment whose outcome
 * is unknown is resolved by its payment hash before anything is paid again on that origin.
 */
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';
import { sha256, timingSafeEqual } from '../internal/crypto.js';
import { isRecord } from '../internal/is-record.js';
import { readLimited } from '../internal/streams.js';
import { tollwayConditions } from '../l402/caveats.js';
import { firstPartyCaveats, parseMacaroon } from '../l402/macaroon.js';
import type { L402Scheme } from '../l402/types.js';
import type {
  LightningBackend,
  LightningNetwork,
  PaymentResult,
  PaymentStatus,
} from '../lightning/types.js';
import { type RateSource, type UsdPerBtc, usdToMsat } from '../money.js';
import type { PaymentChallenge } from '../mpp/challenge.js';
import { formatPaymentCredential } from '../mpp/credential.js';
import type { EvmWallet } from '../x402/evm-wallet.js';
import { readMcpPaymentRequired, readMcpPaymentResponse, X402_MCP_KEYS } from '../x402/mcp.js';
import { type McpToolCallMessage, readMcpResponse, readMcpToolCall } from '../x402/mcp-messages.js';
import { formatPaymentRequiredHeader } from '../x402/payment-required.js';
import { parsePaymentResponseHeader } from '../x402/payment-response.js';
import { parseXPaymentResponseHeader } from '../x402/v1.js';
import { decodeBase64Json } from '../x402/wire.js';
import { createMemoryClientStore } from './memory-store.js';
import {
  assertConsistentPrices,
  type LightningOffer,
  type Offer,
  type ParsedOffers,
  parseOffers,
  type RejectedOffer,
  type X402Offer,
} from './offers.js';
import { chooseOffer, rankOffers } from './select.js';
import { createSingleFlight } from './single-flight.js';
import { DEFAULT_STALE_HOLD_MS } from './store-common.js';
import type {
  Budget,
  ClientProtocol,
  ClientStore,
  LedgerEntry,
  Reservation,
  SpendRequest,
  StoredCredential,
} from './types.js';

/** A payment made by the paying fetch; see {@link getPayment}. */
export interface PaymentInfo {
  protocol: ClientProtocol;
  /** The invoice amount, msat (x402: the token amount normalised to msat). */
  amountMsat: bigint;
  /** The routing fee the wallet reports, msat (0 for x402: the facilitator pays gas). */
  feeMsat: bigint;
  /** The preimage, lower-case hex: the proof of payment (x402: the authorization nonce). */
  proof: string;
  /** The invoice's payment hash (x402: the authorization nonce). */
  paymentHash: string;
  origin: string;
  url: string;
  /** The id of the ledger entry (and of the budget reservation). */
  ledgerId: string;
}

/** One step of a call, for logs (`tollway fetch -v`). */
export type PayingFetchEvent =
  | { type: 'challenge'; url: string; status: number; withCredential: boolean }
  | { type: 'offers'; url: string; offers: Offer[]; rejected: RejectedOffer[] }
  | { type: 'chosen'; url: string; offer: LightningOffer }
  | { type: 'paid'; payment: PaymentInfo }
  | { type: 'shared'; url: string }
  | { type: 'recovered'; payment: PaymentInfo }
  | { type: 'released'; ledgerId: string; paymentHash: string }
  | { type: 'cached'; url: string; protocol: ClientProtocol }
  | { type: 'retry'; url: string; status: number };

/** Options of {@link createPayingFetch}. */
export interface PayingFetchOptions {
  /** The wallet(s) that pay; an offer is paid by the first wallet on the invoice's network. */
  wallets: LightningBackend | readonly LightningBackend[];
  /** Asked before every payment (amount + `maxFeeMsat` held), committed or released after. */
  budget?: Budget;
  /** Ledger, cached credentials and budget state. Default: in memory (use the budget's store). */
  store?: ClientStore;
  /** Protocols to pay by, most wanted first. Default `['l402', 'mpp']`. */
  preferences?: readonly ClientProtocol[];
  /** Routing-fee ceiling per payment, msat. Default 10 000 (10 sat). */
  maxFeeMsat?: bigint;
  /** Attribution copied into spend requests and ledger entries. */
  tags?: Readonly<Record<string, string>>;
  /** Clock in unix ms. Default `Date.now`. */
  now?: () => number;
  /**
   * Largest request body buffered for the replay after a payment, in bytes (streams are read once
   * into memory). A larger body fails with `body_too_large` before anything is sent. Also the most
   * of an MCP tool call's answer read to look for an x402 payment-required result. Default 10 MiB.
   */
  maxBodyBytes?: number;
  /** Called after each payment is committed and its credential saved, before the retry. */
  onPayment?: (payment: PaymentInfo) => void;
  /** Called at each step of a call. */
  onEvent?: (event: PayingFetchEvent) => void;
  /** Pays x402 offers too (add `'x402'` to `preferences`). */
  x402?: PayingFetchX402Options;
}

/**
 * How the paying fetch pays x402: the EVM wallet that signs, and the rate that normalises token
 * amounts to msat for the budget. Every asset the wallet allows is taken to be a USD stablecoin
 * (one token = one dollar) with `decimals` decimals.
 */
export interface PayingFetchX402Options {
  wallet: EvmWallet;
  rates: RateSource;
  /** Decimals of the allowed tokens. Default 6 (USDC). */
  decimals?: number;
}

/** What a 402 would cost; see {@link PayingFetch.quote}. */
export interface Quote {
  url: string;
  /** The status of the unpaid request. */
  status: number;
  /** True when a cached credential would be sent (no payment expected). */
  cached: boolean;
  offers: Offer[];
  /** Offers that cannot be paid, and why (including those no wallet or preference allows). */
  rejected: RejectedOffer[];
  /** The offer a payment would use. */
  choice?: LightningOffer;
  /** The budget's verdict on `choice`, when there is a budget. */
  budget?: { ok: true } | { ok: false; code: string; message: string };
}

/** What {@link PayingFetch.resume} did with the pending payments of the ledger. */
export interface ResumeSummary {
  /** Found paid: committed, and their credentials rebuilt. */
  recovered: number;
  /** Found failed (or never sent and stale): released. */
  released: number;
  /** Still pending or not resolvable now. */
  unresolved: number;
}

/** A fetch that pays; see {@link createPayingFetch}. */
export interface PayingFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Sends the request without paying and reports the offers of a 402 with their decoded prices. */
  quote(input: string | URL | Request, init?: RequestInit): Promise<Quote>;
  /** Resolves pending payments by payment hash; runs by itself before the first request. */
  resume(): Promise<ResumeSummary>;
}

/** What the ledger keeps with a pending payment, to finish it after a crash. */
interface ResumeData {
  v: 1;
  /** The request path; the scope of a recovered single-use credential. */
  path: string;
  /** The scope an L402 token is saved under when its caveats name none. */
  scope: string;
  maxFeeMsat: string;
  credential:
    | { protocol: 'l402'; scheme: L402Scheme; macaroon: string }
    | { protocol: 'mpp'; challenge: PaymentChallenge };
}

/** A credential to send, and the payment this call made for it. */
interface Acquired {
  header: { name: string; value: string };
  /** L402 tokens are reused; MPP charges are single-use. */
  reusable: boolean;
  /** Set for a credential read from the store (a single-use one is deleted once sent). */
  stored?: StoredCredential;
  payment?: PaymentInfo;
  /** x402 over MCP: the body to send instead, carrying the payment in `params._meta`. */
  body?: Uint8Array;
}

type Settled = 'succeeded' | 'failed' | 'pending' | 'unknown';

const DEFAULT_MAX_FEE_MSAT = 10_000n;
const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
const MAX_CHALLENGE_BODY_BYTES = 64 * 1024;
/** Sends of one call at most: unpaid, with a shared or recovered credential, with its own payment. */
const MAX_ROUNDS = 3;

/** Wallet errors after which the payment certainly did not happen. */
const UNPAID: ReadonlySet<TollwayErrorCode> = new Set([
  'payment_failed',
  'no_route',
  'insufficient_balance',
  'invoice_expired',
  'wrong_network',
  'amount_required',
  'amount_mismatch',
  'quota_exceeded',
  'unauthorized',
  'capability_unsupported',
  'invalid_invoice',
  'unsupported_network',
  'invalid_amount',
]);

const payments = new WeakMap<Response, PaymentInfo>();

/**
 * The payment the paying fetch made for `response`, or `undefined` when none was made by that call
 * (free resource, cached credential, or a payment shared with a concurrent call).
 *
 * @example
 * ```ts
 * const response = await fetch402('https://api.example.com/forecast');
 * const paid = getPayment(response);
 * if (paid) console.log(`paid ${paid.amountMsat} msat + ${paid.feeMsat} msat fee`);
 * ```
 */
export function getPayment(response: Response): PaymentInfo | undefined {
  return payments.get(response);
}

/** The `tools/call` a POST body holds (one JSON-RPC request), or undefined. */
function toolCallOf(method: string, body: Uint8Array | undefined): McpToolCallMessage | undefined {
  if (method !== 'POST' || body === undefined) return undefined;
  const text = new TextDecoder().decode(body);
  if (!text.includes('tools/call')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  return readMcpToolCall(message);
}

/**
 * The tool result answering `id` in a 200 answer of an MCP Streamable HTTP server, read from a copy
 * of the body, at most `limit` bytes; undefined when there is none.
 */
async function toolResultOf(
  response: Response,
  id: string | number,
  limit: number,
): Promise<unknown> {
  if (response.status !== 200) return undefined;
  return (await readMcpResponse(response, id, limit))?.result;
}

function preimageMatches(preimage: string, paymentHash: string): boolean {
  try {
    return timingSafeEqual(sha256(hexToBytes(preimage, 32)), hexToBytes(paymentHash, 32));
  } catch (error) {
    if (isTollwayError(error)) return false;
    throw error;
  }
}

/** The body of a 402, for its offers and price claims; `undefined` when absent or too large. */
async function challengeBody(response: Response): Promise<string | undefined> {
  const copy = response.clone().body;
  if (copy === null) return undefined;
  const bytes = await readLimited(copy, MAX_CHALLENGE_BODY_BYTES);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** The scopes an L402 token covers (its `tollway_paths` caveat, else `fallback`) and its expiry. */
function tokenScope(macaroon: string, fallback: string): { scopes: string[]; expiresAt?: number } {
  let caveats: string[];
  try {
    caveats = firstPartyCaveats(parseMacaroon(macaroon));
  } catch (error) {
    if (isTollwayError(error)) return { scopes: [fallback] };
    throw error;
  }
  let paths: string[] | undefined;
  let until: number | undefined;
  for (const caveat of caveats) {
    const at = caveat.indexOf('=');
    if (at <= 0) continue;
    const condition = caveat.slice(0, at);
    const value = caveat.slice(at + 1);
    if (condition === tollwayConditions.paths) {
      paths = value
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p.startsWith('/'));
    } else if (condition.endsWith('_valid_until') && /^[0-9]{1,12}$/.test(value)) {
      until = Math.min(until ?? Number.POSITIVE_INFINITY, Number(value) * 1000);
    }
  }
  const scopes = paths !== undefined && paths.length > 0 ? paths : [fallback];
  return until === undefined ? { scopes } : { scopes, expiresAt: until };
}

function credentialHeader(
  data: ResumeData['credential'],
  preimage: string,
): { name: string; value: string } {
  const value =
    data.protocol === 'l402'
      ? `${data.scheme} ${data.macaroon}:${preimage}`
      : formatPaymentCredential({ challenge: data.challenge, payload: { preimage } });
  return { name: 'Authorization', value };
}

function readResume(entry: LedgerEntry): ResumeData | undefined {
  if (entry.resume === undefined) return undefined;
  try {
    const data = JSON.parse(entry.resume) as ResumeData;
    return data.v === 1 ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates a fetch that pays for HTTP 402 responses.
 *
 * On a 402 it reads every offer (L402 in every deployed form, MPP lightning charges; x402 offers are
 * reported but not paid yet), decodes each invoice itself and prices the offer at the invoice
 * amount. It refuses to pay at all when a header or body claims another price than an invoice
 * (`amount_mismatch`), and skips expired invoices, invoices for a network no wallet is on and
 * protocols not in `preferences`. It picks by `preferences`, then price, then what the budget
 * accepts; reserves amount + `maxFeeMsat` in the budget; writes a pending ledger entry; pays;
 * checks sha256(preimage) against the invoice's payment hash; saves the credential; commits the
 * actual fee; and retries the request with the body buffered up front.
 *
 * Credentials: an L402 token is cached per origin and scope (the paths its `tollway_paths` caveat
 * names, else `/`) and sent with later requests, so they need no 402 round trip; when a cached
 * token is refused (401 or 402), the call pays once more and caches the new token for that path.
 * MPP charge credentials are single-use and not cached. One call pays at most once. Concurrent calls
 * on one origin and scope share one payment.
 *
 * x402 over MCP: a POST of one JSON-RPC `tools/call` answered 200 with a payment-required tool
 * result (`isError`, the x402 PaymentRequired in `structuredContent` or its text) is paid like a
 * `PAYMENT-REQUIRED` 402 when x402 is configured and preferred, and retried once with the payment
 * in `params._meta["x402/payment"]`; the tool result's `_meta["x402/payment-response"]` settles the
 * ledger entry. Otherwise the result is returned as it came. Answers are returned unchanged (they
 * are read from a copy, JSON whole or SSE up to the tool's event, at most `maxBodyBytes`).
 *
 * Errors (all `TollwayError`): `no_payable_offer`, `amount_mismatch`, budget refusals
 * (`over_price`, `budget_exceeded`, `fee_too_high`, `origin_denied`, `payee_denied`,
 * `approval_denied`, `payments_disabled`), `payment_failed` (the wallet definitely did not pay; the
 * hold is released), `payment_timeout` (the outcome is unknown, or an earlier payment on the origin
 * still is: the entry stays pending and is resolved by payment hash first), `preimage_mismatch`,
 * `body_too_large`. Network failures reject as `fetch` does.
 *
 * @example
 * ```ts
 * const store = createSqliteClientStore();
 * const fetch402 = createPayingFetch({
 *   wallets: connectLightning(process.env.TOLLWAY_WALLET ?? ''),
 *   store,
 *   budget: createBudget({ store, limits: { perRequest: '100 sat', day: '5000 sat' } }),
 * });
 * const response = await fetch402('https://api.example.com/forecast');
 * console.log(response.status, getPayment(response)?.amountMsat);
 * ```
 */
export function createPayingFetch(options: PayingFetchOptions): PayingFetch {
  const wallets: readonly LightningBackend[] = Array.isArray(options.wallets)
    ? options.wallets
    : [options.wallets as LightningBackend];
  const { budget } = options;
  const store = options.store ?? createMemoryClientStore();
  const preferences = options.preferences ?? ['l402', 'mpp'];
  const maxFeeMsat = options.maxFeeMsat ?? DEFAULT_MAX_FEE_MSAT;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const now = options.now ?? Date.now;
  const emit = (event: PayingFetchEvent): void => options.onEvent?.(event);
  if (maxFeeMsat < 0n) throw new TollwayError('invalid_amount', 'maxFeeMsat must not be negative');

  const flights = createSingleFlight<Acquired>();
  /** Ledger ids this process is paying right now: not to be "resolved" under its feet. */
  const paying = new Set<string>();
  const networks = new Map<LightningBackend, Promise<LightningNetwork>>();
  let resumed: Promise<ResumeSummary> | undefined;

  /**
   * The wallet to pay on each network (the first one listed), asking each wallet once; `failure`
   * is the error of the first wallet that could not be asked (a refused token, an unreachable
   * node). When no offer can be paid, that, not a network mismatch, is the reason to report.
   */
  async function walletsByNetwork(): Promise<{
    byNetwork: Map<LightningNetwork, LightningBackend>;
    failure: TollwayError | undefined;
  }> {
    const byNetwork = new Map<LightningNetwork, LightningBackend>();
    let failure: TollwayError | undefined;
    for (const wallet of wallets) {
      if (!wallet.capabilities.canPay) continue;
      let network = networks.get(wallet);
      if (network === undefined) {
        network = wallet.getInfo().then((info) => info.network);
        networks.set(wallet, network);
      }
      try {
        const name = await network;
        if (!byNetwork.has(name)) byNetwork.set(name, wallet);
      } catch (error) {
        // A wallet that cannot be reached now is asked again next time.
        networks.delete(wallet);
        if (!isTollwayError(error)) throw error;
        failure ??= error;
      }
    }
    return { byNetwork, failure };
  }

  /** What every wallet knows of an outgoing payment; `undefined` when none ever saw it. */
  async function lookupPayment(paymentHash: string): Promise<PaymentStatus | 'error' | undefined> {
    let failed = false;
    for (const wallet of wallets) {
      try {
        return await wallet.lookupPayment(paymentHash);
      } catch (error) {
        if (!isTollwayError(error)) throw error;
        if (error.code !== 'invoice_not_found') failed = true;
      }
    }
    return failed ? 'error' : undefined;
  }

  async function saveCredential(origin: string, data: ResumeData, preimage: string): Promise<void> {
    const header = credentialHeader(data.credential, preimage);
    const { scopes, expiresAt } =
      data.credential.protocol === 'l402'
        ? tokenScope(data.credential.macaroon, data.scope)
        : { scopes: [data.path], expiresAt: undefined };
    const saved: StoredCredential[] = scopes.map((scope) => ({
      origin,
      scope,
      protocol: data.credential.protocol,
      header,
      createdAt: now(),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    }));
    for (const credential of saved) await store.saveCredential(credential);
  }

  function reservationOf(entry: LedgerEntry, data: ResumeData): Reservation {
    const fee = BigInt(data.maxFeeMsat);
    return {
      id: entry.id,
      request: {
        origin: entry.origin,
        url: entry.url,
        protocol: entry.protocol,
        amountMsat: entry.amountMsat,
        maxFeeMsat: fee,
        tags: entry.tags,
        ...(entry.payee !== undefined ? { payee: entry.payee } : {}),
      },
      heldMsat: entry.amountMsat + fee,
      createdAt: entry.time,
    };
  }

  /** Resolves one pending entry this client wrote by its payment hash. */
  async function settle(entry: LedgerEntry, data: ResumeData): Promise<Settled> {
    const status = await lookupPayment(entry.reference);
    if (status === 'error' || status?.state === 'pending') return 'pending';
    // Unknown to every wallet: never sent (a crash before the wallet was asked), or another process
    // is about to send it; released once it is old enough that no process can still be sending it.
    if (status === undefined && now() - entry.time < DEFAULT_STALE_HOLD_MS) return 'unknown';
    if (status === undefined || status.state === 'failed') {
      await budget?.release(reservationOf(entry, data));
      await store.updatePayment(entry.id, { status: 'failed' });
      emit({ type: 'released', ledgerId: entry.id, paymentHash: entry.reference });
      return 'failed';
    }
    const preimage = status.preimage?.toLowerCase() ?? '';
    if (!preimageMatches(preimage, entry.reference)) return 'pending';
    const feeMsat = status.feeMsat ?? 0n;
    await saveCredential(entry.origin, data, preimage);
    await budget?.commit(reservationOf(entry, data), { amountMsat: entry.amountMsat, feeMsat });
    await store.updatePayment(entry.id, { status: 'succeeded', proof: preimage, feeMsat });
    emit({
      type: 'recovered',
      payment: {
        protocol: data.credential.protocol,
        amountMsat: entry.amountMsat,
        feeMsat,
        proof: preimage,
        paymentHash: entry.reference,
        origin: entry.origin,
        url: entry.url,
        ledgerId: entry.id,
      },
    });
    return 'succeeded';
  }

  /**
   * Resolves the pending entries this client wrote (of one origin, or all), except those this
   * process is paying right now. Entries of other clients (no resume data) are left alone.
   */
  async function settleAll(origin?: string): Promise<Settled[]> {
    const outcomes: Settled[] = [];
    for (const entry of await store.pendingPayments()) {
      const data = readResume(entry);
      if (data === undefined || paying.has(entry.id)) continue;
      if (origin !== undefined && entry.origin !== origin) continue;
      outcomes.push(await settle(entry, data));
    }
    return outcomes;
  }

  async function resume(): Promise<ResumeSummary> {
    const outcomes = await settleAll();
    const count = (state: Settled) => outcomes.filter((o) => o === state).length;
    return {
      recovered: count('succeeded'),
      released: count('failed'),
      unresolved: count('pending') + count('unknown'),
    };
  }

  function ensureResumed(): Promise<ResumeSummary> {
    resumed ??= resume().catch((error: unknown) => {
      resumed = undefined;
      throw error;
    });
    return resumed;
  }

  function spendRequest(offer: LightningOffer, url: URL): SpendRequest {
    return {
      origin: url.origin,
      url: url.href,
      protocol: offer.protocol,
      payee: offer.invoice.payeePubkey,
      amountMsat: offer.amountMsat,
      maxFeeMsat,
      ...(options.tags !== undefined ? { tags: options.tags } : {}),
    };
  }

  async function reserve(request: SpendRequest): Promise<Reservation> {
    if (budget !== undefined) return budget.reserve(request);
    return {
      id: globalThis.crypto.randomUUID(),
      request,
      heldMsat: request.amountMsat + request.maxFeeMsat,
      createdAt: now(),
    };
  }

  /** Pays `offer` (already reserved) and returns its credential. */
  async function pay(
    offer: LightningOffer,
    reservation: Reservation,
    wallet: LightningBackend,
    url: URL,
    scope: string,
  ): Promise<Acquired> {
    const { paymentHash } = offer.invoice;
    const data: ResumeData = {
      v: 1,
      path: url.pathname,
      scope,
      maxFeeMsat: maxFeeMsat.toString(),
      credential:
        offer.protocol === 'l402'
          ? { protocol: 'l402', scheme: offer.scheme, macaroon: offer.macaroon }
          : { protocol: 'mpp', challenge: offer.challenge },
    };
    const entry: LedgerEntry = {
      id: reservation.id,
      time: now(),
      tags: reservation.request.tags ?? {},
      url: url.href,
      origin: url.origin,
      protocol: offer.protocol,
      amount: offer.amountMsat,
      unit: 'msat',
      amountMsat: offer.amountMsat,
      feeMsat: 0n,
      reference: paymentHash,
      status: 'pending',
      payee: offer.invoice.payeePubkey,
      resume: JSON.stringify(data),
      ...(reservation.rate !== undefined ? { rate: reservation.rate } : {}),
    };
    paying.add(entry.id);
    try {
      try {
        await store.recordPayment(entry);
      } catch (error) {
        await budget?.release(reservation);
        throw error;
      }
      let result: PaymentResult;
      try {
        result = await wallet.payInvoice({
          paymentRequest: offer.invoice.paymentRequest,
          maxFeeMsat,
        });
      } catch (error) {
        if (isTollwayError(error) && UNPAID.has(error.code)) {
          await store.updatePayment(entry.id, { status: 'failed' });
          await budget?.release(reservation);
          throw new TollwayError(
            'payment_failed',
            `the payment failed: ${error.code}: ${error.message}`,
            {
              cause: error,
              details: { reason: error.code, paymentHash, ledgerId: entry.id },
            },
          );
        }
        throw new TollwayError(
          'payment_timeout',
          'the outcome of the payment is unknown; it stays pending and is resolved by payment hash before paying again',
          { cause: error, details: { paymentHash, ledgerId: entry.id } },
        );
      }
      // The wallet layer checks the preimage too; the client checks again: it is the client's proof.
      const preimage = result.preimage.toLowerCase();
      if (!preimageMatches(preimage, paymentHash)) {
        throw new TollwayError(
          'preimage_mismatch',
          'the wallet returned a preimage that does not match the invoice',
          {
            details: { paymentHash, ledgerId: entry.id },
          },
        );
      }
      if (offer.protocol === 'l402') await saveCredential(url.origin, data, preimage);
      await budget?.commit(reservation, { amountMsat: offer.amountMsat, feeMsat: result.feeMsat });
      await store.updatePayment(entry.id, {
        status: 'succeeded',
        proof: preimage,
        feeMsat: result.feeMsat,
      });
      const payment: PaymentInfo = {
        protocol: offer.protocol,
        amountMsat: offer.amountMsat,
        feeMsat: result.feeMsat,
        proof: preimage,
        paymentHash,
        origin: url.origin,
        url: url.href,
        ledgerId: entry.id,
      };
      emit({ type: 'paid', payment });
      options.onPayment?.(payment);
      return {
        header: credentialHeader(data.credential, preimage),
        reusable: offer.protocol === 'l402',
        payment,
      };
    } finally {
      paying.delete(entry.id);
    }
  }

  /** The cheapest x402 offer the EVM wallet pays, when x402 is preferred and configured. */
  function x402Candidate(offers: readonly Offer[]): X402Offer | undefined {
    if (options.x402 === undefined || !preferences.includes('x402')) return undefined;
    const { wallet } = options.x402;
    let cheapest: X402Offer | undefined;
    for (const offer of offers) {
      if (offer.protocol !== 'x402' || wallet.refusal(offer) !== undefined) continue;
      if (cheapest === undefined || offer.amount < cheapest.amount) cheapest = offer;
    }
    return cheapest;
  }

  /**
   * Signs an x402 payment of `offer` within the budget. A signed authorization can be settled by
   * whoever holds it until it expires, so it counts as spent once signed: the hold is committed
   * at once, and the ledger entry stays pending until the server's answer tells how it settled.
   */
  async function payX402(offer: X402Offer, url: URL): Promise<Acquired> {
    const { wallet, rates } = options.x402 as PayingFetchX402Options;
    const decimals = BigInt(options.x402?.decimals ?? 6);
    let rate: UsdPerBtc;
    try {
      rate = await rates.usdPerBtc();
    } catch (cause) {
      throw new TollwayError('price_unavailable', 'the rate source did not answer', { cause });
    }
    const scale = 10n ** decimals;
    const microUsd = (offer.amount * 1_000_000n + scale - 1n) / scale;
    const amountMsat = usdToMsat(microUsd, rate, 'ceil');
    const rateText = `usd_per_btc=${rate.numerator}${rate.denominator === 1n ? '' : `/${rate.denominator}`}`;
    const unit = `${offer.network}/erc20:${offer.asset.toLowerCase()}`;
    const reservation = await reserve({
      origin: url.origin,
      url: url.href,
      protocol: 'x402',
      payee: offer.payTo,
      amountMsat,
      maxFeeMsat: 0n,
      original: { amount: offer.amount, unit, rate: rateText },
      ...(options.tags !== undefined ? { tags: options.tags } : {}),
    });
    let signed: Awaited<ReturnType<EvmWallet['sign']>>;
    try {
      signed = await wallet.sign(offer, now());
      await store.recordPayment({
        id: reservation.id,
        time: now(),
        tags: reservation.request.tags ?? {},
        url: url.href,
        origin: url.origin,
        protocol: 'x402',
        amount: offer.amount,
        unit: signed.unit,
        amountMsat,
        feeMsat: 0n,
        rate: rateText,
        reference: signed.nonce,
        status: 'pending',
        payee: offer.payTo,
      });
    } catch (error) {
      await budget?.release(reservation);
      throw error;
    }
    await budget?.commit(reservation, { amountMsat, feeMsat: 0n });
    const payment: PaymentInfo = {
      protocol: 'x402',
      amountMsat,
      feeMsat: 0n,
      proof: signed.nonce,
      paymentHash: signed.nonce,
      origin: url.origin,
      url: url.href,
      ledgerId: reservation.id,
    };
    emit({ type: 'paid', payment });
    options.onPayment?.(payment);
    return { header: signed.header, reusable: false, payment };
  }

  /** Records in the ledger how the server settled an x402 payment (its transaction, or a refusal). */
  async function noteSettlement(payment: PaymentInfo, response: Response): Promise<void> {
    const v2 = response.headers.get('payment-response');
    const v1 = response.headers.get('x-payment-response');
    let settled: { success: boolean; transaction: string } | undefined;
    try {
      if (v2 !== null) settled = parsePaymentResponseHeader(v2);
      else if (v1 !== null) settled = parseXPaymentResponseHeader(v1);
    } catch (error) {
      if (!isTollwayError(error)) throw error;
    }
    await recordSettlement(payment, settled, response.status === 402);
  }

  /**
   * Resolves an x402 ledger entry: succeeded with the server's transaction, or failed when the
   * server says settlement failed or asks for payment again; left pending when it says nothing.
   */
  async function recordSettlement(
    payment: PaymentInfo,
    settled: { success: boolean; transaction: string } | undefined,
    refused: boolean,
  ): Promise<void> {
    if (settled?.success === true) {
      await store.updatePayment(payment.ledgerId, {
        status: 'succeeded',
        proof: settled.transaction,
      });
    } else if (settled !== undefined || refused) {
      await store.updatePayment(payment.ledgerId, { status: 'failed' });
    }
  }

  /**
   * The x402 offers of a payment-required tool result answering `call` (x402 over MCP), when the
   * x402 wallet would pay one of them; undefined otherwise (the answer is then passed on as is).
   */
  async function mcpOffers(
    response: Response,
    call: McpToolCallMessage,
  ): Promise<ParsedOffers | undefined> {
    if (options.x402 === undefined || !preferences.includes('x402')) return undefined;
    const required = readMcpPaymentRequired(await toolResultOf(response, call.id, maxBodyBytes));
    if (required === undefined) return undefined;
    let header: string;
    try {
      header = formatPaymentRequiredHeader(required);
    } catch (error) {
      if (isTollwayError(error)) return undefined;
      throw error;
    }
    // The same reading as a PAYMENT-REQUIRED header, so that one path chooses and pays.
    const parsed = parseOffers({ headers: new Headers({ 'PAYMENT-REQUIRED': header }) }, now());
    return x402Candidate(parsed.offers) === undefined ? undefined : parsed;
  }

  /** `call` with the signed payment (the wire JSON of a PAYMENT-SIGNATURE value) in its `_meta`. */
  function paidToolCall(call: McpToolCallMessage, signature: string): Uint8Array {
    const { params } = call;
    const meta = isRecord(params._meta) ? params._meta : {};
    const payment = decodeBase64Json(signature, 'PAYMENT-SIGNATURE');
    const message = {
      ...call.message,
      params: { ...params, _meta: { ...meta, [X402_MCP_KEYS.payment]: payment } },
    };
    return new TextEncoder().encode(JSON.stringify(message));
  }

  /**
   * Records how the server settled an x402 payment sent in `_meta`: the SettleResponse of the
   * tool result, or a failure when the answer asks for payment again.
   */
  async function noteMcpSettlement(
    payment: PaymentInfo,
    response: Response,
    call: McpToolCallMessage,
  ): Promise<void> {
    const result = await toolResultOf(response, call.id, maxBodyBytes);
    let settled: { success: boolean; transaction: string } | undefined;
    try {
      settled = readMcpPaymentResponse(result);
    } catch (error) {
      if (!isTollwayError(error)) throw error;
    }
    await recordSettlement(payment, settled, readMcpPaymentRequired(result) !== undefined);
  }

  /** Gets a credential for a refused request: one saved since (shared or recovered), or by paying. */
  async function acquire(
    url: URL,
    scope: string,
    parsed: ParsedOffers,
    refused: string | undefined,
  ): Promise<Acquired> {
    const outcomes = await settleAll(url.origin);
    if (outcomes.includes('pending')) {
      throw new TollwayError(
        'payment_timeout',
        `an earlier payment to ${url.origin} is still unresolved; it is resolved by payment hash before paying again`,
        { details: { origin: url.origin } },
      );
    }
    // Another request may have paid since this one was refused, or a recovered payment left a
    // credential: use it rather than paying.
    const known = await store.findCredential(url.origin, url.pathname, now());
    if (known !== undefined && known.header.value !== refused) {
      emit({ type: 'shared', url: url.href });
      return { header: known.header, reusable: known.protocol === 'l402', stored: known };
    }
    const { byNetwork, failure } = await walletsByNetwork();
    const ranked = rankOffers(parsed.offers, { preferences, networks: new Set(byNetwork.keys()) });
    const evm = x402Candidate(parsed.offers);
    const best = ranked.candidates[0];
    const lightningRank =
      best === undefined ? preferences.length : preferences.indexOf(best.protocol);
    if (evm !== undefined && preferences.indexOf('x402') < lightningRank) return payX402(evm, url);
    if (ranked.candidates.length === 0) {
      if (failure !== undefined) throw failure;
      const rejected = [...parsed.rejected, ...ranked.rejected];
      const reasons = rejected.map((r) => `${r.kind}: ${r.code} (${r.reason})`).join('; ');
      throw new TollwayError(
        'no_payable_offer',
        `no offer this client can pay${reasons ? `: ${reasons}` : ''}`,
        {
          details: { url: url.href, rejected },
        },
      );
    }
    const { offer, reservation } = await chooseOffer(ranked.candidates, (o) =>
      reserve(spendRequest(o, url)),
    );
    emit({ type: 'chosen', url: url.href, offer });
    const wallet = byNetwork.get(offer.invoice.network) as LightningBackend;
    return pay(offer, reservation, wallet, url, scope);
  }

  /** {@link acquire}, shared with concurrent calls on the same origin and scope. */
  async function acquireShared(
    url: URL,
    scope: string,
    parsed: ParsedOffers,
    refused: string | undefined,
  ): Promise<Acquired> {
    for (;;) {
      const flight = flights.run(url.origin, scope, () => acquire(url, scope, parsed, refused));
      const acquired = await flight.promise;
      if (flight.leader) return acquired;
      if (acquired.reusable && acquired.header.value !== refused) {
        emit({ type: 'shared', url: url.href });
        return { header: acquired.header, reusable: true };
      }
      // A single-use credential cannot be shared: queue for a payment of this call's own.
    }
  }

  async function bufferedBody(request: Request): Promise<Uint8Array | undefined> {
    if (request.body === null) return undefined;
    const bytes = await readLimited(request.body, maxBodyBytes);
    if (bytes === undefined) {
      throw new TollwayError(
        'body_too_large',
        `the request body is larger than ${maxBodyBytes} bytes`,
        {
          details: { maxBodyBytes },
        },
      );
    }
    return bytes;
  }

  function send(
    request: Request,
    body: Uint8Array | undefined,
    header: { name: string; value: string } | undefined,
  ): Promise<Response> {
    const headers = new Headers(request.headers);
    if (header !== undefined) headers.set(header.name, header.value);
    return fetch(new Request(request, { headers, ...(body !== undefined ? { body } : {}) }));
  }

  async function payingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const body = await bufferedBody(request);
    const url = new URL(request.url);
    const call = toolCallOf(request.method, body);
    await ensureResumed();
    await flights.settled(url.origin, url.pathname);
    const cached = await store.findCredential(url.origin, url.pathname, now());
    if (cached !== undefined) emit({ type: 'cached', url: url.href, protocol: cached.protocol });
    let current: Acquired | undefined = cached && {
      header: cached.header,
      reusable: cached.protocol === 'l402',
      stored: cached,
    };
    let payment: PaymentInfo | undefined;
    for (let round = 1; ; round++) {
      let response: Response;
      try {
        response =
          current?.body === undefined
            ? await send(request, body, current?.header)
            : await send(request, current.body, undefined);
      } catch (error) {
        // A charge paid by this call but not delivered is kept for the next request to the path.
        if (current?.payment !== undefined && !current.reusable) {
          await store.saveCredential({
            origin: url.origin,
            scope: url.pathname,
            protocol: current.payment.protocol,
            header: current.header,
            createdAt: now(),
          });
        }
        throw error;
      } finally {
        if (current?.stored !== undefined && current.stored.protocol !== 'l402') {
          await store.deleteCredential(current.stored.origin, current.stored.scope);
        }
      }
      if (round > 1) emit({ type: 'retry', url: url.href, status: response.status });
      if (current?.payment?.protocol === 'x402') {
        if (current.body !== undefined && call !== undefined) {
          await noteMcpSettlement(current.payment, response, call);
        } else {
          await noteSettlement(current.payment, response);
        }
      }
      const refused = response.status === 402 || (current !== undefined && response.status === 401);
      // x402 over MCP: a tools/call answered 200 with a payment-required tool result.
      const offered =
        !refused && call !== undefined && payment === undefined && round < MAX_ROUNDS
          ? await mcpOffers(response, call)
          : undefined;
      if (offered !== undefined && call !== undefined) {
        emit({
          type: 'challenge',
          url: url.href,
          status: response.status,
          withCredential: current !== undefined,
        });
        emit({ type: 'offers', url: url.href, offers: offered.offers, rejected: offered.rejected });
        await response.body?.cancel();
        const acquired = await acquireShared(url, url.pathname, offered, current?.header.value);
        const signature = acquired.header.name.toLowerCase() === 'payment-signature';
        current = signature
          ? { ...acquired, body: paidToolCall(call, acquired.header.value) }
          : acquired;
        payment = current.payment;
        continue;
      }
      if (!refused || payment !== undefined || round === MAX_ROUNDS) {
        if (payment !== undefined) payments.set(response, payment);
        return response;
      }
      emit({
        type: 'challenge',
        url: url.href,
        status: response.status,
        withCredential: current !== undefined,
      });
      const parsed = parseOffers(
        { headers: response.headers, ...optionalBody(await challengeBody(response)) },
        now(),
      );
      emit({ type: 'offers', url: url.href, offers: parsed.offers, rejected: parsed.rejected });
      if (response.status === 401 && parsed.offers.length === 0 && parsed.rejected.length === 0)
        return response;
      await response.body?.cancel();
      assertConsistentPrices(parsed);
      const scope = current === undefined ? '/' : url.pathname;
      current = await acquireShared(url, scope, parsed, current?.header.value);
      payment = current.payment;
    }
  }

  async function quote(input: string | URL | Request, init?: RequestInit): Promise<Quote> {
    const request = new Request(input, init);
    const body = await bufferedBody(request);
    const url = new URL(request.url);
    const cached = (await store.findCredential(url.origin, url.pathname, now())) !== undefined;
    const response = await send(request, body, undefined);
    const result: Quote = {
      url: url.href,
      status: response.status,
      cached,
      offers: [],
      rejected: [],
    };
    if (response.status !== 402) {
      await response.body?.cancel();
      return result;
    }
    const parsed = parseOffers(
      { headers: response.headers, ...optionalBody(await challengeBody(response)) },
      now(),
    );
    await response.body?.cancel();
    const { byNetwork, failure } = await walletsByNetwork();
    const ranked = rankOffers(parsed.offers, { preferences, networks: new Set(byNetwork.keys()) });
    if (ranked.candidates.length === 0 && failure !== undefined) throw failure;
    result.offers = parsed.offers;
    result.rejected = [...parsed.rejected, ...ranked.rejected];
    const choice = parsed.rejected.some((r) => r.code === 'amount_mismatch')
      ? undefined
      : ranked.candidates[0];
    if (choice === undefined) return result;
    result.choice = choice;
    if (budget !== undefined) result.budget = await budget.check(spendRequest(choice, url));
    return result;
  }

  return Object.assign(payingFetch, { quote, resume });
}

function optionalBody(body: string | undefined): { body?: string } {
  return body === undefined ? {} : { body };
}
