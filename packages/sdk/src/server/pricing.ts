/**
 * Route prices: fixed amounts (`'10 sat'`, `'2500 msat'`, `'$0.002'`, or a bigint of msat), or a
 * function of the request, and their conversion to millisatoshis for the invoice.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import {
  type Amount,
  MAX_MSAT,
  msatToUsd,
  parseAmount,
  type RateSource,
  usdToMsat,
} from '../money.js';
import type { HeaderReader } from './types.js';

/** A price as written in options: amount text, or a bigint of millisatoshis. */
export type PriceInput = string | bigint;

/** What a price function sees of the request. */
export interface PriceRequest {
  /** Upper case. */
  method: string;
  /** The path, without the query. */
  path: string;
  query: URLSearchParams;
  headers: HeaderReader;
  /** The parsed JSON body, for routes with `readsBody: true` (undefined otherwise, and for GET/HEAD). */
  body: unknown;
}

/**
 * Prices a request, e.g. by LLM `model` or MCP tool `name`. Returning zero lets the request through
 * free. Throwing a `TollwayError` whose code starts with `invalid_` answers 400 with that code; any
 * other failure answers 503 `price_unavailable`.
 */
export type PriceFunction = (request: PriceRequest) => PriceInput | Promise<PriceInput>;

/** A route price: fixed, or computed per request. */
export type Price = PriceInput | PriceFunction;

/**
 * Reads a fixed price. Throws `invalid_price` unless it is amount text {@link parseAmount} reads or
 * a non-negative bigint of msat.
 *
 * @example
 * ```ts
 * parsePrice('10 sat');  // { unit: 'msat', msat: 10000n }
 * parsePrice('$0.002');  // { unit: 'usd', microUsd: 2000n }
 * parsePrice(2500n);     // { unit: 'msat', msat: 2500n }
 * ```
 */
export function parsePrice(input: PriceInput): Amount {
  if (typeof input === 'bigint') {
    if (input < 0n) throw new TollwayError('invalid_price', 'a price cannot be negative');
    return parseMsatBigint(input);
  }
  try {
    return parseAmount(input);
  } catch (cause) {
    throw new TollwayError('invalid_price', `not a price: ${String(input).slice(0, 40)}`, {
      cause,
    });
  }
}

function parseMsatBigint(msat: bigint): Amount {
  // Checked in place, not by formatting and parsing it back: a price function's bigint is read on
  // every request of its route.
  if (msat > MAX_MSAT) {
    throw new TollwayError('invalid_price', 'the price is larger than 21 million BTC');
  }
  return { unit: 'msat', msat };
}

/**
 * The amount in millisatoshis. Dollar amounts are converted at the current rate and rounded up to
 * a whole satoshi (wallets and MPP count whole sats). Throws `invalid_price` for dollars without a
 * rate source, `price_unavailable` when the rate source fails.
 *
 * @example
 * ```ts
 * await priceToMsat({ unit: 'usd', microUsd: 2000n }, fixedRate('100000')); // 2000n (2 sat)
 * ```
 */
export async function priceToMsat(amount: Amount, rates: RateSource | undefined): Promise<bigint> {
  if (amount.unit === 'msat') return amount.msat;
  if (rates === undefined) {
    throw new TollwayError('invalid_price', 'a dollar price needs a rate source (option `rates`)');
  }
  let rate: Awaited<ReturnType<RateSource['usdPerBtc']>>;
  try {
    rate = await rates.usdPerBtc();
  } catch (cause) {
    throw new TollwayError('price_unavailable', 'the rate source did not answer', { cause });
  }
  const msat = usdToMsat(amount.microUsd, rate, 'ceil');
  return ((msat + 999n) / 1000n) * 1000n;
}

/** The price of one request, in msat, and as the route named it. */
export interface Quote {
  msat: bigint;
  amount: Amount;
  /**
   * The price in micro-dollars: as the route named it, or — a price in msat on a paywall with a
   * rate source — converted at the rate, rounded up (what an x402 `upto` authorises).
   */
  microUsd?: bigint;
}

/**
 * Computes the price of one request: runs the price function (if any), reads its answer, converts
 * it to msat. Every failure is a `TollwayError`: `invalid_*` codes the function threw (the
 * client's fault) pass through; everything else becomes `price_unavailable`.
 */
export async function quotePrice(
  price: Amount | PriceFunction,
  request: () => Promise<PriceRequest>,
  rates: RateSource | undefined,
): Promise<Quote> {
  let amount: Amount;
  if (typeof price === 'function') {
    let answer: PriceInput;
    try {
      answer = await price(await request());
    } catch (error) {
      if (isTollwayError(error) && error.code.startsWith('invalid_')) throw error;
      throw new TollwayError('price_unavailable', 'the price function failed', { cause: error });
    }
    try {
      amount = parsePrice(answer);
    } catch (cause) {
      throw new TollwayError('price_unavailable', 'the price function returned no valid price', {
        cause,
      });
    }
  } else {
    amount = price;
  }
  try {
    const msat = await priceToMsat(amount, rates);
    if (amount.unit === 'usd') return { msat, amount, microUsd: amount.microUsd };
    if (rates === undefined) return { msat, amount };
    return { msat, amount, microUsd: msatToUsd(msat, await rates.usdPerBtc(), 'ceil') };
  } catch (error) {
    if (isTollwayError(error, 'price_unavailable')) throw error;
    throw new TollwayError('price_unavailable', 'the price could not be converted to msat', {
      cause: error,
    });
  }
}
