/**
 * Paying a Lightning offer that the budget already holds (an L402 token, an MPP charge, a session's
 * deposit): the pending ledger entry first (with what rebuilds the credential), then the wallet,
 * then the proof checked, the credential saved, the spend committed and the entry settled. A payment whose outcome is unknown
 * stays pending, to be resolved by its payment hash (see `recovery.ts`).
 *
 * @internal
 */
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { preimageMatches } from '../lightning/preimage.js';
import type { LightningBackend, PaymentResult } from '../lightning/types.js';
import { saveCredential } from './credentials.js';
import type { L402Offer, LightningOffer, MppOffer } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import type { PaymentInfo } from './paying-fetch.js';
import { createResumeData, credentialHeader, isReusable } from './resume-data.js';
import type { LedgerEntry, Reservation } from './types.js';

/** What {@link payLightning} pays, and where its credential goes. */
export interface LightningPayment {
  offer: LightningOffer;
  /** The budget's hold for the offer; its id names the ledger entry. */
  reservation: Reservation;
  /** The wallet on the invoice's network. */
  wallet: LightningBackend;
  url: URL;
  /** The scope an L402 token is saved under when its caveats name none. */
  scope: string;
}

/** Wallet errors after which the payment certainly did not happen. */
const UNPAID: ReadonlySet<TollwayErrorCode> = new Set([
  'payment_failed',
  'no_route',
  'insufficient_balance',
  'invoice_expired',
  'wrong_network',
  'amount_required',
  'amount_mismatch',
  'quota_exceeded',
  'unauthorized',
  'capability_unsupported',
  'invalid_invoice',
  'unsupported_network',
  'invalid_amount',
]);

/**
 * The pending ledger entry of a payment, written before the wallet is asked: a purchase on the
 * account of its payment hash (unless another is given), with what rebuilds its credential.
 *
 * @internal
 */
export function pendingEntry(
  payment: LightningPayment,
  resume: string | undefined,
  time: number,
  account: string = payment.offer.invoice.paymentHash,
): LedgerEntry {
  const { offer, reservation, url } = payment;
  return {
    id: reservation.id,
    kind: 'purchase',
    time,
    tags: reservation.request.tags ?? {},
    url: url.href,
    origin: url.origin,
    protocol: offer.protocol,
    amount: offer.amountMsat,
    unit: 'msat',
    amountMsat: offer.amountMsat,
    feeMsat: 0n,
    reference: offer.invoice.paymentHash,
    account,
    status: 'pending',
    payee: offer.invoice.payeePubkey,
    ...(resume === undefined ? {} : { resume }),
    ...(reservation.rate !== undefined ? { rate: reservation.rate } : {}),
  };
}

/**
 * Asks the wallet to pay. A refusal after which the payment certainly did not happen fails the
 * entry and releases the hold (`payment_failed`); any other failure leaves both as they are
 * (`payment_timeout`: the outcome is unknown).
 */
async function askWallet(
  context: PayingContext,
  payment: LightningPayment,
  entry: LedgerEntry,
): Promise<PaymentResult> {
  const { paymentHash, paymentRequest } = payment.offer.invoice;
  try {
    return await payment.wallet.payInvoice({ paymentRequest, maxFeeMsat: context.maxFeeMsat });
  } catch (error) {
    if (isTollwayError(error) && UNPAID.has(error.code)) {
      await context.store.updatePayment(entry.id, { status: 'failed' });
      await context.budget?.release(payment.reservation);
      throw new TollwayError(
        'payment_failed',
        `the payment failed: ${error.code}: ${error.message}`,
        {
          cause: error,
          details: { reason: error.code, paymentHash, ledgerId: entry.id },
        },
      );
    }
    throw new TollwayError(
      'payment_timeout',
      'the outcome of the payment is unknown; it stays pending and is resolved by payment hash before paying again',
      { cause: error, details: { paymentHash, ledgerId: entry.id } },
    );
  }
}

/** What {@link payHeld} paid: the proof, and the payment as the caller is told of it. */
export interface HeldPayment {
  preimage: string;
  paid: PaymentInfo;
}

/**
 * Pays the invoice of a Lightning offer already held in the budget, its ledger entry `entry`
 * (pending until paid): records the entry, asks the wallet, checks the preimage, runs `paidBy`
 * (saving what the payment bought) and only then commits the budget and the entry. Throws
 * `payment_failed`, `payment_timeout` or `preimage_mismatch` (see `createPayingFetch`).
 *
 * @internal
 */
export async function payHeld(
  context: PayingContext,
  payment: LightningPayment,
  entry: LedgerEntry,
  paidBy: (preimage: string) => Promise<void>,
): Promise<HeldPayment> {
  const { offer, reservation, url } = payment;
  const { paymentHash } = offer.invoice;
  context.paying.add(entry.id);
  try {
    try {
      await context.store.recordPayment(entry);
    } catch (error) {
      await context.budget?.release(reservation);
      throw error;
    }
    const result = await askWallet(context, payment, entry);
    // The wallet layer checks the preimage too; the client checks again: it is the client's proof.
    const preimage = result.preimage.toLowerCase();
    if (!preimageMatches(preimage, paymentHash)) {
      throw new TollwayError(
        'preimage_mismatch',
        'the wallet returned a preimage that does not match the invoice',
        { details: { paymentHash, ledgerId: entry.id } },
      );
    }
    await paidBy(preimage);
    await context.budget?.commit(reservation, {
      amountMsat: offer.amountMsat,
      feeMsat: result.feeMsat,
    });
    await context.store.updatePayment(entry.id, {
      status: 'succeeded',
      proof: preimage,
      feeMsat: result.feeMsat,
    });
    const paid: PaymentInfo = {
      protocol: offer.protocol,
      amountMsat: offer.amountMsat,
      feeMsat: result.feeMsat,
      proof: preimage,
      paymentHash,
      origin: url.origin,
      url: url.href,
      ledgerId: entry.id,
    };
    context.emit({ type: 'paid', payment: paid });
    context.onPayment(paid);
    return { preimage, paid };
  } finally {
    context.paying.delete(entry.id);
  }
}

/**
 * Pays a Lightning offer (an L402 token, an MPP charge; already held in the budget) and returns
 * its credential. Throws as {@link payHeld}.
 *
 * @internal
 */
export async function payLightning(
  context: PayingContext,
  payment: LightningPayment & { offer: L402Offer | MppOffer },
): Promise<Acquired> {
  const { offer, url } = payment;
  const { paymentHash } = offer.invoice;
  const data = createResumeData(offer, url, payment.scope, context.maxFeeMsat);
  const reusable = isReusable(data.credential);
  const { preimage, paid } = await payHeld(
    context,
    payment,
    pendingEntry(payment, JSON.stringify(data), context.now()),
    async (preimage) => {
      if (reusable) await saveCredential(context, url.origin, data, { preimage, paymentHash });
    },
  );
  return {
    header: credentialHeader(data.credential, preimage),
    protocol: offer.protocol,
    reusable,
    account: paymentHash,
    payment: paid,
  };
}
