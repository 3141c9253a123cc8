/**
 * One request on its way through the engine: its path and method read once, its client network
 * and its price computed on first use and remembered.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import type { Tracing } from '../internal/tracing.js';
import { type Refusal, unavailable } from './answers.js';
import { clientNetwork } from './client-network.js';
import type { PaywallContext } from './context.js';
import { type PriceRequest, type Quote, quotePrice } from './pricing.js';
import { type RequestTrace, startRequestTrace } from './request-trace.js';
import type { Route } from './route.js';
import type { PaywallRequest } from './types.js';

/** One request being decided. */
export interface Exchange {
  readonly request: PaywallRequest;
  readonly route: Route;
  /** Without the query. */
  readonly path: string;
  /** Upper case. */
  readonly method: string;
  /** Unix ms, when the engine took the request. */
  readonly now: number;
  /** The request's spans, when tracing is on. */
  readonly trace: RequestTrace | undefined;
  /** The client's network, computed on first use. */
  network(): string;
  /** The request's price, computed once on first use. */
  quote(): Promise<Quote | Refusal>;
  /** What a price function (or a meter) sees of the request, read once on first use. */
  priceRequest(): Promise<PriceRequest>;
}

/** True for a price, false for the refusal that stands instead of one. */
export function isQuote(value: Quote | Refusal): value is Quote {
  return 'msat' in value;
}

/**
 * Starts deciding `request` for `route`, its spans started when `tracing` is given.
 *
 * @example
 * ```ts
 * const exchange = createExchange(context, request, route);
 * const quote = await exchange.quote();
 * ```
 */
export function createExchange(
  context: PaywallContext,
  request: PaywallRequest,
  route: Route,
  tracing?: Tracing,
): Exchange {
  return new RequestExchange(context, request, route, tracing);
}

/** A class, so that a request costs one object: its network and price are computed on first use. */
class RequestExchange implements Exchange {
  readonly request: PaywallRequest;
  readonly route: Route;
  readonly path: string;
  readonly method: string;
  readonly now: number;
  readonly trace: RequestTrace | undefined;
  readonly #context: PaywallContext;
  #network: string | undefined;
  #quoted: Promise<Quote | Refusal> | undefined;
  #inputs: Promise<PriceRequest> | undefined;

  constructor(
    context: PaywallContext,
    request: PaywallRequest,
    route: Route,
    tracing: Tracing | undefined,
  ) {
    const path = pathOf(request.url);
    this.request = request;
    this.route = route;
    this.path = path;
    this.method = upperCase(request.method);
    this.now = context.now();
    this.#context = context;
    this.trace =
      tracing === undefined
        ? undefined
        : startRequestTrace(
            tracing,
            { method: this.method, path, reportsOutcome: request.reportsOutcome === true },
            route,
          );
  }

  network(): string {
    this.#network ??= clientNetwork(this.request.clientIp);
    return this.#network;
  }

  quote(): Promise<Quote | Refusal> {
    this.#quoted ??= quoteOf(this.#context, this);
    return this.#quoted;
  }

  priceRequest(): Promise<PriceRequest> {
    this.#inputs ??= priceInputs(this, queryOf(this.request.url));
    return this.#inputs;
  }
}

/**
 * `method` in upper case: as received when it already is (the usual case), without the call into
 * the runtime `toUpperCase` makes.
 */
function upperCase(method: string): string {
  for (let i = 0; i < method.length; i++) {
    const code = method.charCodeAt(i);
    if ((code >= 97 && code <= 122) || code > 127) return method.toUpperCase();
  }
  return method;
}

/** A request target, absolute or not, without scheme, host and fragment. */
function targetOf(url: string): string {
  let target = url;
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://');
    const slash = scheme < 0 ? -1 : target.indexOf('/', scheme + 3);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const hash = target.indexOf('#');
  return hash < 0 ? target : target.slice(0, hash);
}

/** The path of a request target (see {@link targetOf}). */
function pathOf(url: string): string {
  const target = targetOf(url);
  const question = target.indexOf('?');
  return (question < 0 ? target : target.slice(0, question)) || '/';
}

/** The query of a request target, without its `?`; read only when a price function asks. */
function queryOf(url: string): string {
  const target = targetOf(url);
  const question = target.indexOf('?');
  return question < 0 ? '' : target.slice(question + 1);
}

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

async function quoteOf(context: PaywallContext, exchange: Exchange): Promise<Quote | Refusal> {
  const { route } = exchange;
  const price = route.price;
  if (price === undefined) return { msat: 0n, amount: { unit: 'msat', msat: 0n } };
  try {
    return await quotePrice(price, () => exchange.priceRequest(), context.rates);
  } catch (error) {
    if (isTollwayError(error) && error.code !== 'price_unavailable') {
      return { status: 400, code: error.code, detail: error.message };
    }
    context.logger.warn({ err: error, service: route.service }, 'the request could not be priced');
    return unavailable('price_unavailable', 'The price of this request is unavailable.');
  }
}
