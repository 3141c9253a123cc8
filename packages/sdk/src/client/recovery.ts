/**
 * Crash recovery of the paying fetch: the pending Lightning payments this client wrote are
 * resolved by payment hash before anything is paid again. Found paid: the spend is committed and
 * the credential rebuilt and saved (a session's opening deposit: the session too; a session's
 * top-up is sent to the server, which credits it once). Found failed, or never sent and old
 * enough: the hold is released. Still in flight: left pending.
 *
 * @internal
 */
import { preimageMatches } from '../lightning/preimage.js';
import { saveCredential } from './credentials.js';
import type { PayingContext } from './paying-context.js';
import type { ResumeSummary } from './paying-fetch.js';
import { protocolOf, type ResumeData, readResumeData } from './resume-data.js';
import { DEFAULT_STALE_HOLD_MS } from './store-common.js';
import type { LedgerEntry, Reservation } from './types.js';
import { lookupPayment } from './wallets.js';

/** What resolving one pending entry found. */
export type Settled = 'succeeded' | 'failed' | 'pending' | 'unknown';

/** The budget reservation a pending entry was paid under (its id is the entry's). */
function reservationOf(entry: LedgerEntry, data: ResumeData): Reservation {
  const fee = BigInt(data.maxFeeMsat);
  return {
    id: entry.id,
    request: {
      origin: entry.origin,
      url: entry.url,
      protocol: entry.protocol,
      amountMsat: entry.amountMsat,
      maxFeeMsat: fee,
      tags: entry.tags,
      ...(entry.payee !== undefined ? { payee: entry.payee } : {}),
    },
    heldMsat: entry.amountMsat + fee,
    createdAt: entry.time,
  };
}

/** Releases the hold of a payment that did not happen, and fails its entry. */
async function release(context: PayingContext, entry: LedgerEntry, data: ResumeData) {
  await context.budget?.release(reservationOf(entry, data));
  await context.store.updatePayment(entry.id, { status: 'failed' });
  context.emit({ type: 'released', ledgerId: entry.id, paymentHash: entry.reference });
}

/**
 * Commits a payment found paid with `preimage`, and saves its credential (a session top-up's is
 * sent to the server instead: false, and nothing committed, when the server could not be reached).
 */
async function recover(
  context: PayingContext,
  entry: LedgerEntry,
  data: ResumeData,
  paid: { preimage: string; feeMsat: bigint },
): Promise<boolean> {
  const { preimage, feeMsat } = paid;
  const { credential } = data;
  if (credential.protocol === 'mpp-session-top-up') {
    const { creditRecoveredTopUp } = await import('./session-payment.js');
    if (!(await creditRecoveredTopUp(context, credential, preimage))) return false;
  } else {
    if (credential.protocol === 'mpp-session') {
      const { saveRecoveredSession } = await import('./session-payment.js');
      await saveRecoveredSession(context, entry, data, preimage);
    }
    await saveCredential(context, entry.origin, data, { preimage, paymentHash: entry.reference });
  }
  await context.budget?.commit(reservationOf(entry, data), {
    amountMsat: entry.amountMsat,
    feeMsat,
  });
  await context.store.updatePayment(entry.id, { status: 'succeeded', proof: preimage, feeMsat });
  context.emit({
    type: 'recovered',
    payment: {
      protocol: protocolOf(credential),
      amountMsat: entry.amountMsat,
      feeMsat,
      proof: preimage,
      paymentHash: entry.reference,
      origin: entry.origin,
      url: entry.url,
      ledgerId: entry.id,
    },
  });
  return true;
}

/** Resolves one pending entry this client wrote by its payment hash. */
async function settlePending(
  context: PayingContext,
  entry: LedgerEntry,
  data: ResumeData,
): Promise<Settled> {
  const status = await lookupPayment(context, entry.reference);
  if (status === 'error' || status?.state === 'pending') return 'pending';
  // Unknown to every wallet: never sent (a crash before the wallet was asked), or another process
  // is about to send it; released once it is old enough that no process can still be sending it.
  if (status === undefined && context.now() - entry.time < DEFAULT_STALE_HOLD_MS) return 'unknown';
  if (status === undefined || status.state === 'failed') {
    await release(context, entry, data);
    return 'failed';
  }
  const preimage = status.preimage?.toLowerCase() ?? '';
  if (!preimageMatches(preimage, entry.reference)) return 'pending';
  const recovered = await recover(context, entry, data, {
    preimage,
    feeMsat: status.feeMsat ?? 0n,
  });
  return recovered ? 'succeeded' : 'pending';
}

/**
 * Resolves the pending entries this client wrote (of one origin, or all), except those this
 * process is paying right now. Entries of other clients (no resume data) are left alone.
 *
 * @internal
 */
export async function settlePendingPayments(
  context: PayingContext,
  origin?: string,
): Promise<Settled[]> {
  const outcomes: Settled[] = [];
  for (const entry of await context.store.pendingPayments()) {
    const data = readResumeData(entry);
    if (data === undefined || context.paying.has(entry.id)) continue;
    if (origin !== undefined && entry.origin !== origin) continue;
    outcomes.push(await settlePending(context, entry, data));
  }
  return outcomes;
}

/**
 * Resolves every pending entry this client wrote and counts the outcomes.
 *
 * @internal
 */
export async function resumePayments(context: PayingContext): Promise<ResumeSummary> {
  const outcomes = await settlePendingPayments(context);
  const count = (state: Settled) => outcomes.filter((o) => o === state).length;
  return {
    recovered: count('succeeded'),
    released: count('failed'),
    unresolved: count('pending') + count('unknown'),
  };
}

/**
 * {@link resumePayments}, run once before the first request (again after a failure).
 *
 * @internal
 */
export function ensureResumed(context: PayingContext): Promise<ResumeSummary> {
  context.resumed ??= resumePayments(context).catch((error: unknown) => {
    context.resumed = undefined;
    throw error;
  });
  return context.resumed;
}
