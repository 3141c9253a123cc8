/**
 * What a paid request needs I/O for before it passes: strict mode's look-up, the price of a
 * request priced by a function, a single-use proof's claim, a settlement (x402), and the use and
 * balance counters of a token.
 */

import { isTollwayError } from '../errors.js';
import type { InvoiceStatus } from '../lightning/types.js';
import { formatMsat } from '../money.js';
import { pass, passFree, type Refusal, respond, unavailable } from './answers.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import { type Exchange, isQuote } from './exchange.js';
import type { PaymentProof } from './offers.js';
import type { PaymentContext, PaywallCharge, PaywallDecision, PaywallFinal } from './types.js';

/** True when `proof` cannot pass without I/O on `exchange`. */
export function needsCharge(context: PaywallContext, exchange: Exchange, proof: PaymentProof) {
  return (
    (context.strict && proof.protocol !== 'x402') ||
    typeof exchange.route.price === 'function' ||
    proof.singleUse !== undefined ||
    proof.settle !== undefined ||
    proof.maxUses !== undefined ||
    proof.balanceMsat !== undefined
  );
}

/** Runs the charge of a checked credential (see the module comment): a pass or a refusal. */
export async function charge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  payment: PaymentContext,
): Promise<PaywallDecision> {
  const { route } = exchange;
  if (context.strict && proof.protocol !== 'x402') {
    const refusal = await confirmSettled(context, proof.paymentHash);
    if (refusal !== undefined) {
      return refusal.status === 401
        ? challenge(context, exchange, refusal)
        : respond(context, exchange, refusal);
    }
  }
  // A request its price function makes free stays free with a credential attached: it must not
  // use up a single-use proof, count against a use limit or draw on a balance (e.g. MCP
  // `tools/list` sent with the token a client bought for `tools/call`).
  if (typeof route.price === 'function') {
    const quote = await exchange.quote();
    if (!isQuote(quote)) return respond(context, exchange, quote);
    if (quote.msat === 0n) return passFree(context, exchange, 'free_route');
  }
  if (proof.singleUse !== undefined) {
    const refused = await claimSingleUse(context, exchange, proof, proof.singleUse);
    if (refused !== undefined) return refused;
  }
  if (proof.settle !== undefined) return settlePayment(context, exchange, proof, payment);
  if (proof.maxUses !== undefined) {
    const { maxUses } = proof;
    const used = await storeCall(context, () =>
      context.store.consumeUses(proof.tokenId, 1, maxUses),
    );
    if (!('value' in used)) return respond(context, exchange, used);
    if (!used.value.ok) {
      return challenge(context, exchange, {
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
    if (!isQuote(quote)) return respond(context, exchange, quote);
    const spent = await storeCall(context, () =>
      context.store.spendBalance(proof.tokenId, quote.msat, balanceMsat),
    );
    if (!('value' in spent)) return respond(context, exchange, spent);
    if (!spent.value.ok) {
      return challenge(context, exchange, {
        status: 402,
        code: 'balance_exhausted',
        detail: `This request costs ${formatMsat(quote.msat)}; the token has ${formatMsat(spent.value.remainingMsat)} left.`,
      });
    }
    payment.remainingBalanceMsat = spent.value.remainingMsat;
  }
  context.recorder.firstSight(proof, route);
  return pass(context, exchange, payment, proof.headers);
}

/** Claims a single-use proof once, after checking it paid the request's price; a refusal if not. */
async function claimSingleUse(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  singleUse: NonNullable<PaymentProof['singleUse']>,
): Promise<PaywallDecision | undefined> {
  const quote = await exchange.quote();
  if (!isQuote(quote)) return respond(context, exchange, quote);
  if (proof.amountMsat !== undefined && proof.amountMsat < quote.msat) {
    return challenge(context, exchange, {
      status: 401,
      code: 'underpaid',
      detail: `This request costs ${formatMsat(quote.msat)}; the credential paid less.`,
    });
  }
  const claimed = await storeCall(context, () =>
    context.store.claimOnce(singleUse.key, singleUse.expiresAt),
  );
  if (!('value' in claimed)) return respond(context, exchange, claimed);
  if (claimed.value === true) return undefined;
  return challenge(context, exchange, {
    status: 401,
    code: 'credential_replayed',
    detail: 'This single-use credential was already used.',
  });
}

/**
 * A payment that moves money (x402): settled once the handler commits to a successful status
 * when the caller reports the outcome and the proof allows it, else now, before the handler.
 */
async function settlePayment(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  payment: PaymentContext,
): Promise<PaywallDecision> {
  if (proof.settleAfter === true && exchange.request.reportsOutcome === true) {
    const settleOnCommit: PaywallCharge = {
      // A handler that failed (4xx, 5xx) is not paid for: the authorization is left unsettled.
      commit: (status) =>
        status >= 400 ? { kind: 'pass', headers: [] } : settle(context, exchange, proof),
      release: () => undefined,
    };
    return pass(context, exchange, payment, proof.headers, settleOnCommit);
  }
  const final = await settle(context, exchange, proof);
  if (final.kind === 'respond') return final;
  const decision = pass(context, exchange, payment, [...proof.headers, ...final.headers]);
  if (decision.kind === 'pass' && final.settlement !== undefined) {
    decision.settlement = final.settlement;
  }
  return decision;
}

/** Settles `proof` and records it: the headers for the answer, or the 402 that replaces it. */
async function settle(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
): Promise<PaywallFinal> {
  const outcome = await (proof.settle as NonNullable<PaymentProof['settle']>)();
  const report =
    outcome.data === undefined ? undefined : { kind: proof.protocol, data: outcome.data };
  if (!outcome.ok) {
    const decision = await challenge(
      context,
      exchange,
      { status: 402, code: outcome.code, detail: outcome.message },
      { headers: outcome.headers, ...(report === undefined ? {} : { settlement: report }) },
    );
    if (decision.kind === 'respond') return decision;
    // The request turned free meanwhile: nothing to settle, nothing to replace.
    return { kind: 'pass', headers: outcome.headers };
  }
  context.recorder.settlement({
    ...outcome.settlement,
    tokenId: proof.tokenId,
    service: exchange.route.service,
    protocol: proof.protocol,
    settledAt: exchange.now,
  });
  return {
    kind: 'pass',
    headers: outcome.headers,
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
