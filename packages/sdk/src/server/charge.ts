/**
 * The charge of a paid request that needs I/O: strict mode's look-up, the request's own price
 * (refusing a credential that paid for cheaper requests), the reservation of what the credential
 * pays with, and the settlement on the outcome. When the caller reports the outcome, the pass
 * decision carries the charge: the answer's status settles the reservation (charged) or releases
 * it; otherwise it is charged before the handler runs.
 */
import { isTollwayError } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes, sha256 } from '../internal/crypto.js';
import { tollwayConditions } from '../l402/caveats.js';
import { formatL402Credential } from '../l402/credential.js';
import { createTokenId } from '../l402/identifier.js';
import type { InvoiceStatus } from '../lightning/types.js';
import { type Amount, formatMsat, formatUsd } from '../money.js';
import { pass, passFree, type Refusal, respond, unavailable } from './answers.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import { type Exchange, isQuote } from './exchange.js';
import { mintL402Token } from './l402-offer.js';
import type { MeterReading } from './meter.js';
import type { PaymentProof } from './offers.js';
import {
  type PriceInput,
  type PriceRequest,
  parsePrice,
  priceToMsat,
  type Quote,
} from './pricing.js';
import { RECEIPT_HEADERS, type Reservation, reserve } from './reservation.js';
import type { Route } from './route.js';
import { sessionCharge } from './sessions.js';
import type { PaymentContext, PaywallCharge, PaywallDecision, PaywallFinal } from './types.js';

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

/** True when `proof` cannot pass without I/O on `exchange`. */
export function needsCharge(context: PaywallContext, exchange: Exchange, proof: PaymentProof) {
  return (
    (context.strict && proof.protocol !== 'x402' && proof.boughtWith === undefined) ||
    typeof exchange.route.price === 'function' ||
    proof.singleUse !== undefined ||
    proof.settle !== undefined ||
    proof.session !== undefined ||
    proof.maxUses !== undefined ||
    proof.balanceMsat !== undefined ||
    fitsListedPrice(proof, exchange.route) !== 'fits'
  );
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

/** Runs the charge of a checked credential (see the module comment): a pass or a refusal. */
export async function charge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  payment: PaymentContext,
): Promise<PaywallDecision> {
  const { route } = exchange;
  if (proof.session !== undefined) {
    return sessionCharge(context, exchange, proof, proof.session, (drawn, drawing) =>
      charge(context, exchange, drawn, drawing),
    );
  }
  if (proof.buysBalance !== undefined) {
    return buyBalance(context, exchange, proof, proof.buysBalance.amount, payment);
  }
  if (context.strict && proof.protocol !== 'x402' && proof.boughtWith === undefined) {
    const refusal = await confirmSettled(context, proof.paymentHash);
    if (refusal !== undefined) {
      return refusal.status === 401
        ? challenge(context, exchange, refusal)
        : respond(context, exchange, refusal);
    }
  }
  let quote: Quote | undefined;
  if (needsQuote(proof, route)) {
    const quoted = await exchange.quote();
    if (!isQuote(quoted)) return respond(context, exchange, quoted);
    quote = quoted;
    // A request its price function makes free stays free with a credential attached: it must not
    // use up a single-use proof, count against a use limit or draw on a balance (e.g. MCP
    // `tools/list` sent with the token a client bought for `tools/call`).
    if (typeof route.price === 'function' && quote.msat === 0n) {
      return passFree(context, exchange, 'free_route');
    }
  }
  const refusal = await priceRefusal(context, exchange, proof, quote);
  if (refusal !== undefined) return challenge(context, exchange, refusal);
  const holds = proof.singleUse !== undefined || proof.maxUses !== undefined;
  if (!holds && proof.balanceMsat === undefined) {
    context.recorder.firstSight(proof, route);
    return pass(context, exchange, payment, proof.headers);
  }
  const reserved = await storeCall(context, () =>
    reserve(context, exchange, proof, quote, payment),
  );
  if (!('value' in reserved)) return respond(context, exchange, reserved);
  if (!reserved.value.ok) return challenge(context, exchange, reserved.value.refusal);
  const { reservation } = reserved.value;
  if (proof.settle === undefined) context.recorder.firstSight(proof, route);
  const reportsOutcome = exchange.request.reportsOutcome === true;
  if (proof.settle !== undefined && (!reportsOutcome || proof.settleAfter !== true)) {
    // Settled before the handler runs (`upfront`, or a caller that reports no outcome).
    const final = await settle(context, exchange, proof, reservation);
    if (final.kind === 'respond') return final;
    const decision = pass(context, exchange, payment, [...proof.headers, ...final.headers]);
    if (decision.kind === 'pass' && final.settlement !== undefined) {
      decision.settlement = final.settlement;
    }
    return decision;
  }
  if (!reportsOutcome) {
    reservation.settle();
    return pass(context, exchange, payment, [...proof.headers, ...reservation.receipt]);
  }
  if (proof.balanceMsat === undefined) {
    return pass(
      context,
      exchange,
      payment,
      [],
      outcomeCharge(context, exchange, proof, reservation),
    );
  }
  // A draw on a balance may cost less than the price held: the handler may say what it cost, or
  // the route's meter reads it from the answer.
  const drawn = createDraw(context, reservation, payment);
  payment.setCost = drawn.setCost;
  const meter = route.meter === undefined ? undefined : await exchange.priceRequest();
  return pass(
    context,
    exchange,
    payment,
    [],
    drawCharge(context, exchange, reservation, drawn, meter),
  );
}

/** Whether the charge needs the request's price: to reserve it, or to compare it. */
function needsQuote(proof: PaymentProof, route: Route): boolean {
  return (
    typeof route.price === 'function' ||
    proof.singleUse !== undefined ||
    proof.balanceMsat !== undefined ||
    fitsListedPrice(proof, route) === 'unknown'
  );
}

/** Why the credential cannot pay this request's price, or undefined when it can. */
async function priceRefusal(
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

/**
 * The charge the caller commits with the answer's status: an answer below the route's
 * `chargeBelow` is charged (an x402 payment settles then), any other answer, or none, is not.
 */
function outcomeCharge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  reservation: Reservation,
): PaywallCharge {
  let done = false;
  return {
    commit(status): PaywallFinal | Promise<PaywallFinal> {
      if (done) return { kind: 'pass', headers: [] };
      done = true;
      if (status >= exchange.route.chargeBelow) {
        reservation.release();
        return { kind: 'pass', headers: reservation.nothing };
      }
      if (proof.settle !== undefined) {
        return settle(context, exchange, proof, reservation).then((final) =>
          final.kind === 'pass'
            ? { ...final, headers: [...proof.headers, ...final.headers] }
            : final,
        );
      }
      reservation.settle();
      return { kind: 'pass', headers: [...proof.headers, ...reservation.receipt] };
    },
    release() {
      if (done) return [];
      done = true;
      reservation.release();
      return reservation.nothing;
    },
  };
}

/** The header that hands a buyer the credential of the balance its payment bought. */
const CREDENTIAL_HEADER = 'Tollway-Credential';

/**
 * A payment that buys the route's balance (x402): claimed once, settled before anything else,
 * then an L402 token for the balance is minted — its "preimage" a fresh secret only the buyer
 * learns, in `Tollway-Credential` — and this request draws from it as any later one will.
 */
async function buyBalance(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  amount: Amount,
  payment: PaymentContext,
): Promise<PaywallDecision> {
  // The purchase's own reservation: the payment's single-use claim.
  const claimed = await storeCall(context, () =>
    reserve(context, exchange, proof, undefined, payment),
  );
  if (!('value' in claimed)) return respond(context, exchange, claimed);
  if (!claimed.value.ok) return challenge(context, exchange, claimed.value.refusal);
  const settled = await settle(context, exchange, proof, claimed.value.reservation);
  if (settled.kind === 'respond') return settled;
  let balanceMsat: bigint;
  try {
    balanceMsat = await priceToMsat(amount, context.rates);
  } catch (error) {
    context.logger.error({ err: error }, 'a bought balance could not be priced');
    return respond(
      context,
      exchange,
      unavailable('price_unavailable', 'The price is unavailable.'),
    );
  }
  const token = mintBoughtToken(context, exchange, proof, balanceMsat);
  const drawn: PaymentContext = {
    ...payment,
    protocol: 'l402',
    tokenId: token.proof.tokenId,
    amount: balanceMsat,
    unit: 'msat',
  };
  const decision = await charge(context, exchange, token.proof, drawn);
  if (decision.kind === 'respond') return decision;
  decision.headers.push(...settled.headers, [CREDENTIAL_HEADER, token.credential]);
  return decision;
}

/** The L402 token of a balance bought with `proof`'s payment, and its proof. */
function mintBoughtToken(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  balanceMsat: bigint,
): { credential: string; proof: PaymentProof } {
  const secret = randomBytes(32);
  const paymentHash = sha256(secret);
  const tokenId = createTokenId();
  const macaroon = mintL402Token(context.rootKeys, {
    route: exchange.route,
    paymentHash,
    tokenId,
    sale: { balanceMsat, price: undefined, now: exchange.now },
    caveats: [`${tollwayConditions.boughtWith}=${proof.protocol}`],
  });
  const credential = formatL402Credential({ macaroons: [macaroon], preimage: secret });
  return {
    credential,
    proof: {
      protocol: 'l402',
      tokenId: bytesToHex(tokenId),
      account: bytesToHex(paymentHash),
      paymentHash: bytesToHex(paymentHash),
      balanceMsat,
      boughtWith: proof.protocol,
      headers: [],
    },
  };
}

/** A draw on a balance: what was held, and what the handler reported it cost. */
interface Draw {
  setCost(cost: PriceInput): void;
  /** The reported cost, msat, at most what was held; undefined when none was reported. */
  reported(): bigint | Promise<bigint> | undefined;
  /** The receipt for a draw of `charged` msat. */
  receipt(charged: bigint): Array<[string, string]>;
}

function createDraw(
  context: PaywallContext,
  reservation: Reservation,
  payment: PaymentContext,
): Draw {
  let cost: PriceInput | undefined;
  const held = reservation.heldMsat;
  // The balance left once this draw is charged at what it held (others may hold part of it).
  const leftAtHeld = payment.remainingBalanceMsat ?? 0n;
  return {
    setCost(reported) {
      cost = reported;
    },
    reported() {
      if (cost === undefined) return undefined;
      const amount = parsePrice(cost);
      if (amount.unit === 'msat') return minBigint(amount.msat, held);
      return priceToMsat(amount, context.rates).then((msat) => minBigint(msat, held));
    },
    receipt(charged) {
      return [
        [RECEIPT_HEADERS.charged, `${charged} msat`],
        [RECEIPT_HEADERS.remaining, `${leftAtHeld + held - charged} msat`],
      ];
    },
  };
}

/**
 * The charge of a draw on a balance: charged on commit at the reported cost (or the price held)
 * — or, on a metered route, at what the meter reads once the answer ends.
 */
function drawCharge(
  context: PaywallContext,
  exchange: Exchange,
  reservation: Reservation,
  draw: Draw,
  meterRequest: PriceRequest | undefined,
): PaywallCharge {
  const { route } = exchange;
  let state: 'open' | 'metering' | 'done' = 'open';
  let reading: MeterReading | undefined;
  const settleAt = (charged: bigint): Array<[string, string]> => {
    reservation.settle(charged);
    return draw.receipt(charged);
  };
  const charge: PaywallCharge = {
    commit(status, headers) {
      if (state !== 'open') return { kind: 'pass', headers: [] };
      if (status >= route.chargeBelow) {
        state = 'done';
        reservation.release();
        return { kind: 'pass', headers: reservation.nothing };
      }
      if (route.meter === undefined || meterRequest === undefined) {
        state = 'done';
        const reported = draw.reported();
        if (reported === undefined)
          return { kind: 'pass', headers: settleAt(reservation.heldMsat) };
        if (typeof reported === 'bigint') return { kind: 'pass', headers: settleAt(reported) };
        return reported.then((charged) => ({ kind: 'pass', headers: settleAt(charged) }));
      }
      state = 'metering';
      reading = route.meter.open({ request: meterRequest, status, headers });
      return {
        kind: 'pass',
        headers: [[RECEIPT_HEADERS.reserved, `${reservation.heldMsat} msat`]],
      };
    },
    release() {
      if (state === 'done') return [];
      state = 'done';
      reservation.release();
      return reservation.nothing;
    },
  };
  if (route.meter !== undefined) {
    charge.meter = {
      write(chunk) {
        if (state === 'metering') reading?.write(chunk);
      },
      async end(complete) {
        if (state !== 'metering') return [];
        state = 'done';
        const reported = await draw.reported();
        if (reported !== undefined) return settleAt(reported);
        // What the answer cost, read by the meter; what was held when it cannot tell.
        try {
          const metered = await reading?.cost(complete);
          if (metered === undefined) return settleAt(reservation.heldMsat);
          const msat = await priceToMsat(parsePrice(metered), context.rates);
          return settleAt(minBigint(msat, reservation.heldMsat));
        } catch (error) {
          context.logger.warn(
            { err: error },
            'a metered cost could not be read; charged what was held',
          );
          return settleAt(reservation.heldMsat);
        }
      },
    };
  }
  return charge;
}

function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * Settles `proof` (x402) and records it: the headers for the answer, or the 402 that replaces it
 * (the reservation released, so the payment can be presented again).
 */
async function settle(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  reservation: Reservation,
): Promise<PaywallFinal> {
  const outcome = await (proof.settle as NonNullable<PaymentProof['settle']>)();
  const report =
    outcome.data === undefined ? undefined : { kind: proof.protocol, data: outcome.data };
  if (!outcome.ok) {
    reservation.release();
    const decision = await challenge(
      context,
      exchange,
      { status: 402, code: outcome.code, detail: outcome.message },
      {
        headers: [...outcome.headers, ...reservation.nothing],
        ...(report === undefined ? {} : { settlement: report }),
      },
    );
    if (decision.kind === 'respond') return decision;
    // The request turned free meanwhile: nothing to settle, nothing to replace.
    return { kind: 'pass', headers: outcome.headers };
  }
  reservation.settle();
  const { settlement } = outcome;
  context.recorder.settlement({
    ...settlement,
    tokenId: proof.tokenId,
    service: exchange.route.service,
    protocol: proof.protocol,
    settledAt: exchange.now,
  });
  return {
    kind: 'pass',
    headers: [
      ...outcome.headers,
      [RECEIPT_HEADERS.charged, `${settlement.amount} ${settlement.unit}`],
    ],
    ...(report === undefined ? {} : { settlement: report }),
  };
}

/** Strict mode: a refusal unless the backend says the invoice settled (remembered once it did). */
async function confirmSettled(
  context: PaywallContext,
  paymentHash: string,
): Promise<Refusal | undefined> {
  const { invoices } = context;
  if (invoices.isSettled(paymentHash)) return undefined;
  let status: InvoiceStatus;
  try {
    status = await invoices.lookup(paymentHash);
  } catch (error) {
    if (!isTollwayError(error, 'invoice_not_found')) {
      context.logger.warn({ err: error }, 'strict mode could not look up an invoice');
      return unavailable('backend_unavailable', 'The payment cannot be confirmed right now.');
    }
    return { status: 401, code: 'invoice_not_settled', detail: 'The invoice is unknown.' };
  }
  if (status.state !== 'settled') {
    return { status: 401, code: 'invoice_not_settled', detail: 'The invoice is not settled.' };
  }
  invoices.noteSettled(status);
  return undefined;
}

/** A store call on a paid request: its value, or a 503 refusal when the store failed. */
async function storeCall<T>(
  context: PaywallContext,
  call: () => Promise<T>,
): Promise<{ value: T } | Refusal> {
  try {
    return { value: await call() };
  } catch (error) {
    context.logger.warn({ err: error }, 'the store failed on a paid request');
    return unavailable('store_error', 'The paywall store is unavailable; retry later.');
  }
}
