/**
 * Whether a credential can pay a request's price: a single-use proof must have paid at least it
 * (`underpaid`), and a token carrying the price it paid per request must not meet a dearer one
 * (`price_exceeds_token`) — compared in the unit the route listed, without I/O for fixed prices.
 */
import { type Amount, formatMsat, formatUsd } from '../money.js';
import type { Refusal } from './answers.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { PaymentProof } from './offers.js';
import { priceToMsat, type Quote } from './pricing.js';
import type { Route } from './route.js';

/**
 * Whether `proof` fits the price of `route` without knowing the request: `'fits'`, `'exceeds'`,
 * or `'unknown'` when only the request's quote can tell (a price function, or another unit).
 */
export function fitsListedPrice(proof: PaymentProof, route: Route): 'fits' | 'exceeds' | 'unknown' {
  const { maxPrice } = proof;
  if (maxPrice === undefined || route.price === undefined) return 'fits';
  if (typeof route.price === 'function' || route.price.unit !== maxPrice.unit) return 'unknown';
  return exceeds(maxPrice, route.price) ? 'exceeds' : 'fits';
}

/** The 402 for a request dearer than what its credential paid per request. */
export function priceExceeded(proof: PaymentProof): Refusal {
  const paid = proof.maxPrice === undefined ? 'less' : describe(proof.maxPrice);
  return {
    status: 402,
    code: 'price_exceeds_token',
    detail: `This request costs more than the token paid per request (${paid}); pay the offers for this request.`,
  };
}

/** Why the credential cannot pay this request's price, or undefined when it can. */
export async function priceRefusal(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  quote: Quote | undefined,
): Promise<Refusal | undefined> {
  if (proof.singleUse !== undefined && proof.amountMsat !== undefined && quote !== undefined) {
    if (proof.amountMsat < quote.msat) {
      return {
        status: 401,
        code: 'underpaid',
        detail: `This request costs ${formatMsat(quote.msat)}; the credential paid less.`,
      };
    }
  }
  const { maxPrice } = proof;
  if (maxPrice === undefined) return undefined;
  const listed = fitsListedPrice(proof, exchange.route);
  if (listed !== 'unknown') return listed === 'exceeds' ? priceExceeded(proof) : undefined;
  if (quote === undefined) return undefined;
  if (quote.amount.unit === maxPrice.unit) {
    return exceeds(maxPrice, quote.amount) ? priceExceeded(proof) : undefined;
  }
  // Listed in another unit than the token paid in (the route changed currency): compare in msat.
  let paidMsat: bigint;
  try {
    paidMsat = await priceToMsat(maxPrice, context.rates);
  } catch {
    return priceExceeded(proof);
  }
  return quote.msat > paidMsat ? priceExceeded(proof) : undefined;
}

function exceeds(paid: Amount, price: Amount): boolean {
  if (paid.unit === 'msat' && price.unit === 'msat') return price.msat > paid.msat;
  if (paid.unit === 'usd' && price.unit === 'usd') return price.microUsd > paid.microUsd;
  return true;
}

function describe(amount: Amount): string {
  return amount.unit === 'msat' ? formatMsat(amount.msat) : formatUsd(amount.microUsd);
}
