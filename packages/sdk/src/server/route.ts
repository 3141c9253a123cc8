/**
 * Route options: what a route costs, what a payment buys, and which requests pass free. A route is
 * checked once, when it is created, so a mistake in it fails at startup and not on a request.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { createServiceCaveats, verifyCaveats } from '../l402/caveats.js';
import type { Amount, RateSource } from '../money.js';
import { type Duration, parseDuration } from './duration.js';
import type { Meter } from './meter.js';
import { type Price, type PriceFunction, type PriceInput, parsePrice } from './pricing.js';

/** Options of `paywall.route()`. */
export interface RouteOptions {
  /**
   * The service the route belongs to: a name, or a name and a tier (default tier 0). A token
   * bought on one route opens every route of its service, within its scope. Default `'api'`.
   */
  service?: string | { name: string; tier?: number };
  /**
   * The price of a request: `'10 sat'`, `'2500 msat'`, `'$0.002'` (needs the paywall's `rates`),
   * a bigint of msat, or a function of the request. Required unless `free`.
   */
  price?: Price;
  /** Let every request through without payment. */
  free?: boolean;
  /**
   * Shadow mode, to roll a price out safely: a request that would get a 402 passes unpaid
   * instead (no invoice is made), its payment context saying what it would have been charged
   * (`freeReason: 'shadow'`, `shadowMsat`). A credential presented anyway is still checked and
   * charged.
   */
  shadow?: boolean;
  /** The price function reads the parsed JSON body (`request.body`). */
  readsBody?: boolean;
  /** Shown in the invoice and the 402 body. */
  description?: string;
  /** Capabilities a token bought here grants (`<service>_capabilities`). */
  capabilities?: readonly string[];
  /** The capability this route needs; tokens whose capabilities leave it out are refused. */
  requiresCapability?: string;
  /** How long a token bought here stays valid: seconds or `'1h'`, `'30d'`. Default: no expiry. */
  validFor?: Duration;
  /** How many requests a token bought here makes. Default: unlimited (within `validFor`). */
  uses?: number;
  /**
   * Sell a prepaid balance instead of access: the invoice is for this amount and each request
   * draws the route's price from it (`'1000 sat'`, `'$1'`, or a bigint of msat).
   */
  balance?: PriceInput;
  /**
   * Charge what each answer cost, read by this meter (LLM tokens: `createLlmMeter`), instead of
   * a fixed price: `price` is then the most a request may cost, held from the token's balance
   * before it runs, and the charge settles at the metered cost, never above it. Needs `balance`
   * (what a payment buys). Without a meter, the handler may report the cost itself
   * (`payment.setCost`) on routes with a balance.
   */
  meter?: Meter;
  /**
   * Which answers are charged: those whose status is below this. Default 400 (successes and
   * redirects); 500 also charges client errors (4xx), 600 every answer. A request that gets no
   * answer (the handler throws before answering, the upstream cannot be reached or times out) is
   * never charged.
   */
  chargeBelow?: number;
  /** Narrows where a token bought here works. */
  scope?: {
    /** Path prefixes, on segment boundaries (`/v1` covers `/v1` and `/v1/x`, not `/v10`). */
    paths?: readonly string[];
    /** HTTP methods. */
    methods?: readonly string[];
  };
}

/** A checked route, made by `paywall.route()`. Treat it as opaque. */
export interface Route {
  readonly service: string;
  readonly tier: number;
  readonly free: boolean;
  readonly shadow: boolean;
  /** Undefined for free routes. */
  readonly price: Amount | PriceFunction | undefined;
  readonly readsBody: boolean;
  readonly description: string;
  readonly capabilities?: readonly string[];
  readonly requiresCapability?: string;
  readonly validForSeconds?: number;
  readonly uses?: number;
  readonly balance?: Amount;
  readonly paths?: readonly string[];
  readonly methods?: readonly string[];
  /** Answers with a status below this are charged; see {@link RouteOptions.chargeBelow}. */
  readonly chargeBelow: number;
  readonly meter?: Meter;
}

/** What route checking needs from the paywall. */
export interface RouteSettings {
  rates?: RateSource;
}

const DEFAULT_SERVICE = 'api';
const DEFAULT_CHARGE_BELOW = 400;

function invalid(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_config', message, cause === undefined ? {} : { cause });
}

function readAmount(input: PriceInput, what: string, settings: RouteSettings): Amount {
  const amount = parsePrice(input);
  const zero = amount.unit === 'msat' ? amount.msat === 0n : amount.microUsd === 0n;
  if (zero) {
    throw new TollwayError('invalid_price', `${what} must be positive (use \`free: true\`)`);
  }
  if (amount.unit === 'usd' && settings.rates === undefined) {
    throw new TollwayError(
      'invalid_price',
      `${what} is in dollars but the paywall has no \`rates\``,
    );
  }
  return amount;
}

function readService(service: RouteOptions['service']): { name: string; tier: number } {
  if (service === undefined) return { name: DEFAULT_SERVICE, tier: 0 };
  if (typeof service === 'string') return { name: service, tier: 0 };
  return { name: service.name, tier: service.tier ?? 0 };
}

/**
 * Checks route options. Throws `invalid_price` for a missing, malformed, zero or unconvertible
 * price or balance, and `invalid_config` for anything else that cannot be minted into a token.
 *
 * @example
 * ```ts
 * const route = createRoute({ service: 'forecast', price: '10 sat', validFor: '1h' }, {});
 * ```
 */
export function createRoute(options: RouteOptions, settings: RouteSettings): Route {
  const { name, tier } = readService(options.service);
  const free = options.free === true;
  if (free && options.price !== undefined) {
    throw invalid('a free route takes no price');
  }
  let price: Amount | PriceFunction | undefined;
  if (typeof options.price === 'function') price = options.price;
  else if (options.price !== undefined) price = readAmount(options.price, 'price', settings);
  else if (!free) throw new TollwayError('invalid_price', 'a route needs a price or `free: true`');

  if (options.uses !== undefined && (!Number.isSafeInteger(options.uses) || options.uses < 1)) {
    throw invalid('uses must be a positive whole number');
  }
  if (options.meter !== undefined && options.balance === undefined) {
    throw invalid('a metered route sells a balance: set `balance` (what one payment buys)');
  }
  if (options.uses !== undefined && options.balance !== undefined) {
    throw invalid('a route sells either uses or a balance, not both');
  }
  const balance =
    options.balance === undefined ? undefined : readAmount(options.balance, 'balance', settings);
  if (
    balance?.unit === 'msat' &&
    price !== undefined &&
    typeof price !== 'function' &&
    price.unit === 'msat' &&
    price.msat > balance.msat
  ) {
    throw new TollwayError('invalid_price', 'the price of a request exceeds the balance sold');
  }
  const validForSeconds =
    options.validFor === undefined ? undefined : parseDuration(options.validFor, 'validFor');
  const methods = options.scope?.methods?.map((method) => method.toUpperCase());
  const chargeBelow = options.chargeBelow ?? DEFAULT_CHARGE_BELOW;
  if (!Number.isSafeInteger(chargeBelow) || chargeBelow < 200 || chargeBelow > 600) {
    throw invalid('chargeBelow must be a status from 200 to 600');
  }

  const route: Route = {
    service: name,
    tier,
    free,
    shadow: options.shadow === true,
    price,
    readsBody: options.readsBody === true,
    description: options.description ?? name,
    ...(options.capabilities === undefined ? {} : { capabilities: [...options.capabilities] }),
    ...(options.requiresCapability === undefined
      ? {}
      : { requiresCapability: options.requiresCapability }),
    ...(validForSeconds === undefined ? {} : { validForSeconds }),
    ...(options.uses === undefined ? {} : { uses: options.uses }),
    ...(balance === undefined ? {} : { balance }),
    ...(options.scope?.paths === undefined ? {} : { paths: [...options.scope.paths] }),
    ...(methods === undefined ? {} : { methods }),
    chargeBelow,
    ...(options.meter === undefined ? {} : { meter: options.meter }),
  };
  if (route.paths?.length === 0 || route.methods?.length === 0) {
    throw invalid('scope lists must not be empty');
  }
  try {
    assertMintable(route);
  } catch (error) {
    if (isTollwayError(error)) throw invalid(`the route cannot be minted: ${error.message}`, error);
    throw error;
  }
  return Object.freeze(route);
}

/** What a token was sold for; see {@link createRouteCaveats}. */
export interface Sale {
  /** The balance it carries, msat, for routes that sell one. */
  balanceMsat: bigint | undefined;
  /** The listed price of the request it was bought for: dearer requests are refused. */
  price: Amount | undefined;
  /** Unix ms. */
  now: number;
}

/**
 * The caveats of a token sold on `route`: services, capabilities, Tollway's scope, use, balance
 * and price caveats, and the expiry. A balance token carries no price (each request draws its own).
 * Throws `invalid_caveat` for values that cannot be written as caveats.
 */
export function createRouteCaveats(route: Route, sale: Sale): string[] {
  const constraints: Record<string, string> = {};
  if (route.balance === undefined && sale.price !== undefined) {
    if (sale.price.unit === 'msat') constraints.tollway_price_msat = sale.price.msat.toString();
    else constraints.tollway_price_microusd = sale.price.microUsd.toString();
  }
  if (route.paths !== undefined) constraints.tollway_paths = route.paths.join(',');
  if (route.methods !== undefined) constraints.tollway_methods = route.methods.join(',');
  if (route.uses !== undefined) constraints.tollway_uses = String(route.uses);
  if (route.balance !== undefined && sale.balanceMsat !== undefined) {
    constraints.tollway_balance_msat = sale.balanceMsat.toString();
  }
  const caveats = createServiceCaveats([
    {
      name: route.service,
      tier: route.tier,
      constraints,
      ...(route.capabilities === undefined ? {} : { capabilities: route.capabilities }),
      ...(route.validForSeconds === undefined
        ? {}
        : { validUntil: Math.floor(sale.now / 1000) + route.validForSeconds }),
    },
  ]);
  return caveats;
}

/** Mints the route's caveats once and reads them back, so a bad value fails at route creation. */
function assertMintable(route: Route): void {
  const caveats = createRouteCaveats(route, { balanceMsat: 1n, price: undefined, now: 0 });
  const readBack = verifyCaveats(caveats, {
    service: route.service,
    now: 0,
    ...(route.paths?.[0] === undefined ? {} : { path: route.paths[0] }),
    ...(route.methods?.[0] === undefined ? {} : { method: route.methods[0] }),
  });
  if (!readBack.ok) throw new TollwayError(readBack.code, readBack.message);
}
