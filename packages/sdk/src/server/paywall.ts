/**
 * The paywall engine: decides, for one request to one route, whether it passes (free, or paid with
 * a valid credential) or gets a response (a 402 with fresh offers, a 401, a 429, …). Framework
 * adapters translate requests in and decisions out; everything else happens here.
 *
 * The paid path does no I/O for ordinary tokens: root keys derive from the master secrets,
 * verified credentials are cached by their exact text, revocations are mirrored in memory, and
 * settlements and tokens are recorded in the background the first time a token is seen. Only
 * counted tokens (uses, balance) and single-use credentials (MPP charges) wait on the store.
 */
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { isPromiseLike } from '../internal/promise.js';
import { createTokenId } from '../l402/identifier.js';
import type { InvoiceStatus, LightningBackend } from '../lightning/types.js';
import { formatMsat, formatUsd, type RateSource } from '../money.js';
import { clientNetwork } from './client-network.js';
import { type CorsOptions, createCors } from './cors.js';
import { type Duration, parseDuration } from './duration.js';
import { createFreebies, type FreebieOptions } from './freebies.js';
import { createL402Offer } from './l402-offer.js';
import { createLru } from './lru.js';
import { createMppOffer } from './mpp-offer.js';
import {
  type CredentialCheck,
  type CredentialSource,
  type CredentialVerdict,
  createOfferParts,
  type OfferKind,
  type PaymentProof,
  type PresentedCredential,
  readCredential,
} from './offers.js';
import { pathWithin } from './path.js';
import { type PriceRequest, priceToMsat, type Quote, quotePrice } from './pricing.js';
import { createProblemResponse } from './problem.js';
import { createRateLimiter, type RateLimit } from './rate-limit.js';
import { createRootKeys, type MasterSecret } from './root-keys.js';
import { createRoute, type Route, type RouteOptions } from './route.js';
import type { IssuedChallenge, Store } from './store.js';
import type { PaymentContext, PaywallDecision, PaywallFinal, PaywallRequest } from './types.js';

/** Where the engine reports what it cannot answer with (store and backend failures). pino fits. */
export interface PaywallLogger {
  warn(context: Record<string, unknown>, message: string): void;
  error(context: Record<string, unknown>, message: string): void;
}

/** Rate limits of a paywall, each a token bucket kept in this process's memory. */
export interface PaywallRateLimits {
  /**
   * Payment challenges (each costs an invoice) per client network. Default: 30 a minute, bursts
   * of 20. `false` turns it off.
   */
  challenges?: RateLimit | false;
  /** Paid requests per token. Default: none. */
  token?: RateLimit;
  /** Requests without a valid credential per client network, free ones included. Default: none. */
  network?: RateLimit;
}

/** Options of {@link createPaywall}. */
export interface PaywallOptions {
  /** Creates the invoices (and, in strict mode, confirms them). */
  lightning: LightningBackend;
  /** Shared state: revocations, counters, single-use claims, records. */
  store: Store;
  /**
   * Master secrets, current first, then older ones still accepted: hex text or bytes of at least
   * 32 bytes (see `createMasterSecret`). Every instance of one API needs the same list.
   */
  secrets: readonly MasterSecret[];
  /** The MPP protection space, e.g. the API's host name. Default `'tollway'`. */
  realm?: string;
  /** Converts dollar prices; required for routes priced in dollars. */
  rates?: RateSource;
  /** Confirm with the Lightning backend that a token's invoice settled, the first time it is seen. */
  strict?: boolean;
  /** `'aperture'`: answer invalid credentials with 402 (as Aperture does) instead of 401. */
  compat?: 'aperture';
  /** CORS headers on every paywall response and preflight answers. Default origin `*`. */
  cors?: CorsOptions | false;
  rateLimits?: PaywallRateLimits;
  /** Free requests per client network (IPv4 /24, IPv6 /48) per period, on every paid route. */
  freebies?: FreebieOptions;
  /** Paths that pass free: prefixes on segment boundaries (`'/health'`), or regular expressions. */
  allowlist?: readonly (string | RegExp)[];
  /** The protocols offered, in this order. Default `['l402', 'mpp']`. */
  protocols?: readonly ('l402' | 'mpp')[];
  /** Further offer kinds, offered after the built-in ones. */
  offers?: readonly OfferKind[];
  /** The L402 challenge form: `legacy` (default, `LSAT` then `L402`) or `spec`. */
  l402Form?: 'legacy' | 'spec';
  /** How long a challenge's invoice can be paid. Default `'15m'`. */
  challengeExpiry?: Duration;
  /** The clock, unix ms (tests). */
  now?: () => number;
  /** Default: the console. */
  logger?: PaywallLogger;
}

/** A paywall; see {@link createPaywall}. */
export interface Paywall {
  /** Checks route options once; pass the result to {@link Paywall.handle}. */
  route(options: RouteOptions): Route;
  /**
   * Decides one request. Never throws: every failure becomes a response with a problem code.
   * Returns the decision itself when no I/O is needed (the usual paid request: a credential seen
   * before, a fixed price, no use counter), else a promise of it; `await` takes either. Answering
   * without a promise spares the paid path its allocations and microtask hops.
   */
  handle(request: PaywallRequest, route: Route): PaywallDecision | Promise<PaywallDecision>;
  /** Prepares the store and loads revocations; `handle` calls it on first use if you did not. */
  init(): Promise<void>;
  /** Stops listening for revocations and writes what is pending. Does not close the store. */
  close(): Promise<void>;
  /** Revokes a token (an L402 token id, hex) on every instance sharing the store. */
  revoke(tokenId: string, reason?: string): Promise<void>;
}

/** An answer that is not a pass. */
interface Refusal {
  status: number;
  code: TollwayErrorCode;
  detail: string;
  retryAfterSeconds?: number;
}

/** One request on its way through the engine. */
interface Exchange {
  request: PaywallRequest;
  route: Route;
  /** Without the query. */
  path: string;
  /** Upper case. */
  method: string;
  now: number;
  /** The client's network, computed on first use. */
  network(): string;
  /** The request's price, computed once on first use. */
  quote(): Promise<Quote | Refusal>;
}

const DEFAULT_CHALLENGE_LIMIT: RateLimit = { requests: 30, per: '1m', burst: 20 };
const DEFAULT_REALM = 'tollway';
const RETRY_AFTER_UNAVAILABLE = 5;
const INVOICE_TIMEOUT_MS = 10_000;
const MAX_CACHED_CREDENTIALS = 10_000;
const MAX_REMEMBERED = 100_000;
const MAX_PENDING_CHALLENGES = 10_000;
const CHALLENGE_FLUSH_MS = 1000;

const consoleLogger: PaywallLogger = {
  warn: (context, message) => console.warn(`[tollway] ${message}`, context),
  error: (context, message) => console.error(`[tollway] ${message}`, context),
};

function isQuote(value: Quote | Refusal): value is Quote {
  return 'msat' in value;
}

/** Path and query of a request target, absolute or not; the fragment is dropped. */
function splitTarget(url: string): { path: string; query: string } {
  let target = url;
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://');
    const slash = scheme < 0 ? -1 : target.indexOf('/', scheme + 3);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const question = target.indexOf('?');
  if (question < 0) return { path: target || '/', query: '' };
  return { path: target.slice(0, question) || '/', query: target.slice(question + 1) };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TollwayError('backend_unavailable', message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorCode(error: unknown): string | undefined {
  return isTollwayError(error) ? error.code : undefined;
}

/**
 * Creates a paywall: the provider side of L402 and MPP as a library. Create routes with
 * `paywall.route()`, and let a framework adapter call `paywall.handle()` for each request.
 *
 * Throws `invalid_config` for malformed options (secrets, durations, rate limits).
 *
 * @example
 * ```ts
 * const paywall = createPaywall({
 *   lightning: connectLightning(process.env.TOLLWAY_LIGHTNING!),
 *   store: createSqliteStore({ path: '.tollway/paywall.sqlite' }),
 *   secrets: [process.env.TOLLWAY_SECRET!],
 * });
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
 * const decision = await paywall.handle(request, forecast);
 * ```
 */
export function createPaywall(options: PaywallOptions): Paywall {
  const { lightning, store, rates } = options;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? consoleLogger;
  const rootKeys = createRootKeys(options.secrets);
  const realm = options.realm ?? DEFAULT_REALM;
  const builtIn: Record<'l402' | 'mpp', OfferKind> = {
    l402: createL402Offer({
      rootKeys,
      ...(options.l402Form === undefined ? {} : { form: options.l402Form }),
    }),
    mpp: createMppOffer({ rootKeys, realm }),
  };
  const kinds = [
    ...(options.protocols ?? ['l402', 'mpp']).map((name) => builtIn[name]),
    ...(options.offers ?? []),
  ];
  if (kinds.length === 0) throw new TollwayError('invalid_config', 'no protocol is offered');
  const cors = createCors(options.cors);
  const limits = options.rateLimits ?? {};
  const challengeLimiter =
    limits.challenges === false
      ? undefined
      : createRateLimiter(limits.challenges ?? DEFAULT_CHALLENGE_LIMIT, now);
  const tokenLimiter =
    limits.token === undefined ? undefined : createRateLimiter(limits.token, now);
  const networkLimiter =
    limits.network === undefined ? undefined : createRateLimiter(limits.network, now);
  const freebies =
    options.freebies === undefined ? undefined : createFreebies(options.freebies, now);
  const allowlist = options.allowlist ?? [];
  const challengeExpiry = parseDuration(options.challengeExpiry ?? '15m', 'challengeExpiry');

  /** Verified credentials by {@link cacheSlot} of their text; an entry keeps the whole text. */
  const credentials = createLru<string, { text: string; presented: PresentedCredential }>(
    MAX_CACHED_CREDENTIALS,
  );
  const seenTokens = createLru<string, true>(MAX_REMEMBERED);
  /** Payment hash → invoice amount, for invoices this instance created or confirmed settled. */
  const knownAmounts = createLru<string, bigint>(MAX_REMEMBERED);
  const settled = createLru<string, true>(MAX_REMEMBERED);
  const lookups = new Map<string, Promise<InvoiceStatus>>();
  const revoked = new Set<string>();
  const background = new Set<Promise<void>>();
  let issued: IssuedChallenge[] = [];
  let droppedChallenges = 0;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let starting: Promise<void> | undefined;
  let ready = false;
  let unsubscribe: (() => void) | undefined;

  // ---- background work --------------------------------------------------------------------

  function inBackground(task: () => Promise<void>, what: string): void {
    const promise = task().catch((error: unknown) => {
      logger.warn({ err: error, code: errorCode(error) }, `${what} failed`);
    });
    background.add(promise);
    void promise.finally(() => background.delete(promise));
  }

  function flushChallenges(): void {
    if (flushTimer !== undefined) clearTimeout(flushTimer);
    flushTimer = undefined;
    const batch = issued;
    issued = [];
    if (droppedChallenges > 0) {
      logger.warn({ dropped: droppedChallenges }, 'challenge records dropped: the store is behind');
      droppedChallenges = 0;
    }
    if (batch.length > 0) inBackground(() => store.recordChallenges(batch), 'recording challenges');
  }

  function recordChallenge(challenge: IssuedChallenge): void {
    if (issued.length >= MAX_PENDING_CHALLENGES) {
      droppedChallenges += 1;
      return;
    }
    issued.push(challenge);
    flushTimer ??= setTimeout(flushChallenges, CHALLENGE_FLUSH_MS);
  }

  /** One backend look-up per payment hash at a time. */
  function lookupInvoice(paymentHash: string): Promise<InvoiceStatus> {
    let pending = lookups.get(paymentHash);
    if (pending === undefined) {
      pending = lightning.lookupInvoice(paymentHash);
      lookups.set(paymentHash, pending);
      const forget = () => lookups.delete(paymentHash);
      pending.then(forget, forget);
    }
    return pending;
  }

  function noteSettled(status: InvoiceStatus): void {
    settled.set(status.paymentHash, true);
    const amount = status.amountPaidMsat ?? status.amountMsat;
    if (amount !== undefined) knownAmounts.set(status.paymentHash, amount);
  }

  /** Records the settlement and the token the first time this instance sees a token. */
  function recordFirstSight(proof: PaymentProof, route: Route): void {
    if (seenTokens.get(proof.tokenId) !== undefined) return;
    seenTokens.set(proof.tokenId, true);
    const seenAt = now();
    inBackground(async () => {
      let amount = proof.amountMsat ?? knownAmounts.get(proof.paymentHash);
      if (amount === undefined) {
        try {
          const status = await lookupInvoice(proof.paymentHash);
          if (status.state === 'settled') noteSettled(status);
          amount = knownAmounts.get(proof.paymentHash);
        } catch (error) {
          logger.warn({ err: error, code: errorCode(error) }, 'no amount for a settlement');
        }
      }
      if (amount !== undefined) {
        await store.recordSettlement({
          reference: proof.paymentHash,
          tokenId: proof.tokenId,
          service: route.service,
          protocol: proof.protocol,
          amount,
          unit: 'msat',
          settledAt: seenAt,
        });
      }
      if (proof.protocol !== 'l402') return;
      await store.saveToken({
        tokenId: proof.tokenId,
        paymentHash: proof.paymentHash,
        service: route.service,
        tier: proof.tier ?? route.tier,
        createdAt: seenAt,
        ...(proof.expiresAt === undefined ? {} : { expiresAt: proof.expiresAt }),
        ...(proof.maxUses === undefined ? {} : { maxUses: proof.maxUses }),
        ...(proof.balanceMsat === undefined ? {} : { initialBalanceMsat: proof.balanceMsat }),
      });
    }, 'recording a settlement');
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async function start(): Promise<void> {
    await store.init();
    unsubscribe = store.subscribeRevocations((revocation) => revoked.add(revocation.tokenId));
    for (const revocation of await store.listRevocations()) revoked.add(revocation.tokenId);
    ready = true;
  }

  function init(): Promise<void> {
    starting ??= start().catch((error: unknown) => {
      starting = undefined;
      unsubscribe?.();
      unsubscribe = undefined;
      throw error;
    });
    return starting;
  }

  // ---- responses --------------------------------------------------------------------------

  function respond(
    exchange: Exchange,
    refusal: Refusal,
    extra: Array<[string, string]> = [],
    extensions?: Record<string, unknown>,
  ): Extract<PaywallDecision, { kind: 'respond' }> {
    const headers: Array<[string, string]> = [...extra, ['Cache-Control', 'no-store']];
    if (refusal.retryAfterSeconds !== undefined) {
      headers.push(['Retry-After', String(refusal.retryAfterSeconds)]);
    }
    headers.push(...cors.headers(exchange.request));
    const problem = {
      status: refusal.status,
      code: refusal.code,
      detail: refusal.detail,
      ...(extensions === undefined ? {} : { extensions }),
    };
    return { kind: 'respond', response: createProblemResponse(problem, headers) };
  }

  function unavailable(code: TollwayErrorCode, detail: string): Refusal {
    return { status: 503, code, detail, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE };
  }

  /**
   * Lets a request through with `headers` (a receipt, say) and the CORS headers; these expose the
   * receipt headers only when there are some.
   */
  function pass(
    exchange: Exchange,
    payment: PaymentContext,
    headers: Array<[string, string]> = [],
  ): PaywallDecision {
    if (headers.length === 0) {
      return { kind: 'pass', payment, headers: [...cors.originHeaders(exchange.request)] };
    }
    return { kind: 'pass', payment, headers: [...headers, ...cors.headers(exchange.request)] };
  }

  function passFree(
    exchange: Exchange,
    freeReason: NonNullable<PaymentContext['freeReason']>,
  ): PaywallDecision {
    return pass(exchange, { protocol: 'free', service: exchange.route.service, freeReason });
  }

  /** A 402 (or, for a refused credential, 401) with fresh offers backed by one new invoice. */
  async function challenge(exchange: Exchange, refusal: Refusal): Promise<PaywallDecision> {
    const { route } = exchange;
    const quote = await exchange.quote();
    if (!isQuote(quote)) return respond(exchange, quote);
    if (quote.msat === 0n) return passFree(exchange, 'free_route');
    const allowed = challengeLimiter?.take(exchange.network());
    if (allowed !== undefined && !allowed.ok) {
      return respond(exchange, {
        status: 429,
        code: 'rate_limited',
        detail: 'Too many payment challenges from your network; retry later.',
        retryAfterSeconds: allowed.retryAfterSeconds,
      });
    }
    let amountMsat = quote.msat;
    if (route.balance !== undefined) {
      try {
        amountMsat = await priceToMsat(route.balance, rates);
      } catch (error) {
        logger.warn({ err: error }, 'the balance could not be priced');
        return respond(exchange, unavailable('price_unavailable', 'The price is unavailable.'));
      }
    }
    let minted: {
      headers: Array<[string, string]>;
      offers: Record<string, unknown>[];
      body: Record<string, unknown>;
    };
    const wanted = exchange.request.offers;
    const offered =
      wanted === undefined ? kinds : kinds.filter((kind) => wanted.includes(kind.name));
    try {
      // One invoice backs every Lightning offer; none when only invoice-less kinds are offered.
      const invoice = offered.some((kind) => kind.invoice !== false)
        ? await withTimeout(
            lightning.createInvoice({
              amountMsat,
              memo: route.description,
              expirySeconds: challengeExpiry,
            }),
            INVOICE_TIMEOUT_MS,
            'the Lightning backend did not create the invoice in time',
          )
        : undefined;
      const tokenId = createTokenId();
      const parts = createOfferParts(offered, {
        route,
        path: exchange.path,
        invoice,
        tokenId,
        priceMsat: quote.msat,
        price: quote.amount,
        amountMsat,
        now: exchange.now,
      });
      minted = {
        headers: [
          ...parts.flatMap((part) =>
            part.challenges.map((value): [string, string] => ['WWW-Authenticate', value]),
          ),
          ...parts.flatMap((part) => part.headers ?? []),
        ],
        offers: parts.map((part) => part.entry),
        body: Object.assign({}, ...parts.map((part) => part.body)),
      };
      if (invoice !== undefined) {
        knownAmounts.set(invoice.paymentHash, amountMsat);
        recordChallenge({
          paymentHash: invoice.paymentHash,
          tokenId: bytesToHex(tokenId),
          service: route.service,
          amountMsat,
          createdAt: exchange.now,
          expiresAt: invoice.expiresAt,
        });
      }
    } catch (error) {
      logger.warn({ err: error, code: errorCode(error) }, 'no invoice for a payment challenge');
      return respond(
        exchange,
        unavailable('invoice_unavailable', 'No invoice can be created right now; retry later.'),
      );
    }
    const status = refusal.status === 401 && options.compat === 'aperture' ? 402 : refusal.status;
    return respond(exchange, { ...refusal, status }, minted.headers, {
      ...minted.body,
      service: route.service,
      price: describePrice(quote),
      ...(route.balance === undefined
        ? {}
        : {
            balance: {
              amount: amountMsat.toString(),
              unit: 'msat',
              display: formatMsat(amountMsat),
            },
          }),
      grants: describeGrants(route),
      offers: minted.offers,
    });
  }

  // ---- the decision -----------------------------------------------------------------------

  /** The inputs of a request's price function; the body only for routes that read it. */
  async function priceInputs(exchange: Exchange, query: string): Promise<PriceRequest> {
    const { request, route, method, path } = exchange;
    let body: unknown;
    if (route.readsBody && method !== 'GET' && method !== 'HEAD' && request.jsonBody) {
      try {
        body = await request.jsonBody();
      } catch (cause) {
        if (isTollwayError(cause, 'invalid_json')) throw cause;
        throw new TollwayError('invalid_json', 'the request body is not JSON', { cause });
      }
    }
    return { method, path, query: new URLSearchParams(query), headers: request.headers, body };
  }

  async function quoteOf(exchange: Exchange, query: string): Promise<Quote | Refusal> {
    const { route } = exchange;
    const price = route.price;
    if (price === undefined) return { msat: 0n, amount: { unit: 'msat', msat: 0n } };
    try {
      return await quotePrice(price, () => priceInputs(exchange, query), rates);
    } catch (error) {
      if (isTollwayError(error) && error.code !== 'price_unavailable') {
        return { status: 400, code: error.code, detail: error.message };
      }
      logger.warn({ err: error, service: route.service }, 'the request could not be priced');
      return unavailable('price_unavailable', 'The price of this request is unavailable.');
    }
  }

  /**
   * One request being decided. A class, so that a request costs one object: its network and
   * price are computed on first use.
   */
  class RequestExchange implements Exchange {
    readonly request: PaywallRequest;
    readonly route: Route;
    readonly path: string;
    readonly method: string;
    readonly now: number;
    readonly #query: string;
    #network: string | undefined;
    #quoted: Promise<Quote | Refusal> | undefined;

    constructor(request: PaywallRequest, route: Route) {
      const { path, query } = splitTarget(request.url);
      this.request = request;
      this.route = route;
      this.path = path;
      this.#query = query;
      this.method = request.method.toUpperCase();
      this.now = now();
    }

    network(): string {
      this.#network ??= clientNetwork(this.request.clientIp);
      return this.#network;
    }

    quote(): Promise<Quote | Refusal> {
      this.#quoted ??= quoteOf(this, this.#query);
      return this.#quoted;
    }
  }

  function allowlisted(path: string): boolean {
    return allowlist.some((entry) =>
      typeof entry === 'string' ? pathWithin(path, entry) : path.search(entry) >= 0,
    );
  }

  /** Applies the per-network bucket to a request without a valid credential. */
  function networkLimited(exchange: Exchange): PaywallDecision | undefined {
    const allowed = networkLimiter?.take(exchange.network());
    if (allowed === undefined || allowed.ok) return undefined;
    return respond(exchange, {
      status: 429,
      code: 'rate_limited',
      detail: 'Too many requests from your network; retry later.',
      retryAfterSeconds: allowed.retryAfterSeconds,
    });
  }

  function refusedCredential(exchange: Exchange, error: unknown): Promise<PaywallDecision> {
    if (!isTollwayError(error)) {
      logger.error({ err: error }, 'reading a credential failed unexpectedly');
    }
    const code = isTollwayError(error) ? error.code : 'invalid_credential';
    const detail = isTollwayError(error) ? error.message : 'The credential could not be read.';
    if (code === 'conflicting_credentials') {
      return Promise.resolve(respond(exchange, { status: 400, code, detail }));
    }
    return challenge(exchange, { status: 401, code, detail });
  }

  async function confirmSettled(paymentHash: string): Promise<Refusal | undefined> {
    if (settled.get(paymentHash) !== undefined) return undefined;
    let status: InvoiceStatus;
    try {
      status = await lookupInvoice(paymentHash);
    } catch (error) {
      if (!isTollwayError(error, 'invoice_not_found')) {
        logger.warn({ err: error }, 'strict mode could not look up an invoice');
        return unavailable('backend_unavailable', 'The payment cannot be confirmed right now.');
      }
      return { status: 401, code: 'invoice_not_settled', detail: 'The invoice is unknown.' };
    }
    if (status.state !== 'settled') {
      return { status: 401, code: 'invoice_not_settled', detail: 'The invoice is not settled.' };
    }
    noteSettled(status);
    return undefined;
  }

  async function storeCall<T>(call: () => Promise<T>): Promise<{ value: T } | Refusal> {
    try {
      return { value: await call() };
    } catch (error) {
      logger.warn({ err: error }, 'the store failed on a paid request');
      return unavailable('store_error', 'The paywall store is unavailable; retry later.');
    }
  }

  /** `cacheKey` is set when the credential is not cached yet and may be, once it verifies. */
  function paid(
    exchange: Exchange,
    presented: PresentedCredential,
    cacheKey: string | undefined,
  ): PaywallDecision | Promise<PaywallDecision> {
    const check: CredentialCheck = {
      route: exchange.route,
      path: exchange.path,
      method: exchange.method,
      now: exchange.now,
    };
    // Only a price function makes the price depend on the request; fixed prices skip the closure.
    if (typeof exchange.route.price === 'function') check.quote = () => listedQuote(exchange);
    let verdict: ReturnType<PresentedCredential['verify']>;
    try {
      verdict = presented.verify(check);
    } catch (error) {
      return refusedCredential(exchange, error);
    }
    if (isPromiseLike(verdict)) {
      return Promise.resolve(verdict).then(
        (settled) => verified(exchange, presented, cacheKey, settled),
        (error: unknown) => refusedCredential(exchange, error),
      );
    }
    return verified(exchange, presented, cacheKey, verdict);
  }

  /** The request's memoized quote for an offer checking a credential; undefined when refused. */
  async function listedQuote(exchange: Exchange): Promise<Quote | undefined> {
    const quote = await exchange.quote();
    return isQuote(quote) ? quote : undefined;
  }

  /**
   * A checked credential: refused, or let through — at once when nothing needs I/O (no strict
   * mode, fixed price, no single-use claim, settlement, use counter or balance), else by
   * {@link charge}.
   */
  function verified(
    exchange: Exchange,
    presented: PresentedCredential,
    cacheKey: string | undefined,
    verdict: CredentialVerdict,
  ): PaywallDecision | Promise<PaywallDecision> {
    const { route } = exchange;
    if (!verdict.ok) {
      const refusal = {
        status: verdict.status ?? 401,
        code: verdict.code,
        detail: verdict.message,
      };
      if (refusal.status !== 503) return challenge(exchange, refusal);
      return respond(exchange, { ...refusal, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE });
    }
    const proof = verdict.proof;
    if (cacheKey !== undefined && proof.singleUse === undefined) {
      credentials.set(cacheSlot(cacheKey), { text: cacheKey, presented });
    }
    if (revoked.has(proof.tokenId)) {
      return challenge(exchange, {
        status: 401,
        code: 'token_revoked',
        detail: 'This token was revoked.',
      });
    }
    const allowed = tokenLimiter?.take(proof.tokenId);
    if (allowed !== undefined && !allowed.ok) {
      return respond(exchange, {
        status: 429,
        code: 'rate_limited',
        detail: 'Too many requests with this token; retry later.',
        retryAfterSeconds: allowed.retryAfterSeconds,
      });
    }
    const payment: PaymentContext = {
      protocol: proof.protocol,
      tokenId: proof.tokenId,
      service: route.service,
    };
    if (proof.tier !== undefined) payment.tier = proof.tier;
    const amount = proof.amountMsat ?? knownAmounts.get(proof.paymentHash);
    if (amount !== undefined) {
      payment.amount = amount;
      payment.unit = 'msat';
    }
    if (
      (options.strict === true && proof.protocol !== 'x402') ||
      typeof route.price === 'function' ||
      proof.singleUse !== undefined ||
      proof.settle !== undefined ||
      proof.maxUses !== undefined ||
      proof.balanceMsat !== undefined
    ) {
      return charge(exchange, proof, payment);
    }
    recordFirstSight(proof, route);
    return pass(exchange, payment, proof.headers);
  }

  /** What a paid request needs I/O for: strict mode, pricing, claims, settlement, counters. */
  async function charge(
    exchange: Exchange,
    proof: PaymentProof,
    payment: PaymentContext,
  ): Promise<PaywallDecision> {
    const { route } = exchange;
    if (options.strict === true && proof.protocol !== 'x402') {
      const refusal = await confirmSettled(proof.paymentHash);
      if (refusal !== undefined) {
        return refusal.status === 401 ? challenge(exchange, refusal) : respond(exchange, refusal);
      }
    }
    // A request its price function makes free stays free with a credential attached: it must not
    // use up a single-use proof, count against a use limit or draw on a balance (e.g. MCP
    // `tools/list` sent with the token a client bought for `tools/call`).
    if (typeof route.price === 'function') {
      const quote = await exchange.quote();
      if (!isQuote(quote)) return respond(exchange, quote);
      if (quote.msat === 0n) return passFree(exchange, 'free_route');
    }
    if (proof.singleUse !== undefined) {
      const quote = await exchange.quote();
      if (!isQuote(quote)) return respond(exchange, quote);
      if (proof.amountMsat !== undefined && proof.amountMsat < quote.msat) {
        return challenge(exchange, {
          status: 401,
          code: 'underpaid',
          detail: `This request costs ${formatMsat(quote.msat)}; the credential paid less.`,
        });
      }
      const { key, expiresAt } = proof.singleUse;
      const claimed = await storeCall(() => store.claimOnce(key, expiresAt));
      if (!('value' in claimed)) return respond(exchange, claimed);
      if (claimed.value !== true) {
        return challenge(exchange, {
          status: 401,
          code: 'credential_replayed',
          detail: 'This single-use credential was already used.',
        });
      }
    }
    if (proof.settle !== undefined) {
      const { settle } = proof;
      const settleNow = async (): Promise<PaywallFinal> => {
        const outcome = await settle();
        if (!outcome.ok) {
          const refusal = { status: 402, code: outcome.code, detail: outcome.message };
          return respond(exchange, refusal, outcome.headers);
        }
        const { settlement } = outcome;
        inBackground(async () => {
          await store.recordSettlement({
            ...settlement,
            tokenId: proof.tokenId,
            service: route.service,
            protocol: proof.protocol,
            settledAt: exchange.now,
          });
        }, 'recording a settlement');
        return { kind: 'pass', headers: outcome.headers };
      };
      if (proof.settleAfter === true && exchange.request.finalizes === true) {
        return {
          kind: 'pass',
          payment,
          headers: [...proof.headers, ...cors.headers(exchange.request)],
          // A handler that failed (4xx, 5xx) is not paid for: the authorization is left unsettled.
          finalize: (status) =>
            status >= 400 ? Promise.resolve({ kind: 'pass', headers: [] }) : settleNow(),
        };
      }
      const final = await settleNow();
      if (final.kind === 'respond') return final;
      return pass(exchange, payment, [...proof.headers, ...final.headers]);
    }
    if (proof.maxUses !== undefined) {
      const { maxUses } = proof;
      const used = await storeCall(() => store.consumeUses(proof.tokenId, 1, maxUses));
      if (!('value' in used)) return respond(exchange, used);
      if (!used.value.ok) {
        return challenge(exchange, {
          status: 402,
          code: 'uses_exhausted',
          detail: `This token has used all of its ${maxUses} requests.`,
        });
      }
      payment.remainingUses = maxUses - used.value.uses;
    }
    if (proof.balanceMsat !== undefined) {
      const { balanceMsat } = proof;
      const quote = await exchange.quote();
      if (!isQuote(quote)) return respond(exchange, quote);
      const spent = await storeCall(() =>
        store.spendBalance(proof.tokenId, quote.msat, balanceMsat),
      );
      if (!('value' in spent)) return respond(exchange, spent);
      if (!spent.value.ok) {
        return challenge(exchange, {
          status: 402,
          code: 'balance_exhausted',
          detail: `This request costs ${formatMsat(quote.msat)}; the token has ${formatMsat(spent.value.remainingMsat)} left.`,
        });
      }
      payment.remainingBalanceMsat = spent.value.remainingMsat;
    }
    recordFirstSight(proof, route);
    return pass(exchange, payment, proof.headers);
  }

  function decide(
    request: PaywallRequest,
    route: Route,
  ): PaywallDecision | Promise<PaywallDecision> {
    if (!ready) {
      return init().then(
        () => decide(request, route),
        (error: unknown) => {
          logger.error({ err: error }, 'the paywall could not start');
          const exchange = new RequestExchange(request, route);
          return respond(exchange, unavailable('store_error', 'The paywall is starting; retry.'));
        },
      );
    }
    const exchange = new RequestExchange(request, route);
    const preflight = cors.preflight(request);
    if (preflight !== undefined) return { kind: 'respond', response: preflight };
    if (route.free || allowlisted(exchange.path)) {
      return (
        networkLimited(exchange) ?? passFree(exchange, route.free ? 'free_route' : 'allowlist')
      );
    }
    const cacheKey = credentialKey(request);
    if (cacheKey !== '') {
      const cached = credentials.get(cacheSlot(cacheKey));
      if (cached !== undefined && cached.text === cacheKey) {
        return paid(exchange, cached.presented, undefined);
      }
      let presented: PresentedCredential | undefined;
      try {
        presented = readCredential(kinds, credentialSource(request));
      } catch (error) {
        return refusedCredential(exchange, error);
      }
      if (presented !== undefined) return paid(exchange, presented, cacheKey);
    }
    const limited = networkLimited(exchange);
    if (limited !== undefined) return limited;
    if (freebies?.take(exchange.network()) === true) return passFree(exchange, 'freebie');
    return challenge(exchange, {
      status: 402,
      code: 'payment_required',
      detail: `Payment required: ${route.description}. Pay one of the offers and retry with its credential.`,
    });
  }

  return {
    route: (routeOptions) => createRoute(routeOptions, rates === undefined ? {} : { rates }),

    handle(request, route) {
      try {
        const decision = decide(request, route);
        if (!isPromiseLike(decision)) return decision;
        return Promise.resolve(decision).catch((error: unknown) => failedDecision(error, logger));
      } catch (error) {
        return failedDecision(error, logger);
      }
    },

    init,

    async close() {
      unsubscribe?.();
      unsubscribe = undefined;
      flushChallenges();
      while (background.size > 0) await Promise.allSettled([...background]);
    },

    async revoke(tokenId, reason) {
      await init();
      await (reason === undefined ? store.revoke(tokenId) : store.revoke(tokenId, reason));
      revoked.add(tokenId);
    },
  };
}

/** The answer when deciding threw (a bug): logged, then a 503. */
function failedDecision(error: unknown, logger: PaywallLogger): PaywallDecision {
  logger.error({ err: error }, 'the paywall failed to decide a request');
  const problem = { status: 503, code: 'backend_error', detail: 'The paywall failed.' } as const;
  const headers: Array<[string, string]> = [
    ['Cache-Control', 'no-store'],
    ['Retry-After', String(RETRY_AFTER_UNAVAILABLE)],
  ];
  return { kind: 'respond', response: createProblemResponse(problem, headers) };
}

function credentialSource(request: PaywallRequest): CredentialSource {
  const header = request.headers.get('authorization');
  const authorization = request.authorization ?? (header === null ? [] : [header]);
  return { authorization, headers: request.headers };
}

/**
 * The exact text of every credential-bearing header, the key of the verified-credential cache:
 * the Authorization value itself when it is the only one (the common case, and the cheapest to
 * look up), else every value joined after a line feed (which no header value contains).
 */
function credentialKey(request: PaywallRequest): string {
  const { headers } = request;
  const macaroon = headers.get('macaroon');
  const grpc = headers.get('grpc-metadata-macaroon');
  const x402 = headers.get('payment-signature');
  const x402v1 = headers.get('x-payment');
  const authorization = request.authorization;
  const only = macaroon === null && grpc === null && x402 === null && x402v1 === null;
  if (authorization === undefined) {
    const header = headers.get('authorization');
    if (only) return header ?? '';
    return ['', header ?? '', macaroon ?? '', grpc ?? '', x402 ?? '', x402v1 ?? ''].join('\n');
  }
  if (only && authorization.length <= 1) return authorization[0] ?? '';
  return ['', ...authorization, macaroon ?? '', grpc ?? '', x402 ?? '', x402v1 ?? ''].join('\n');
}

/** Characters of a credential's text that key the verified-credential cache. */
const CACHE_SLOT_CHARS = 48;

/**
 * The cache key of a credential text: its last {@link CACHE_SLOT_CHARS} characters. A map hashes a
 * fresh string on every look-up, and a whole L402 header (600+ characters, new with each request)
 * costs a third of a microsecond to hash. The tail holds the preimage and the end of the
 * signed token, so different credentials do not share it by chance, and an entry is only used
 * when its whole text matches.
 */
function cacheSlot(text: string): string {
  return text.length > CACHE_SLOT_CHARS ? text.slice(-CACHE_SLOT_CHARS) : text;
}

function describePrice(quote: Quote): Record<string, string> {
  return {
    amount: quote.msat.toString(),
    unit: 'msat',
    display: formatMsat(quote.msat),
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
