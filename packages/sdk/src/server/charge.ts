/**
 * The charge of a paid request that needs I/O: strict mode's look-up, the request's own price
 * (refusing a credential that paid for cheaper requests), the reservation of what the credential
 * pays with, and the settlement on the outcome. When the caller reports the outcome, the pass
 * decision carries the charge: the answer's status settles the reservation (charged) or releases
 * it; otherwise it is charged before the handler runs.
 */
import { isTollwayError } from '../errors.js';
import type { InvoiceStatus } from '../lightning/types.js';
import { pass, passFree, type Refusal, respond, storeCall, unavailable } from './answers.js';
import { createBalanceCover } from './balance-cover.js';
import { createBalanceDraw } from './balance-draw.js';
import { buyBalance } from './buy-balance.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import { createDraw, drawCharge } from './draw.js';
import { type Exchange, isQuote } from './exchange.js';
import type { PaymentProof } from './offers.js';
import { fitsListedPrice, priceRefusal } from './price-check.js';
import type { Quote } from './pricing.js';
import { type Reservation, reserve } from './reservation.js';
import type { Route } from './route.js';
import { sessionCharge } from './sessions.js';
import { costCharge } from './settle-cost.js';
import { settle } from './settlement.js';
import type { PaymentContext, PaywallCharge, PaywallDecision, PaywallFinal } from './types.js';

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
    proof.draws !== undefined ||
    fitsListedPrice(proof, exchange.route) !== 'fits'
  );
}

/**
 * Runs the charge of a checked credential (see the module comment): a pass or a refusal.
 * `sessionId` is set for a draw on a payment session.
 */
export async function charge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  payment: PaymentContext,
  sessionId?: string,
): Promise<PaywallDecision> {
  const { route } = exchange;
  if (proof.session !== undefined) {
    return sessionCharge(context, exchange, proof, proof.session, (drawn, drawing, id) =>
      charge(context, exchange, drawn, drawing, id),
    );
  }
  if (proof.buysBalance !== undefined) {
    return buyBalance(
      context,
      exchange,
      proof,
      proof.buysBalance.amount,
      payment,
      (bought, drawn) => charge(context, exchange, bought, drawn),
    );
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
  if (!holds && proof.balanceMsat === undefined && proof.draws === undefined) {
    context.recorder.firstSight(proof, route);
    return pass(context, exchange, payment, proof.headers);
  }
  const { trace } = exchange;
  const reportsOutcome = exchange.request.reportsOutcome === true;
  // A metered answer that tells its cost as it goes holds more as it needs it: a session's call
  // starts with what is left when that is less than its price, and waits for top-ups.
  const covered =
    reportsOutcome && route.meter?.runningCost === true && proof.balanceMsat !== undefined;
  const partial = covered && sessionId !== undefined;
  const reserved = await storeCall(context, () =>
    trace === undefined
      ? reserve(context, exchange, proof, quote, payment, partial)
      : trace.step('tollway.reserve', () =>
          reserve(context, exchange, proof, quote, payment, partial),
        ),
  );
  if (!('value' in reserved)) return respond(context, exchange, reserved);
  if (!reserved.value.ok) {
    const { refusal, headers } = reserved.value;
    if (headers === undefined) return challenge(context, exchange, refusal);
    return respond(context, exchange, refusal, { headers });
  }
  const { reservation } = reserved.value;
  // Settled at the facilitator, or claimed later in batches (x402): recorded when that happens.
  if (proof.settle === undefined && proof.draws === undefined) {
    context.recorder.firstSight(proof, route);
  }
  if (proof.settle !== undefined && (!reportsOutcome || proof.settleAfter !== true)) {
    // Settled before the handler runs (`upfront`, or a caller that reports no outcome).
    const final = await (trace === undefined
      ? settle(context, exchange, proof, reservation)
      : trace.step('tollway.settle', () => settle(context, exchange, proof, reservation)));
    if (final.kind === 'respond') return final;
    const decision = pass(context, exchange, payment, [...proof.headers, ...final.headers]);
    if (decision.kind === 'pass' && final.settlement !== undefined) {
      decision.settlement = final.settlement;
    }
    return decision;
  }
  if (!reportsOutcome) {
    // Charged before the handler runs; a charge written before the answer goes must be, first.
    const written = reservation.settle();
    if (written !== undefined) {
      const stored = await storeCall(context, () => written);
      if (!('value' in stored)) return respond(context, exchange, stored);
    }
    return pass(context, exchange, payment, [...proof.headers, ...reservation.receipt]);
  }
  if (proof.settlesCost === true) {
    const meter = route.meter === undefined ? undefined : await exchange.priceRequest();
    return pass(
      context,
      exchange,
      payment,
      [],
      costCharge(context, exchange, proof, reservation, payment, meter),
    );
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
  const cover = covered
    ? createBalanceCover(context, reservation, payment.remainingBalanceMsat ?? 0n, {
        account: proof.account ?? proof.tokenId,
        total: balanceTotal(context, proof.balanceMsat, sessionId),
        stepMsat: quote?.msat ?? 0n,
        ...(sessionId === undefined ? {} : { sessionId }),
      })
    : undefined;
  const drawn = createDraw(context, reservation, payment, cover);
  payment.setCost = drawn.setCost;
  const meter = route.meter === undefined ? undefined : await exchange.priceRequest();
  const decision = pass(
    context,
    exchange,
    payment,
    [],
    drawCharge(context, exchange, drawn, meter),
  );
  if (decision.kind === 'pass')
    decision.draw = createBalanceDraw(context, proof, proof.balanceMsat);
  return decision;
}

/**
 * What a balance's payments total now: a token's balance, or a session's deposits (which top-ups
 * grow; undefined once it is closed).
 */
function balanceTotal(
  context: PaywallContext,
  balanceMsat: bigint,
  sessionId: string | undefined,
): () => Promise<bigint | undefined> {
  if (sessionId === undefined) return async () => balanceMsat;
  return async () => {
    const session = await context.store.getSession(sessionId);
    return session === undefined || session.closedAt !== undefined
      ? undefined
      : session.depositMsat;
  };
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
      const headers = [...proof.headers, ...reservation.receipt];
      const written = reservation.settle();
      if (written === undefined) return { kind: 'pass', headers };
      // The answer goes once its charge is written; else a 503 replaces it.
      return storeCall(context, () => written).then(
        (stored): PaywallFinal =>
          'value' in stored ? { kind: 'pass', headers } : respond(context, exchange, stored),
      );
    },
    release() {
      if (done) return [];
      done = true;
      reservation.release();
      return reservation.nothing;
    },
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
