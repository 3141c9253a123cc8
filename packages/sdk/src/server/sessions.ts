/**
 * Payment sessions (the MPP lightning `session` intent) in the engine: an `open` credential opens
 * a session on its deposit and draws this request from it; `bearer` draws; `topUp` credits a
 * further deposit (once per payment); `close` — or the idle timeout — closes the session, takes
 * what is left off its account so no credential of the same payment can draw it, and refunds it
 * to the payer's amountless return invoice in one attempt. Draws go through the balance charge:
 * held before the request runs, settled on the outcome.
 */
import { isTollwayError } from '../errors.js';
import { decodeInvoice } from '../lightning/bolt11.js';
import { formatPaymentReceipt } from '../mpp/receipt.js';
import { type Refusal, reply, respond } from './answers.js';
import { holdUpTo } from './balance-cover.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { PaymentProof, SessionRequest } from './offers.js';
import type { SessionRecord } from './store.js';
import type { PaymentContext, PaywallDecision } from './types.js';

/** Draws a request from a session's balance, through the balance charge. */
export type DrawFromBalance = (
  proof: PaymentProof,
  payment: PaymentContext,
  sessionId: string,
) => Promise<PaywallDecision>;

/** How a closed session's refund went. */
export interface Refund {
  refundSats: bigint;
  refundStatus: NonNullable<SessionRecord['refundStatus']>;
}

/** Whatever is left of an account (see {@link holdUpTo}). */
const ALL = { minMsat: 1n, maxMsat: 2n ** 63n };

/** Sessions listed per sweep for the idle timeout. */
const IDLE_BATCH = 20;

/** `2026-03-15T12:05:00Z`: RFC 3339 in whole seconds, UTC. */
function timestamp(time: number): string {
  return `${new Date(time).toISOString().slice(0, 19)}Z`;
}

function closedRefusal(): Refusal {
  return {
    status: 401,
    code: 'session_closed',
    detail: 'This session is closed; open a new one.',
  };
}

/** Runs what a session credential asks (see the module comment). */
export async function sessionCharge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  session: SessionRequest,
  draw: DrawFromBalance,
): Promise<PaywallDecision> {
  if (session.action === 'topUp') return topUp(context, exchange, session);
  if (session.action === 'close') {
    const refund = await closeSession(context, session.id);
    if (refund === undefined) {
      return challenge(context, exchange, {
        status: 401,
        code: 'session_not_found',
        detail: 'No session of this id was opened here.',
      });
    }
    const receipt = formatPaymentReceipt({
      method: 'lightning',
      reference: session.id,
      status: 'success',
      timestamp: timestamp(exchange.now),
      refundSats: refund.refundSats,
      refundStatus: refund.refundStatus,
    });
    return reply(
      context,
      exchange,
      {
        status: 'closed',
        refundSats: Number(refund.refundSats),
        refundStatus: refund.refundStatus,
      },
      [['Payment-Receipt', receipt]],
    );
  }
  if (session.action === 'open') {
    const refused = await open(context, exchange, session);
    if (refused !== undefined) return refused;
  }
  const record = await context.store.getSession(session.id);
  if (record === undefined) {
    return challenge(context, exchange, {
      status: 401,
      code: 'session_not_found',
      detail: 'No session of this id was opened here; open one with the deposit.',
    });
  }
  if (record.closedAt !== undefined) return challenge(context, exchange, closedRefusal());
  const { store, recorder } = context;
  recorder.run(() => store.touchSession(session.id, exchange.now), 'noting a session request');
  const { session: _session, ...rest } = proof;
  return draw(
    { ...rest, balanceMsat: record.depositMsat, sessionDeposit: true },
    { protocol: 'mpp', tokenId: session.id, service: exchange.route.service },
    session.id,
  );
}

/** Opens the session (once: a repeated open draws from the session it opened). */
async function open(
  context: PaywallContext,
  exchange: Exchange,
  session: Extract<SessionRequest, { action: 'open' }>,
): Promise<PaywallDecision | undefined> {
  const problem = returnInvoiceProblem(session, exchange.now);
  if (problem !== undefined) {
    return respond(context, exchange, {
      status: 400,
      code: 'invalid_return_invoice',
      detail: `The return invoice cannot receive the refund: ${problem}.`,
    });
  }
  await context.store.openSession({
    id: session.id,
    service: exchange.route.service,
    depositMsat: session.depositMsat,
    returnInvoice: session.returnInvoice,
    idleTimeoutMs: session.idleTimeoutMs,
    openedAt: exchange.now,
    lastUsedAt: exchange.now,
  });
  return undefined;
}

/** Why a return invoice cannot receive a refund, or undefined when it can. */
function returnInvoiceProblem(
  session: Extract<SessionRequest, { action: 'open' }>,
  now: number,
): string | undefined {
  try {
    const invoice = decodeInvoice(session.returnInvoice);
    const deposit = decodeInvoice(session.depositInvoice);
    if (invoice.amountMsat !== undefined) return 'it names an amount';
    if (invoice.network !== deposit.network) return `it is for ${invoice.network}`;
    if (invoice.expiresAt <= now + session.idleTimeoutMs) {
      return 'it expires before the session could close idle';
    }
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.message : 'it is not a BOLT11 invoice';
  }
}

/**
 * Credits a top-up, once per payment, with what its payment has left: the top-up's invoice is also
 * the 402's L402 balance, so what its token already drew is not credited, and what is credited is
 * taken off the token. Answers 200 `{"status":"ok"}`.
 */
async function topUp(
  context: PaywallContext,
  exchange: Exchange,
  session: Extract<SessionRequest, { action: 'topUp' }>,
): Promise<PaywallDecision> {
  const { store } = context;
  const key = `mpp-session-topup:${session.paymentHash}`;
  const forever = Number.MAX_SAFE_INTEGER;
  const claimed = await store.claim(key, { expiresAt: forever, heldUntil: forever }, exchange.now);
  if (claimed) {
    const refused = await creditTopUp(context, session);
    if (refused !== undefined) {
      await store.releaseClaim(key);
      return challenge(context, exchange, refused);
    }
    await store.confirmClaim(key);
  }
  // A top-up presented again is accepted and credits nothing (the claim is spent).
  const receipt = formatPaymentReceipt({
    status: 'success',
    method: 'lightning',
    timestamp: timestamp(exchange.now),
    reference: session.id,
  });
  return reply(context, exchange, { status: 'ok' }, [['Payment-Receipt', receipt]]);
}

/** Moves what the top-up's payment has left into the session; why not, when it cannot. */
async function creditTopUp(
  context: PaywallContext,
  session: Extract<SessionRequest, { action: 'topUp' }>,
): Promise<Refusal | undefined> {
  const { store } = context;
  await context.leases?.giveBack(session.paymentHash);
  const held = await holdUpTo(context, session.paymentHash, session.depositMsat, ALL);
  if (held === undefined) {
    return {
      status: 402,
      code: 'balance_exhausted',
      detail: "This top-up's payment was spent already; pay a new one.",
    };
  }
  if (await store.creditSession(session.id, held.amountMsat)) {
    await store.settleHold(held.id, { uses: 0, amountMsat: held.amountMsat });
    return undefined;
  }
  await store.releaseHold(held.id);
  const record = await store.getSession(session.id);
  return record === undefined
    ? { status: 401, code: 'session_not_found', detail: 'No session of this id was opened here.' }
    : closedRefusal();
}

/**
 * Closes an open session: takes what is left off its account, then refunds it (whole sats, one
 * attempt) to the return invoice and records how that went. Undefined when no such session was
 * opened; for one closed before, how its refund went.
 */
async function closeSession(context: PaywallContext, id: string): Promise<Refund | undefined> {
  const { store, now } = context;
  const closed = await store.closeSession(id, now());
  if (closed === undefined) {
    const existing = await store.getSession(id);
    if (existing === undefined) return undefined;
    return {
      refundSats: (existing.refundMsat ?? 0n) / 1000n,
      refundStatus: existing.refundStatus ?? 'failed',
    };
  }
  const unspent = await takeWhatIsLeft(context, closed);
  const refundSats = unspent / 1000n;
  let refundStatus: Refund['refundStatus'] = 'skipped';
  if (refundSats > 0n) {
    try {
      await context.lightning.payInvoice({
        paymentRequest: closed.returnInvoice,
        amountMsat: refundSats * 1000n,
      });
      refundStatus = 'succeeded';
    } catch (error) {
      context.logger.warn({ err: error, session: id }, 'a session refund failed');
      refundStatus = 'failed';
    }
  }
  await store.recordRefund(id, { refundMsat: refundSats * 1000n, refundStatus });
  return { refundSats, refundStatus };
}

/**
 * Charges the session's account what nobody spent or holds, so that no credential of the same
 * payment (the L402 token, the MPP charge) can draw it once it is refunded: the unspent amount.
 */
async function takeWhatIsLeft(context: PaywallContext, session: SessionRecord): Promise<bigint> {
  const held = await holdUpTo(context, session.id, session.depositMsat, ALL);
  if (held === undefined) return 0n;
  await context.store.settleHold(held.id, { uses: 0, amountMsat: held.amountMsat });
  return held.amountMsat;
}

/**
 * Closes the sessions idle past their timeout, a batch at a time (every instance may run it:
 * closing is atomic, so each session is refunded once).
 */
export async function closeIdleSessions(context: PaywallContext): Promise<void> {
  const idle = await context.store.listIdleSessions(context.now(), IDLE_BATCH);
  for (const session of idle) await closeSession(context, session.id);
}
