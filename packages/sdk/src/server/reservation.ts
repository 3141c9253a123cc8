/**
 * Reserve → run → settle: what a paid request holds in the store while it runs — a single-use
 * proof's claim, one use, or its price out of a prepaid balance — atomically across every instance
 * on the store. The request's outcome settles it (charged) or releases it (nothing charged, and
 * the credential works again). A use or a balance is charged before the answer goes (a hold
 * settled, or a draw from a lease written: balance-leases.ts), so a crash never leaves an answer
 * uncharged; a charge the store refuses is retried while the hold lasts (retry-charge.ts), and
 * the answer is refused (503) when it could not be written. A single-use proof's claim is
 * confirmed, and releases are written, in the background: the counters stay exact meanwhile, as
 * a claim or a hold counts until it is confirmed, settled or released (or expires).
 */
import { TollwayError } from '../errors.js';
import { minBigint } from '../internal/bigint.js';
import { randomId } from '../internal/crypto.js';
import { formatMsat } from '../money.js';
import { credentialRefusal, type Refusal } from './answers.js';
import type { BalanceLeases } from './balance-leases.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { InflightRef } from './inflight.js';
import type { CredentialRefusal, PaymentProof } from './offers.js';
import type { Quote } from './pricing.js';
import type { RequestTrace, TracedAmount } from './request-trace.js';
import { retryCharge } from './retry-charge.js';
import type { Hold, HoldCharge } from './store.js';
import type { PaymentContext } from './types.js';

/** Response headers that tell what a paid answer cost and what the credential has left. */
export const RECEIPT_HEADERS = {
  charged: 'Tollway-Charged',
  remaining: 'Tollway-Remaining',
  /** On a metered answer, at its start: what is held for it (the cost comes at its end). */
  reserved: 'Tollway-Reserved',
} as const;

/** A paid request's reservation; see the module comment. */
export interface Reservation {
  /** The receipt of the answer once charged (what it cost, what is left). */
  readonly receipt: Array<[string, string]>;
  /** The receipt of an answer that was not charged. */
  readonly nothing: Array<[string, string]>;
  /** What is held of a balance, msat (0 when the reservation holds no balance). */
  readonly heldMsat: bigint;
  /**
   * Charges what is held — of a balance, `amountMsat` when given (at most what is held; the rest
   * goes back). Once; ignored after `release`. A promise when the charge is written before the
   * answer may go (a use, a balance): it resolves once the store has it, and rejects
   * (`store_error`) when it could not be written; undefined when it is written in the background
   * (a single-use proof's claim, which counts meanwhile).
   */
  settle(amountMsat?: bigint): Promise<void> | undefined;
  /** Releases what is held: nothing is charged. Once; ignored after `settle`. */
  release(): void;
}

/**
 * A reservation, or why the credential cannot pay for this request now: with `headers`, the
 * refusal is answered with them (the credential's protocol worded it) instead of fresh offers.
 */
export type Reserved =
  | { ok: true; reservation: Reservation }
  | { ok: false; refusal: Refusal; headers?: Array<[string, string]> };

/**
 * Reserves what `proof` pays this request with (`quote` is its price when it has one), and notes
 * on `payment` what the credential has left once it is charged. With `partial`, a balance that
 * has less left than the price holds what it has left.
 */
export async function reserve(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  quote: Quote | undefined,
  payment: PaymentContext,
  partial = false,
): Promise<Reserved> {
  const { store, inflight } = context;
  const heldUntil = exchange.now + inflight.ttlMs;
  const refs: InflightRef[] = [];
  // What the account has spent and holds, this hold included.
  let spent = 0n;
  if (proof.singleUse !== undefined) {
    const { key, expiresAt } = proof.singleUse;
    const claimed = await store.claim(key, { expiresAt, heldUntil }, exchange.now);
    if (!claimed) {
      const detail =
        'This single-use credential was already used, or is in use by a request still running.';
      return { ok: false, refusal: { status: 401, code: 'credential_replayed', detail } };
    }
    refs.push({ kind: 'claim', key });
  }
  let hold = holdOf(proof, quote, heldUntil);
  const { leases } = context;
  if (hold !== undefined && refs.length === 0 && leases !== undefined && leasable(proof, hold)) {
    return reserveFromLease(leases, exchange.trace, proof, quote, hold, payment);
  }
  if (hold !== undefined) {
    let held: Awaited<ReturnType<typeof store.hold>>;
    try {
      held = await store.hold(hold, exchange.now);
      const left = hold.balance === undefined ? 0n : hold.balance.initialMsat - held.spentMsat;
      if (!held.ok && partial && hold.balance !== undefined && left > 0n) {
        // `partial`: what is left, when that is less than the price (the draw holds more later).
        hold = { ...hold, balance: { ...hold.balance, amountMsat: left } };
        held = await store.hold(hold, exchange.now);
      }
    } catch (error) {
      releaseRefs(context, refs);
      throw error;
    }
    if (!held.ok) {
      releaseRefs(context, refs);
      const { draws } = proof;
      if (draws !== undefined && held.spentMsat + draws.amount > draws.ceiling) {
        return uncovered(draws, held.spentMsat);
      }
      return { ok: false, refusal: exhausted(proof, quote, held.spentMsat) };
    }
    refs.push({ kind: 'hold', id: hold.id });
    spent = held.spentMsat;
    if (proof.draws?.fund !== undefined) {
      const refused = await fundDraw(context, refs, proof.draws.fund);
      if (refused !== undefined) return refused;
    }
    if (proof.maxUses !== undefined) payment.remainingUses = proof.maxUses - held.uses;
    if (proof.balanceMsat !== undefined) {
      payment.remainingBalanceMsat = proof.balanceMsat - held.spentMsat;
    }
  }
  for (const ref of refs) inflight.track(ref);
  const held = heldOf(proof, hold);
  const receipt = receiptOf(proof, hold, held, payment, spent);
  const trace = exchange.trace;
  return {
    ok: true,
    reservation: createReservation(context, refs, { hold, held, receipt, trace }),
  };
}

/** What a request holds, as its receipt states it: of a balance, one use, or the token's price. */
function heldOf(proof: PaymentProof, hold: Hold | undefined): TracedAmount | undefined {
  if (hold?.balance !== undefined) {
    return { amount: hold.balance.amountMsat, unit: proof.draws?.unit ?? 'msat' };
  }
  if (hold?.uses !== undefined) return { amount: 1n, unit: 'uses' };
  if (proof.amountMsat !== undefined) return { amount: proof.amountMsat, unit: 'msat' };
  return undefined;
}

/**
 * Whether the hold is a price out of a prepaid balance and nothing else: drawn from this
 * instance's lease of the balance (balance-leases.ts, when `balanceLeases` is on) instead of a
 * hold of its own.
 */
function leasable(proof: PaymentProof, hold: Hold): boolean {
  return (
    proof.draws === undefined &&
    proof.sessionDeposit === undefined &&
    hold.uses === undefined &&
    hold.balance !== undefined &&
    hold.balance.amountMsat > 0n
  );
}

/** Reserves a price out of the lease of a balance; see {@link leasable}. */
async function reserveFromLease(
  leases: BalanceLeases,
  trace: RequestTrace | undefined,
  proof: PaymentProof,
  quote: Quote | undefined,
  hold: Hold,
  payment: PaymentContext,
): Promise<Reserved> {
  const { amountMsat, initialMsat } = hold.balance ?? { amountMsat: 0n, initialMsat: 0n };
  const drawn = await leases.draw(hold.tokenId, amountMsat, initialMsat);
  if (!drawn.ok) return { ok: false, refusal: exhausted(proof, quote, drawn.spentMsat) };
  payment.remainingBalanceMsat = drawn.remainingMsat;
  const held = { amount: amountMsat, unit: 'msat' };
  const receipt = receiptOf(proof, hold, held, payment, 0n);
  let done = false;
  return {
    ok: true,
    reservation: {
      receipt,
      nothing: [[RECEIPT_HEADERS.charged, '0']],
      heldMsat: amountMsat,
      settle(charged = amountMsat) {
        if (done) return undefined;
        done = true;
        trace?.charged({ amount: charged, unit: 'msat' });
        return drawn.settle(charged);
      },
      release() {
        if (done) return;
        done = true;
        trace?.released(held);
        drawn.release();
      },
    },
  };
}

/** What `proof` holds of a token for one request (one use, or the price from a balance). */
function holdOf(
  proof: PaymentProof,
  quote: Quote | undefined,
  expiresAt: number,
): Hold | undefined {
  const { draws } = proof;
  if (draws !== undefined) {
    // Held only within what the credential covers, in the same atomic check as the deposit: a
    // draw refused never counts, even for a moment, in what another one is told was drawn.
    return {
      id: randomId(),
      tokenId: draws.account,
      balance: { amountMsat: draws.amount, initialMsat: minBigint(draws.ceiling, draws.deposit) },
      expiresAt,
    };
  }
  if (proof.maxUses === undefined && proof.balanceMsat === undefined) return undefined;
  return {
    id: randomId(),
    tokenId: proof.account ?? proof.tokenId,
    ...(proof.maxUses === undefined ? {} : { uses: { count: 1, max: proof.maxUses } }),
    ...(proof.balanceMsat === undefined
      ? {}
      : { balance: { amountMsat: quote?.msat ?? 0n, initialMsat: proof.balanceMsat } }),
    expiresAt,
  };
}

/**
 * The refusal of a draw its credential does not cover (used again, or older than the last used;
 * `drawn`: what the account drew and holds besides it), as the credential words it.
 */
async function uncovered(
  draws: NonNullable<PaymentProof['draws']>,
  drawn: bigint,
): Promise<Extract<Reserved, { ok: false }>> {
  const said = await draws.uncovered(drawn);
  return { ok: false, refusal: credentialRefusal(said), headers: said.headers };
}

function exhausted(proof: PaymentProof, quote: Quote | undefined, spentMsat: bigint): Refusal {
  const { draws } = proof;
  if (draws !== undefined) {
    const left = draws.deposit > spentMsat ? draws.deposit - spentMsat : 0n;
    return {
      status: 402,
      code: 'balance_exhausted',
      detail: `This request costs ${draws.amount} ${draws.unit}; the channel has ${left} left: deposit more.`,
    };
  }
  if (proof.balanceMsat === undefined) {
    return {
      status: 402,
      code: 'uses_exhausted',
      detail: `This token has used all of its ${proof.maxUses} requests (or the rest are in use by requests still running).`,
    };
  }
  const left = proof.balanceMsat > spentMsat ? proof.balanceMsat - spentMsat : 0n;
  return {
    status: 402,
    code: 'balance_exhausted',
    detail: `This request costs ${formatMsat(quote?.msat ?? 0n)}; the token has ${formatMsat(left)} left.`,
  };
}

/** The receipt headers for a charged answer (none for what a settlement reports itself). */
function receiptOf(
  proof: PaymentProof,
  hold: Hold | undefined,
  held: TracedAmount | undefined,
  payment: PaymentContext,
  spent: bigint,
): Array<[string, string]> {
  const { charged, remaining } = RECEIPT_HEADERS;
  if (held === undefined) return [];
  const receipt: Array<[string, string]> = [[charged, `${held.amount} ${held.unit}`]];
  if (proof.draws !== undefined) {
    receipt.push([remaining, `${proof.draws.deposit - spent} ${held.unit}`]);
  } else if (hold?.balance !== undefined) {
    receipt.push([remaining, `${payment.remainingBalanceMsat ?? 0n} msat`]);
  } else if (hold?.uses !== undefined) {
    receipt.push([remaining, `${payment.remainingUses ?? 0} uses`]);
  }
  return receipt;
}

/**
 * Releases claims and holds taken before the reservation failed (in the background), no longer
 * renewed.
 */
function releaseRefs(context: PaywallContext, refs: readonly InflightRef[]): void {
  for (const ref of refs) {
    context.inflight.untrack(ref);
    context.recorder.run(async () => {
      if (ref.kind === 'claim') await context.store.releaseClaim(ref.key);
      else await context.store.releaseHold(ref.id);
    }, 'releasing a reservation');
  }
}

/**
 * Pays into the deposit a draw is made on (an x402 top-up), the draw held and renewed meanwhile: a
 * refusal, or a failure, releases it. A refusal is answered as the credential words it; one with
 * no headers of its own gets the route's offers again, unless the payment could not be tried (503).
 */
async function fundDraw(
  context: PaywallContext,
  refs: readonly InflightRef[],
  fund: () => Promise<CredentialRefusal | undefined>,
): Promise<Extract<Reserved, { ok: false }> | undefined> {
  for (const ref of refs) context.inflight.track(ref);
  let refused: CredentialRefusal | undefined;
  try {
    refused = await fund();
  } catch (error) {
    releaseRefs(context, refs);
    throw error;
  }
  if (refused === undefined) return undefined;
  releaseRefs(context, refs);
  const refusal = credentialRefusal(refused);
  const { headers } = refused;
  return refused.status === 503 || headers.length > 0
    ? { ok: false, refusal, headers }
    : { ok: false, refusal };
}

/** What a reservation holds, and what it tells: the receipt, and the request's spans. */
interface Holding {
  hold: Hold | undefined;
  held: TracedAmount | undefined;
  receipt: Array<[string, string]>;
  trace: RequestTrace | undefined;
}

function createReservation(
  context: PaywallContext,
  refs: readonly InflightRef[],
  { hold, held, receipt, trace }: Holding,
): Reservation {
  const { store, recorder, inflight, logger } = context;
  const heldMsat = hold?.balance?.amountMsat ?? 0n;
  let done = false;
  return {
    receipt,
    nothing: [[RECEIPT_HEADERS.charged, '0']],
    heldMsat,
    settle(amountMsat = heldMsat) {
      if (done) return undefined;
      done = true;
      if (trace !== undefined && held !== undefined) {
        trace.charged(hold?.balance === undefined ? held : { amount: amountMsat, unit: held.unit });
      }
      const charge = { uses: hold?.uses?.count ?? 0, amountMsat };
      if (refs.length > 0 && refs.every((ref) => ref.kind === 'hold')) {
        // Uses and balances: charged before the answer goes, as a lease's draw is.
        return Promise.all(refs.map((ref) => chargeHold(context, ref.id, charge))).then(
          () => undefined,
        );
      }
      for (const ref of refs) {
        recorder.run(async () => {
          try {
            if (ref.kind === 'claim') {
              await retryCharge(() => store.confirmClaim(ref.key), inflight.ttlMs);
            } else if (
              !(await retryCharge(() => store.settleHold(ref.id, charge), inflight.ttlMs))
            ) {
              logger.warn({ hold: ref.id }, 'a hold expired before its request was charged');
            }
          } finally {
            inflight.untrack(ref);
          }
        }, 'charging a reservation');
      }
      return undefined;
    },
    release() {
      if (done) return;
      done = true;
      if (held !== undefined) trace?.released(held);
      for (const ref of refs) {
        recorder.run(async () => {
          try {
            if (ref.kind === 'claim') await store.releaseClaim(ref.key);
            else await store.releaseHold(ref.id);
          } finally {
            inflight.untrack(ref);
          }
        }, 'releasing a reservation');
      }
    },
  };
}

/**
 * Charges the hold `id` of a request that is about to be answered: sent again while the store
 * refuses it and the hold lasts (renewed meanwhile, as its request still runs). Resolves once
 * charged; rejects (`store_error`) when it was not: the hold had expired (its instance stalled),
 * or the store stayed down. A retry that finds the hold gone finds it charged by an attempt that
 * failed to say so: nothing else settles or releases it while it is renewed.
 */
async function chargeHold(context: PaywallContext, id: string, charge: HoldCharge): Promise<void> {
  const { store, inflight, logger } = context;
  let attempts = 0;
  try {
    const settled = await retryCharge(() => {
      attempts++;
      return store.settleHold(id, charge);
    }, inflight.ttlMs);
    if (!settled && attempts === 1) {
      logger.warn({ hold: id }, 'a hold expired before its request was charged');
      throw new TollwayError('store_error', 'The hold expired before the request was charged.');
    }
  } catch (error) {
    logger.warn({ err: error, hold: id }, 'a request could not be charged; its answer is refused');
    throw error;
  } finally {
    inflight.untrack({ kind: 'hold', id });
  }
}
