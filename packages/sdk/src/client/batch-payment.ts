/**
 * x402 `batch-settlement` channels, the paying side: the first call to a receiver deposits into a
 * channel (a purchase on the channel's account, sized by the agent's expected calls within its
 * budget), and every call after it sends a voucher that draws the call's price from the deposit
 * (a draw on that account) with no chain round trip. The channel's record is kept in the client
 * store, so that every call and process of the agent draws on the same channel; the calls of one
 * paying fetch on one channel sign one at a time (each voucher covers all the previous ones).
 * Closing asks for the refund of what is left (channels-close.ts).
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import type {
  BatchChannelStorage,
  BatchDepositAsk,
  BatchPayer,
  BatchPaymentSigned,
} from '../x402/batch-payer.js';
import type { Tags } from './call-tags.js';
import { type CallTrace, heldAttributes } from './call-trace.js';
import { channelStorage } from './channel-storage.js';
import { noteChannelUse } from './channels-close.js';
import { recordCharge } from './charges.js';
import type { X402Offer } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import type { PayingFetchX402Options, PaymentInfo } from './paying-fetch.js';
import { readReceipt } from './receipts.js';
import { chooseOffer } from './select.js';
import { reserveSpend } from './spend.js';
import type { Reservation } from './types.js';
import {
  recordX402Purchase,
  type X402Spend,
  x402PaymentInfo,
  x402Spend,
  x402Unit,
} from './x402-payment.js';

/** A batch-settlement payment a call sends: what reading its answer needs. */
export interface BatchSent {
  payer: BatchPayer;
  signed: BatchPaymentSigned;
  storage: BatchChannelStorage;
  unit: string;
  /** The price of the call, token base units (what the draw is when the server does not say). */
  price: bigint;
  /** The ledger entry of the deposit this payment makes, if it makes one. */
  depositId?: string;
  /** Lets the next call of this paying fetch on the channel sign. */
  release(): void;
}

/**
 * Waits for the calls of this paying fetch that signed on channel `id` before to be answered;
 * returns what lets the next one sign.
 */
async function lockChannel(context: PayingContext, id: string): Promise<() => void> {
  const before = context.channelLocks.get(id) ?? Promise.resolve();
  let release = (): void => {};
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const chained = before.then(() => mine);
  context.channelLocks.set(id, chained);
  await before;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release();
    if (context.channelLocks.get(id) === chained) context.channelLocks.delete(id);
  };
}

/** A deposit the budget holds. */
interface HeldDeposit {
  amount: bigint;
  reservation: Reservation;
  request: X402Spend;
}

/**
 * Holds a deposit in the budget: the agent's expected calls at the call's price (x402's own choice
 * without them), at least what this call needs; only that least when the budget refuses more.
 */
async function holdDeposit(
  context: PayingContext,
  offer: X402Offer,
  target: { url: URL; tags: Tags },
  ask: BatchDepositAsk,
): Promise<HeldDeposit> {
  const x402 = context.x402 as PayingFetchX402Options;
  const { expectedCalls } = context.sessions;
  let wanted =
    expectedCalls === undefined
      ? ask.suggested
      : ask.price * BigInt(Math.max(1, Math.ceil(expectedCalls)));
  if (wanted < ask.minimum) wanted = ask.minimum;
  const sizes = wanted > ask.minimum ? [wanted, ask.minimum] : [ask.minimum];
  const { offer: amount, reservation } = await chooseOffer(sizes, async (size) => {
    const request = { ...(await x402Spend(x402, offer, target, size)), buys: 'balance' as const };
    return { reservation: await reserveSpend(context, request), request };
  });
  return { amount, ...reservation };
}

/** Records the deposit a signed payment makes (pending until the server answers) and commits it. */
async function recordDeposit(
  context: PayingContext,
  held: HeldDeposit,
  where: { offer: X402Offer; url: URL; channelId: string },
): Promise<PaymentInfo> {
  const { reservation, request } = held;
  const { offer, url, channelId } = where;
  await recordX402Purchase(context, held, {
    offer,
    url,
    amount: held.amount,
    unit: x402Unit(offer),
    reference: channelId,
  });
  // A signed deposit can be settled by whoever holds it: it counts as spent.
  await context.budget?.commit(reservation, { amountMsat: request.amountMsat, feeMsat: 0n });
  return x402PaymentInfo(held, url, channelId, 'batch-settlement');
}

/**
 * Pays a `batch-settlement` offer: a voucher on the agent's channel with its receiver, with a
 * deposit first when the channel has none or too little left (held in the budget, recorded as a
 * purchase on the channel's account).
 *
 * @internal
 */
export async function payBatch(
  context: PayingContext,
  params: { offer: X402Offer; url: URL; tags: Tags; trace?: CallTrace | undefined },
): Promise<Acquired> {
  const { offer, url, trace } = params;
  const payer = context.x402?.wallet.batch;
  if (payer === undefined) {
    throw new TollwayError('capability_unsupported', 'the EVM wallet has no rpcUrl');
  }
  const release = await lockChannel(context, payer.channelId(offer.requirement));
  const unit = x402Unit(offer);
  const storage = channelStorage(context, { origin: url.origin, url: url.href, unit });
  let held: HeldDeposit | undefined;
  try {
    const deposit = async (ask: BatchDepositAsk): Promise<bigint> => {
      const target = { url, tags: params.tags };
      held = await (trace === undefined
        ? holdDeposit(context, offer, target, ask)
        : trace.step('tollway.budget', async (span) => {
            const hold = await holdDeposit(context, offer, target, ask);
            span.setAttributes(heldAttributes(hold.reservation));
            return hold;
          }));
      return held.amount;
    };
    const signed = await payer.sign(offer.requirement, storage, deposit);
    const sent = { payer, signed, storage, unit, price: offer.amount, release };
    const acquired = {
      header: signed.header,
      protocol: 'x402' as const,
      reusable: false,
      account: signed.channelId,
    };
    if (held === undefined) {
      context.emit({ type: 'voucher', url: url.href, channelId: signed.channelId });
      return { ...acquired, batch: sent };
    }
    const payment = await recordDeposit(context, held, {
      offer,
      url,
      channelId: signed.channelId,
    });
    context.emit({ type: 'paid', payment });
    context.onPayment(payment);
    return { ...acquired, payment, batch: { ...sent, depositId: payment.ledgerId } };
  } catch (error) {
    release();
    if (held !== undefined) await context.budget?.release(held.reservation);
    throw error;
  }
}

/**
 * Reads the answer to a batch-settlement payment: the channel's record kept (or corrected by a
 * corrective 402), the deposit settled or failed, and what the call drew recorded (the server's
 * receipt, else the `chargedAmount` of its `PAYMENT-RESPONSE`); then lets the next call sign.
 * True when the payment's deposit was answered with a corrective 402, which a server sends before
 * it settles anything: the deposit was not made, and the call may sign again from the corrected
 * record. Its budget stays counted, as for any signed payment refused (it could still be settled).
 *
 * @internal
 */
export async function noteBatchAnswer(
  context: PayingContext,
  call: { url: URL; credential: Acquired; tags: () => Tags },
  response: Response,
): Promise<boolean> {
  const sent = call.credential.batch as BatchSent;
  try {
    const told = await sent.payer.answered(sent.signed, sent.storage, {
      status: response.status,
      header: (name) => response.headers.get(name),
    });
    const settled = told.settled?.success === true;
    if (sent.depositId !== undefined && (settled || response.status === 402)) {
      const transaction = told.settled?.transaction ?? '';
      await context.store.updatePayment(sent.depositId, {
        status: settled ? 'succeeded' : 'failed',
        ...(transaction === '' ? {} : { proof: transaction }),
      });
    }
    if (!settled || response.status === 402) {
      return sent.depositId !== undefined && response.status === 402 && told.recovered;
    }
    const receipt = readReceipt(response.headers)?.charged;
    const amount =
      receipt !== undefined && (receipt.unit === sent.unit || receipt.amount === 0n)
        ? receipt.amount
        : (told.settled?.charged ?? sent.price);
    await recordCharge(context, call, { amount: { amount, unit: sent.unit }, unsettled: false });
    noteChannelUse(context, sent.signed.channelId);
    return false;
  } finally {
    sent.release();
  }
}
