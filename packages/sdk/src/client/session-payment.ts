/**
 * MPP lightning sessions, the paying side (draft-lightning-session): open one on a session offer
 * — pay its deposit and hand the server an amountless invoice of the wallet for the refund — then
 * draw on it with `bearer` credentials from every call and process sharing the store; top it up
 * when a call no longer fits. Closing is sessions-close.ts. A session's deposits, draws and refund
 * are ledger entries on the account of its id (the opening deposit's payment hash).
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import type { LightningBackend } from '../lightning/types.js';
import type { PaymentChallenge } from '../mpp/challenge.js';
import { formatPaymentCredential, type PaymentPayload } from '../mpp/credential.js';
import { type OutgoingRequest, send } from './http-exchange.js';
import { type LightningPayment, payHeld, pendingEntry } from './lightning-payment.js';
import type { MppSessionOffer } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import { createResumeData, credentialHeader, type ResumeData } from './resume-data.js';
import type { Reservation, StoredSession } from './types.js';

/** How long the return invoice can receive the refund: 30 days (a session is closed before). */
const RETURN_INVOICE_SECONDS = 30 * 86_400;

/** A session offer the budget holds, and the call it is paid for. */
export interface SessionPayment extends LightningPayment {
  offer: MppSessionOffer;
  reservation: Reservation;
  wallet: LightningBackend;
  /** The call's method: the session's close is sent to its URL with it. */
  method: string;
}

/** The `Authorization` header of a session credential. */
function sessionHeader(challenge: PaymentChallenge, payload: PaymentPayload) {
  return { name: 'Authorization', value: formatPaymentCredential({ challenge, payload }) };
}

/**
 * The `bearer` credential of a session: what every call after the opening one sends.
 *
 * @internal
 */
export function bearerHeader(session: StoredSession): { name: string; value: string } {
  return sessionHeader(session.challenge, {
    action: 'bearer',
    sessionId: session.id,
    preimage: session.preimage,
  });
}

/**
 * The `close` credential of a session.
 *
 * @internal
 */
export function closeHeader(session: StoredSession): { name: string; value: string } {
  return sessionHeader(session.challenge, {
    action: 'close',
    sessionId: session.id,
    preimage: session.preimage,
  });
}

/**
 * Opens a session: asks the wallet for the amountless return invoice, pays the deposit, saves the
 * session and its bearer credential (for every later call to the origin's scope), and returns the
 * `open` credential this call sends.
 *
 * @internal
 */
export async function openSession(
  context: PayingContext,
  payment: SessionPayment,
): Promise<Acquired> {
  const { offer, url, wallet } = payment;
  const id = offer.invoice.paymentHash;
  const returnInvoice = await wallet.createInvoice({
    amountMsat: 0n,
    memo: `refund of session ${id.slice(0, 16)} at ${url.host}`,
    expirySeconds: RETURN_INVOICE_SECONDS,
  });
  const resume: ResumeData = {
    ...createResumeData(offer, url, payment.scope, context.maxFeeMsat),
    credential: {
      protocol: 'mpp-session',
      challenge: offer.challenge,
      returnInvoice: returnInvoice.paymentRequest,
      returnInvoiceExpiresAt: context.now() + RETURN_INVOICE_SECONDS * 1000,
      idleTimeoutMs: (offer.idleTimeoutSeconds ?? 0) * 1000,
      method: payment.method,
    },
  };
  let session: StoredSession | undefined;
  const { preimage, paid } = await payHeld(
    context,
    payment,
    pendingEntry(payment, JSON.stringify(resume), context.now()),
    async (proof) => {
      session = sessionOf(context, { id, origin: url.origin, url: url.href }, resume, proof);
      await context.store.saveSession(session);
      await context.store.saveCredential({
        origin: url.origin,
        scope: payment.scope,
        protocol: 'mpp-session',
        header: bearerHeader(session),
        account: id,
        createdAt: context.now(),
      });
    },
  );
  return {
    header: sessionHeader(offer.challenge, {
      action: 'open',
      preimage,
      returnInvoice: returnInvoice.paymentRequest,
    }),
    protocol: 'mpp-session',
    reusable: true,
    account: id,
    payment: paid,
  };
}

/** The session a deposit of `resume` opens, paid with `preimage`. */
function sessionOf(
  context: PayingContext,
  where: { id: string; origin: string; url: string },
  resume: ResumeData,
  preimage: string,
): StoredSession {
  const opened = resume.credential as Extract<
    ResumeData['credential'],
    { protocol: 'mpp-session' }
  >;
  return {
    ...where,
    scope: resume.scope,
    method: opened.method,
    challenge: opened.challenge,
    preimage,
    returnInvoice: opened.returnInvoice,
    returnInvoiceExpiresAt: opened.returnInvoiceExpiresAt,
    idleTimeoutMs: opened.idleTimeoutMs,
    openedAt: context.now(),
    state: 'open',
  };
}

/**
 * Saves the session of an opening deposit found paid after a crash (its credential is saved
 * beside it: the `open` credential, since the server may not have seen it).
 *
 * @internal
 */
export async function saveRecoveredSession(
  context: PayingContext,
  entry: { reference: string; origin: string; url: string },
  resume: ResumeData,
  preimage: string,
): Promise<void> {
  const where = { id: entry.reference, origin: entry.origin, url: entry.url };
  await context.store.saveSession(sessionOf(context, where, resume, preimage));
}

/**
 * The open session of this origin whose credential (bearer, or the `open` one a recovered session
 * is drawn with) the server just refused, if the refused credential is one: for want of funds
 * (a top-up follows), or because the server closed it (sessions-close.ts).
 *
 * @internal
 */
export async function refusedSession(
  context: PayingContext,
  origin: string,
  refused: string | undefined,
): Promise<StoredSession | undefined> {
  if (refused === undefined) return undefined;
  const open = await context.store.listSessions({ origin, states: ['open'] });
  return open.find(
    (session) => bearerHeader(session).value === refused || openHeader(session).value === refused,
  );
}

/** The `open` credential of a session. */
function openHeader(session: StoredSession): { name: string; value: string } {
  return sessionHeader(session.challenge, {
    action: 'open',
    preimage: session.preimage,
    returnInvoice: session.returnInvoice,
  });
}

/** Sends a top-up credential with `request`: the status the server answered. */
async function sendTopUp(
  request: OutgoingRequest,
  body: Uint8Array | undefined,
  header: { name: string; value: string },
): Promise<number> {
  const answer = await send(request, body, header);
  await answer.body?.cancel();
  return answer.status;
}

/**
 * Tops up `session` with the deposit of a fresh session offer: pays it (a purchase on the
 * session's account, pending until the server answered its `topUp` credential, sent with the
 * call's request, so that a crash in between leaves it to recovery), and returns the session's
 * bearer credential for the call to be sent again.
 *
 * @internal
 */
export async function topUpSession(
  context: PayingContext,
  payment: SessionPayment & { session: StoredSession; request: OutgoingRequest; body?: Uint8Array },
): Promise<Acquired> {
  const { offer, session } = payment;
  const resume: ResumeData = {
    ...createResumeData(offer, payment.url, payment.scope, context.maxFeeMsat),
    credential: {
      protocol: 'mpp-session-top-up',
      challenge: offer.challenge,
      sessionId: session.id,
    },
  };
  let status = 0;
  const { paid } = await payHeld(
    context,
    payment,
    pendingEntry(payment, JSON.stringify(resume), context.now(), session.id),
    async (preimage) => {
      const header = credentialHeader(resume.credential, preimage);
      status = await sendTopUp(payment.request, payment.body, header);
    },
  );
  if (status !== 200) {
    throw new TollwayError(
      'payment_failed',
      `the server refused the top-up of session ${session.id} (status ${status}); the deposit was paid`,
      { details: { sessionId: session.id, ledgerId: paid.ledgerId, status } },
    );
  }
  return {
    header: bearerHeader(session),
    protocol: 'mpp-session',
    reusable: true,
    account: session.id,
    payment: paid,
  };
}

/**
 * Sends the `topUp` credential of a top-up found paid after a crash to its session's URL (the
 * server credits a payment once, however often it comes). False when the server could not be
 * reached: the payment then stays pending, for a later recovery to send it again. A session no
 * longer open here, or a top-up the server refuses (its session closed, its challenge expired),
 * is told to `onEvent` as `session-top-up-failed`; the payment is recorded all the same.
 *
 * @internal
 */
export async function creditRecoveredTopUp(
  context: PayingContext,
  credential: Extract<ResumeData['credential'], { protocol: 'mpp-session-top-up' }>,
  preimage: string,
): Promise<boolean> {
  const { sessionId } = credential;
  const session = await context.store.getSession(sessionId);
  const failed = (url: string, why: string): true => {
    const error = new TollwayError('payment_failed', `the top-up of session ${sessionId} ${why}`, {
      details: { sessionId },
    });
    context.emit({ type: 'session-top-up-failed', url, sessionId, error });
    return true;
  };
  if (session?.state !== 'open') return failed(session?.url ?? '', 'found no open session');
  const request: OutgoingRequest = {
    url: new URL(session.url),
    method: session.method,
    init: { method: session.method },
  };
  let status: number;
  try {
    status = await sendTopUp(request, undefined, credentialHeader(credential, preimage));
  } catch {
    return false;
  }
  if (status !== 200) return failed(session.url, `was refused (status ${status})`);
  context.emit({ type: 'session-topped-up', url: session.url, sessionId });
  return true;
}
