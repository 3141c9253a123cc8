/**
 * Paying an x402 offer with the EVM wallet: the token amount converted to msat for the budget,
 * the authorization signed and counted as spent, and the ledger entry settled from what the server
 * answers (`PAYMENT-RESPONSE`, or the tool result of x402 over MCP).
 *
 * @internal
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { type UsdPerBtc, usdToMsat } from '../money.js';
import type { SignedX402Payment } from '../x402/evm-wallet.js';
import { parsePaymentResponseHeader } from '../x402/payment-response.js';
import { parseXPaymentResponseHeader } from '../x402/v1.js';
import type { Tags } from './call-tags.js';
import { type CallTrace, heldAttributes } from './call-trace.js';
import type { Offer, X402Offer } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import type { PayingFetchX402Options, PaymentInfo } from './paying-fetch.js';
import { chooseX402Offer } from './select.js';
import { reserveSpend } from './spend.js';
import type { Reservation, SpendRequest } from './types.js';

/** How a server says an x402 payment settled. */
export interface X402Settlement {
  success: boolean;
  transaction: string;
  /** The token amount settled, when the server says (an `upto` payment settles what was used). */
  amount?: bigint;
}

/**
 * The x402 offer to pay, of those the EVM wallet pays, when x402 is preferred and configured: see
 * {@link chooseX402Offer}. `batch`: whether a `batch-settlement` offer may be paid (not over MCP).
 *
 * @internal
 */
export async function x402Candidate(
  context: PayingContext,
  offers: readonly Offer[],
  batch = true,
): Promise<X402Offer | undefined> {
  if (context.x402 === undefined || !context.preferences.includes('x402')) return undefined;
  const { wallet } = context.x402;
  const payable = offers.filter(
    (offer): offer is X402Offer =>
      offer.protocol === 'x402' &&
      wallet.refusal(offer) === undefined &&
      (batch || offer.scheme !== 'batch-settlement'),
  );
  const open = new Set<X402Offer>();
  for (const offer of payable) {
    if (offer.scheme !== 'batch-settlement' || wallet.batch === undefined) continue;
    const channel = await context.store.getChannel(wallet.batch.channelId(offer.requirement));
    const record = channel?.state === 'open' ? channel.record : undefined;
    // Open with something left: a record x402's client rebuilt from the chain may hold nothing.
    const left = BigInt(record?.balance ?? '0') - BigInt(record?.chargedCumulativeAmount ?? '0');
    if (left > 0n) open.add(offer);
  }
  return chooseX402Offer(payable, {
    expectedCalls: context.sessions.expectedCalls,
    hasChannel: (offer) => open.has(offer),
  });
}

/**
 * A spend request in msat for an amount of tokens, converted at `original.rate`.
 *
 * @internal
 */
export type X402Spend = SpendRequest & {
  original: { amount: bigint; unit: string; rate: string };
};

/**
 * The spend request of an x402 offer: its token amount (or `amount` of its token: a deposit) as
 * USD, converted to msat (rounded up).
 *
 * @internal
 */
export async function x402Spend(
  x402: PayingFetchX402Options,
  offer: X402Offer,
  target: { url: URL; tags: Tags },
  amount = offer.amount,
): Promise<X402Spend> {
  const { url, tags } = target;
  let rate: UsdPerBtc;
  try {
    rate = await x402.rates.usdPerBtc();
  } catch (cause) {
    throw new TollwayError('price_unavailable', 'the rate source did not answer', { cause });
  }
  const scale = 10n ** BigInt(x402.decimals ?? 6);
  const microUsd = (amount * 1_000_000n + scale - 1n) / scale;
  const rateText = `usd_per_btc=${rate.numerator}${rate.denominator === 1n ? '' : `/${rate.denominator}`}`;
  return {
    origin: url.origin,
    url: url.href,
    protocol: 'x402',
    payee: offer.payTo,
    amountMsat: usdToMsat(microUsd, rate, 'ceil'),
    maxFeeMsat: 0n,
    original: { amount, unit: x402Unit(offer), rate: rateText },
    tags,
  };
}

/**
 * The unit of an x402 offer's token in the ledger: `<network>/erc20:<address>`.
 *
 * @internal
 */
export function x402Unit(offer: X402Offer): string {
  return `${offer.network}/erc20:${offer.asset.toLowerCase()}`;
}

/** A signed x402 payment's budget hold and what it spends. */
interface HeldX402 {
  reservation: Reservation;
  request: X402Spend;
}

/**
 * Records a signed x402 payment as a pending purchase: its ledger reference and account are the
 * authorization's nonce, or the channel a deposit goes to.
 *
 * @internal
 */
export async function recordX402Purchase(
  context: PayingContext,
  held: HeldX402,
  purchase: { offer: X402Offer; url: URL; amount: bigint; unit: string; reference: string },
): Promise<void> {
  const { reservation, request } = held;
  const { offer, url, reference } = purchase;
  await context.store.recordPayment({
    id: reservation.id,
    kind: 'purchase',
    time: context.now(),
    tags: reservation.request.tags ?? {},
    url: url.href,
    origin: url.origin,
    protocol: 'x402',
    amount: purchase.amount,
    unit: purchase.unit,
    amountMsat: request.amountMsat,
    feeMsat: 0n,
    rate: request.original.rate,
    reference,
    account: reference,
    status: 'pending',
    payee: offer.payTo,
  });
}

/**
 * What the paying fetch reports of a signed x402 payment, its proof the ledger reference.
 *
 * @internal
 */
export function x402PaymentInfo(
  held: HeldX402,
  url: URL,
  reference: string,
  scheme: NonNullable<PaymentInfo['x402Scheme']>,
): PaymentInfo {
  return {
    protocol: 'x402',
    amountMsat: held.request.amountMsat,
    feeMsat: 0n,
    proof: reference,
    paymentHash: reference,
    origin: url.origin,
    url: url.href,
    ledgerId: held.reservation.id,
    x402Scheme: scheme,
  };
}

/**
 * Signs an x402 payment of `offer` within the budget. A signed authorization can be settled by
 * whoever holds it until it expires, so it counts as spent once signed: the hold is committed
 * at once, and the ledger entry stays pending until the server's answer tells how it settled.
 *
 * @internal
 */
export async function payX402(
  context: PayingContext,
  params: { offer: X402Offer; url: URL; tags: Tags; trace?: CallTrace | undefined },
): Promise<Acquired> {
  const { offer, url, trace } = params;
  const x402 = context.x402 as PayingFetchX402Options;
  const request = await x402Spend(x402, offer, params);
  const reservation = await (trace === undefined
    ? reserveSpend(context, request)
    : trace.step('tollway.budget', async (span) => {
        const held = await reserveSpend(context, request);
        span.setAttributes(heldAttributes(held));
        return held;
      }));
  let signed: SignedX402Payment;
  try {
    signed = await x402.wallet.sign(offer, context.now());
    await recordX402Purchase(
      context,
      { reservation, request },
      { offer, url, amount: offer.amount, unit: signed.unit, reference: signed.nonce },
    );
  } catch (error) {
    await context.budget?.release(reservation);
    throw error;
  }
  await context.budget?.commit(reservation, { amountMsat: request.amountMsat, feeMsat: 0n });
  // The wallet signs `exact` (EIP-3009) and `upto` (Permit2) alone; channels pay in batch-payment.ts.
  const scheme = offer.scheme === 'upto' ? 'upto' : 'exact';
  const payment = x402PaymentInfo({ reservation, request }, url, signed.nonce, scheme);
  context.emit({ type: 'paid', payment });
  context.onPayment(payment);
  return {
    header: signed.header,
    protocol: 'x402',
    reusable: false,
    account: signed.nonce,
    payment,
  };
}

/**
 * Resolves an x402 ledger entry: succeeded with the server's transaction, or failed when the
 * server says settlement failed or asks for payment again (`refused`); left pending when it says
 * nothing.
 *
 * @internal
 */
export async function recordSettlement(
  context: PayingContext,
  ledgerId: string,
  settled: X402Settlement | undefined,
  refused: boolean,
): Promise<void> {
  if (settled?.success === true) {
    const lower = await settledBelow(context, ledgerId, settled.amount);
    await context.store.updatePayment(ledgerId, {
      status: 'succeeded',
      proof: settled.transaction,
      ...(lower === undefined ? {} : { amount: lower.amount, amountMsat: lower.amountMsat }),
    });
    // The budget counted what was authorised: it gets back what was not settled.
    if (lower !== undefined) await context.budget?.refund(ledgerId, lower.givenBackMsat);
  } else if (settled !== undefined || refused) {
    await context.store.updatePayment(ledgerId, { status: 'failed' });
  }
}

/**
 * What a payment settled for less than it authorised (x402 `upto`) is worth: the settled token
 * amount, its msat at the rate the authorisation was counted at (rounded up), and the msat given
 * back. Undefined when it settled all it authorised, or the server did not say.
 */
async function settledBelow(
  context: PayingContext,
  ledgerId: string,
  amount: bigint | undefined,
): Promise<{ amount: bigint; amountMsat: bigint; givenBackMsat: bigint } | undefined> {
  if (amount === undefined) return undefined;
  const entry = await context.store.findPayment(ledgerId);
  if (entry === undefined || amount >= entry.amount || entry.amount === 0n) return undefined;
  const amountMsat = (entry.amountMsat * amount + entry.amount - 1n) / entry.amount;
  return { amount, amountMsat, givenBackMsat: entry.amountMsat - amountMsat };
}

/**
 * Records in the ledger how the server settled an x402 payment, as a `PAYMENT-RESPONSE` value
 * told apart from the head (at the end of a metered event stream); a malformed one says nothing.
 *
 * @internal
 */
export async function noteSettlementValue(
  context: PayingContext,
  ledgerId: string,
  value: string,
): Promise<void> {
  let settled: X402Settlement | undefined;
  try {
    settled = parsePaymentResponseHeader(value);
  } catch (error) {
    if (!isTollwayError(error)) throw error;
  }
  await recordSettlement(context, ledgerId, settled, false);
}

/**
 * Records in the ledger how the server settled an x402 payment sent in a header: its
 * `PAYMENT-RESPONSE` (v1 `X-PAYMENT-RESPONSE`), or a refusal when it answers 402.
 *
 * @internal
 */
export async function noteSettlement(
  context: PayingContext,
  ledgerId: string,
  response: Response,
): Promise<void> {
  const v2 = response.headers.get('payment-response');
  const v1 = response.headers.get('x-payment-response');
  let settled: X402Settlement | undefined;
  try {
    if (v2 !== null) settled = parsePaymentResponseHeader(v2);
    else if (v1 !== null) settled = parseXPaymentResponseHeader(v1);
  } catch (error) {
    if (!isTollwayError(error)) throw error;
  }
  await recordSettlement(context, ledgerId, settled, response.status === 402);
}
