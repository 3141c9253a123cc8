/**
 * What a call was actually charged, in the ledger, as the server's receipt says rather than what
 * the client expected: a draw (of a balance, a session, a use of a token, a single-use credential
 * spent) or a release (nothing charged). A single-use credential the server released is kept for
 * the next call to its path instead of paying again. A metered event stream tells its cost in a
 * comment line at its end: the stream is handed to the caller unchanged, and read as the caller
 * reads it; its draw is written when it ends. So is an x402 `upto` payment's settlement, which
 * comes after a metered event stream's body (`: payment-response …`): its ledger entry and the
 * budget then count what was settled instead of what was authorised.
 *
 * @internal
 */
import type { Tags } from './call-tags.js';
import { credentialReach, keepSingleUse, saveBoughtCredential } from './credentials.js';
import { responseWithBody } from './http-exchange.js';
import type { Acquired, PayingContext } from './paying-context.js';
import {
  createStreamReceiptReader,
  type Receipt,
  type ReceiptAmount,
  readReceipt,
} from './receipts.js';
import type { LedgerEntry } from './types.js';

/** The call whose answer is read. */
export interface ChargedCall {
  url: URL;
  /** The credential the answer was sent with. */
  credential: Acquired;
  tags: () => Tags;
}

/** What the ledger records of a call's charge. */
export interface Charge {
  /** The receipt's amount (`0` when released); for an unsettled draw, what was reserved. */
  amount: ReceiptAmount;
  /** The cost is not told yet: a metered answer that said only what it reserved. */
  unsettled: boolean;
}

/** The purchase in the ledger that paid for `credential` (its payment's, else its account's). */
async function purchaseOf(
  context: PayingContext,
  credential: Acquired,
): Promise<LedgerEntry | undefined> {
  if (credential.payment !== undefined) {
    return context.store.findPayment(credential.payment.ledgerId);
  }
  if (credential.account === undefined) return undefined;
  const [purchase] = await context.store.list({
    account: credential.account,
    kind: 'purchase',
    limit: 1,
  });
  return purchase;
}

/**
 * What a charge is worth in msat: msat as told; a use, the price the token paid per request; an
 * x402 amount, at the msat per token unit its purchase was counted at (rounded up: an `upto`
 * payment charged less than it authorised is worth less), else what the purchase cost.
 */
async function msatOf(
  context: PayingContext,
  credential: Acquired,
  amount: ReceiptAmount,
): Promise<bigint> {
  if (amount.unit === 'msat' || amount.amount === 0n) return amount.amount;
  if (amount.unit === 'uses') {
    return amount.amount * (credentialReach(context, credential.header)?.priceMsat ?? 0n);
  }
  const purchase = await purchaseOf(context, credential);
  if (purchase === undefined) return credential.payment?.amountMsat ?? 0n;
  if (purchase.unit !== amount.unit || purchase.amount === 0n) return purchase.amountMsat;
  return (purchase.amountMsat * amount.amount + purchase.amount - 1n) / purchase.amount;
}

/**
 * Writes the draw (or release) of a call.
 *
 * @internal
 */
export async function recordCharge(
  context: PayingContext,
  call: ChargedCall,
  charge: Charge,
): Promise<void> {
  const { credential, url } = call;
  const { amount } = charge;
  const released = amount.amount === 0n && !charge.unsettled;
  const entry: LedgerEntry = {
    id: globalThis.crypto.randomUUID(),
    kind: released ? 'release' : 'draw',
    time: context.now(),
    tags: call.tags(),
    url: url.href,
    origin: url.origin,
    protocol: credential.protocol,
    amount: amount.amount,
    unit: amount.unit === '' ? 'msat' : amount.unit,
    amountMsat: await msatOf(context, credential, amount),
    feeMsat: 0n,
    reference: credential.account ?? '',
    status: charge.unsettled ? 'pending' : 'succeeded',
    ...(credential.account === undefined ? {} : { account: credential.account }),
  };
  await context.store.recordPayment(entry);
}

/** True when the answer is an event stream. */
function isEventStream(response: Response): boolean {
  return (response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * `response` with the same body, read as the caller reads it for its receipt comment; `ended`
 * is awaited once the body ended, failed or was cancelled, before the caller sees the end.
 */
function readingReceipt(
  response: Response,
  ended: (receipt: Receipt | undefined) => Promise<void>,
): Response {
  const source = (response.body as ReadableStream<Uint8Array>).getReader();
  const reader = createStreamReceiptReader();
  let done = false;
  const end = async (): Promise<void> => {
    if (done) return;
    done = true;
    await ended(reader.receipt());
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: Awaited<ReturnType<typeof source.read>>;
      try {
        next = await source.read();
      } catch (error) {
        await end();
        controller.error(error);
        return;
      }
      if (next.done) {
        await end();
        controller.close();
        return;
      }
      reader.write(next.value);
      controller.enqueue(next.value);
    },
    async cancel(reason) {
      await end();
      await source.cancel(reason);
    },
  });
  return responseWithBody(response, body);
}

/**
 * `response`, read for the settlement of the call's x402 payment when it is an event stream that
 * did not say in its head how the payment settled (an `upto` payment of a metered stream, settled
 * after the body): the receipt comments at its end give the settlement and the draw.
 */
function settledAtEnd(context: PayingContext, call: ChargedCall, response: Response): Response {
  const ledgerId = call.credential.payment?.ledgerId;
  const settledInHead =
    response.headers.has('payment-response') || response.headers.has('x-payment-response');
  if (ledgerId === undefined || settledInHead || response.body === null) return response;
  if (call.credential.protocol !== 'x402' || !isEventStream(response)) return response;
  return readingReceipt(response, async (told) => {
    if (told?.charged !== undefined) {
      await recordCharge(context, call, { amount: told.charged, unsettled: false });
    }
    if (told?.paymentResponse === undefined) return;
    const { noteSettlementValue } = await import('./x402-payment.js');
    await noteSettlementValue(context, ledgerId, told.paymentResponse);
  });
}

/**
 * The call, drawing on the balance its x402 payment bought when the answer hands over that
 * balance's credential (`Tollway-Credential`): the credential is saved for later calls, and the
 * payment's ledger entry moves to the balance's account.
 */
async function withBoughtBalance(
  context: PayingContext,
  call: ChargedCall,
  response: Response,
): Promise<ChargedCall> {
  const handed = response.headers.get('tollway-credential');
  const { credential } = call;
  if (handed === null || credential.protocol !== 'x402') return call;
  const account = await saveBoughtCredential(context, call.url.origin, handed);
  if (account === undefined) return call;
  if (credential.payment !== undefined) {
    await context.store.updatePayment(credential.payment.ledgerId, { account });
  }
  return { ...call, credential: { ...credential, account } };
}

/**
 * Records what the answer to a call sent with a credential was charged, from its receipt (none
 * recorded when it has none: a time-bound token, a server that does not tell), and keeps a
 * single-use credential the server released. Returns the response to hand the caller: itself, or
 * — for a metered event stream — the same stream, read for its receipt comment as it goes.
 *
 * @internal
 */
export async function noteCharge(
  context: PayingContext,
  paid: ChargedCall,
  response: Response,
): Promise<Response> {
  const call = await withBoughtBalance(context, paid, response);
  const receipt = readReceipt(response.headers);
  if (receipt === undefined) return settledAtEnd(context, call, response);
  const { charged, reservedMsat } = receipt;
  if (charged === undefined) {
    const reserved = { amount: reservedMsat ?? 0n, unit: 'msat' };
    if (!isEventStream(response) || response.body === null) {
      await recordCharge(context, call, { amount: reserved, unsettled: true });
      return response;
    }
    return readingReceipt(response, async (told) => {
      const amount = told?.charged ?? reserved;
      await recordCharge(context, call, { amount, unsettled: told?.charged === undefined });
    });
  }
  if (charged.amount === 0n && !call.credential.reusable) {
    await keepSingleUse(context, call.url, call.credential);
  }
  await recordCharge(context, call, { amount: charged, unsettled: false });
  return response;
}
