/**
 * Closing the MPP lightning sessions the paying fetch opened: one `close` credential per session
 * (sent to the URL that opened it, with its method), the server's answer read for the refund it
 * paid to the return invoice, and a `refund` entry in the ledger. Of several processes closing
 * one session, the one that moves it from `open` to `closing` in the store sends the close. A
 * session the server closed on its own (idle past its timeout) is closed here the same way when a
 * call learns of it: the server answers a second close with how its own went.
 *
 * @internal
 */
import { isRecord } from '../internal/is-record.js';
import { challengeBody } from './http-exchange.js';
import { dueForClose, noteUse } from './idle-close.js';
import type { PayingContext } from './paying-context.js';
import { bearerHeader, closeHeader, refusedSession } from './session-payment.js';
import type { LedgerEntry, StoredSession } from './types.js';

/** What closing one session gave back. */
export interface ClosedSession {
  id: string;
  origin: string;
  /** The refund the server paid, msat (whole sats; 0 when nothing was left or it failed). */
  refundMsat: bigint;
  /** As the server said: `succeeded`, `failed`, `skipped` (nothing was left); `unknown` otherwise. */
  refundStatus: string;
  /** An x402 batch-settlement channel's refund, in its token's base units. */
  refund?: { amount: bigint; unit: string };
}

/** Which sessions {@link closeSessions} closes. */
export interface CloseSessionsOptions {
  /** Only the sessions of this origin. */
  origin?: string;
  /** Only the sessions this process has not used for this long, ms (others it never used). */
  idleForMs?: number;
  /** Only the sessions this process used. */
  usedHere?: boolean;
}

/** The refund the answer to a close says was paid (`{status: "closed", refundSats, refundStatus}`). */
async function refundOf(response: Response): Promise<{ refundMsat: bigint; status: string }> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    return { refundMsat: 0n, status: 'unknown' };
  }
  if (!isRecord(body) || response.status !== 200 || body.status !== 'closed') {
    return { refundMsat: 0n, status: 'unknown' };
  }
  const sats = body.refundSats;
  const status = typeof body.refundStatus === 'string' ? body.refundStatus : 'unknown';
  const refundMsat =
    typeof sats === 'number' && Number.isSafeInteger(sats) && sats >= 0 ? BigInt(sats) * 1000n : 0n;
  return { refundMsat: status === 'succeeded' ? refundMsat : 0n, status };
}

/** The ledger's refund entry of a closed session. */
function refundEntry(
  context: PayingContext,
  session: StoredSession,
  refund: { refundMsat: bigint; status: string },
): LedgerEntry {
  return {
    id: globalThis.crypto.randomUUID(),
    kind: 'refund',
    time: context.now(),
    tags: { ...context.budget?.tags, ...context.tags },
    url: session.url,
    origin: session.origin,
    protocol: 'mpp-session',
    amount: refund.refundMsat,
    unit: 'msat',
    amountMsat: refund.refundMsat,
    feeMsat: 0n,
    reference: session.id,
    account: session.id,
    status: refund.status === 'succeeded' ? 'succeeded' : 'failed',
  };
}

/**
 * Gives the refund of a session (or x402 channel: `account`) back to the budget, from its latest
 * deposit back: its windows count what it cost, not what it held.
 *
 * @internal
 */
export async function giveBackToBudget(
  context: PayingContext,
  account: string,
  refundMsat: bigint,
): Promise<void> {
  let left = refundMsat;
  const deposits = await context.store.list({ account, kind: 'purchase', status: 'succeeded' });
  for (const deposit of deposits) {
    if (left <= 0n || context.budget === undefined) return;
    left -= await context.budget.refund(deposit.id, left);
  }
}

/** Closes one session this process moved to `closing`; undefined when the close went unanswered. */
async function closeOne(
  context: PayingContext,
  session: StoredSession,
): Promise<ClosedSession | undefined> {
  const saved = await context.store.findCredential(
    session.origin,
    new URL(session.url).pathname,
    context.now(),
  );
  if (saved?.header.value === bearerHeader(session).value) {
    await context.store.deleteCredential(saved.origin, saved.scope);
  }
  const header = closeHeader(session);
  let response: Response;
  try {
    response = await fetch(session.url, {
      method: session.method,
      headers: { [header.name]: header.value },
    });
  } catch {
    // Unanswered: open again, for the next close (or the server's idle timeout) to refund it.
    await context.store.updateSession(session.id, { state: 'open' }, 'closing');
    return undefined;
  }
  const refund = await refundOf(response);
  if (refund.status !== 'skipped') {
    await context.store.recordPayment(refundEntry(context, session, refund));
  }
  await giveBackToBudget(context, session.id, refund.refundMsat);
  await context.store.updateSession(
    session.id,
    {
      state: 'closed',
      closedAt: context.now(),
      refundMsat: refund.refundMsat,
      refundStatus: refund.status,
    },
    'closing',
  );
  context.sessionsUsed.delete(session.id);
  const closed = {
    id: session.id,
    origin: session.origin,
    refundMsat: refund.refundMsat,
    refundStatus: refund.status,
  };
  context.emit({ type: 'session-closed', session: closed });
  return closed;
}

/**
 * Whether a refusal says the session is closed: Tollway's `session_closed` code, or the
 * draft's `…/session-closed` problem type.
 */
async function saysSessionClosed(response: Response): Promise<boolean> {
  let problem: unknown;
  try {
    problem = JSON.parse((await challengeBody(response)) ?? '');
  } catch {
    return false;
  }
  if (!isRecord(problem)) return false;
  const { code, type } = problem;
  return (
    code === 'session_closed' || (typeof type === 'string' && type.endsWith('/session-closed'))
  );
}

/**
 * When `response` refuses the credential `refused` of an open session because the server closed
 * the session (idle past its timeout), closes it here too: its `close`, answered with how the
 * server's own close went, records the refund the server paid and gives it back to the budget.
 * The call then pays a new session rather than topping up a closed one.
 *
 * @internal
 */
export async function closeRefusedSession(
  context: PayingContext,
  origin: string,
  refused: string,
  response: Response,
): Promise<void> {
  if (response.status !== 401 || !(await saysSessionClosed(response))) return;
  const session = await refusedSession(context, origin, refused);
  if (session === undefined) return;
  if (!(await context.store.updateSession(session.id, { state: 'closing' }, 'open'))) return;
  await closeOne(context, session);
}

/**
 * Closes the open sessions (of `origin`; used here, or idle here for `idleForMs`) and collects
 * their refunds. Returns what each closed session gave back.
 *
 * @internal
 */
export async function closeSessions(
  context: PayingContext,
  options: CloseSessionsOptions = {},
): Promise<ClosedSession[]> {
  const open = await context.store.listSessions({
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    states: ['open'],
  });
  const due = dueForClose(context, open, context.sessionsUsed, options);
  const closed: ClosedSession[] = [];
  for (const session of due) {
    if (!(await context.store.updateSession(session.id, { state: 'closing' }, 'open'))) continue;
    const done = await closeOne(context, session);
    if (done !== undefined) closed.push(done);
  }
  return closed;
}

/**
 * Notes that this process used session `id` now; with `sessions.idleCloseMs`, closes it once it
 * has gone that long without another use (a timer that does not keep the process alive).
 *
 * @internal
 */
export function noteSessionUse(context: PayingContext, id: string): void {
  noteUse(context, context.sessionsUsed, id, (options) => closeSessions(context, options));
}
