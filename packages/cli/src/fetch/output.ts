/**
 * What `tollway fetch` prints besides the body: offers, quotes and steps (`-v`) on stderr, a line
 * when money moved, and the JSON forms of `--json`. x402 amounts of the tokens `--evm-asset` allows
 * (USD stablecoins with 6 decimals) are shown in dollars; the EIP-3009 nonce is called what it is.
 */
import { formatMsat, formatTokenAmount } from '@tollway/sdk';
import type {
  ClosedSession,
  Offer,
  PayingFetchEvent,
  PaymentInfo,
  Quote,
  RejectedOffer,
  X402Offer,
} from '@tollway/sdk/client';

/** What the flags give `tollway fetch` to pay with, for saying why an offer is not paid. */
export interface FetchContext {
  /** A Lightning wallet was given (`--wallet` or `TOLLWAY_WALLET`). */
  lightning: boolean;
  /** An EVM key was given (`--evm-key` or `TOLLWAY_EVM_KEY`). */
  evm: boolean;
  /** `--usd-per-btc` was given. */
  rate: boolean;
  /** Token addresses (lower case) `--evm-asset` allows: USD stablecoins with 6 decimals. */
  usdAssets: ReadonlySet<string>;
}

/** Decimals of the tokens `--evm-asset` allows (USDC's). */
const USD_TOKEN_DECIMALS = 6;

/** JSON with bigints as decimal strings. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

/** An offer as `--json` prints it. */
export function describeOffer(offer: Offer): Record<string, unknown> {
  if (offer.protocol === 'x402') {
    const { requirement: _requirement, ...rest } = offer;
    return rest;
  }
  return {
    protocol: offer.protocol,
    amountMsat: offer.amountMsat,
    network: offer.invoice.network,
    payee: offer.invoice.payeePubkey,
    paymentHash: offer.invoice.paymentHash,
    expiresAt: new Date(offer.invoice.expiresAt).toISOString(),
    invoice: offer.invoice.paymentRequest,
  };
}

/** `$0.02 (20000 base units of 0x…)` for an allowed USD token, else `20000 base units of 0x…`. */
function x402Amount(offer: X402Offer, context: FetchContext): string {
  const units = `${offer.amount} base units of ${offer.asset}`;
  if (!context.usdAssets.has(offer.asset.toLowerCase())) return units;
  return `$${formatTokenAmount(offer.amount, USD_TOKEN_DECIMALS)} (${units})`;
}

function offerLine(offer: Offer, context: FetchContext): string {
  if (offer.protocol === 'x402') {
    return `x402 v${offer.x402Version} ${offer.scheme}: ${x402Amount(offer, context)} on ${offer.network} to ${offer.payTo}`;
  }
  const expires = new Date(offer.invoice.expiresAt).toISOString();
  const unit =
    offer.protocol === 'mpp-session' ? ` deposit, ${formatMsat(offer.unitMsat)} per request` : '';
  return `${offer.protocol} ${formatMsat(offer.amountMsat)}${unit} (${offer.invoice.network} invoice, expires ${expires})`;
}

function rejectedLine(rejected: RejectedOffer): string {
  return `${rejected.kind}: ${rejected.code} (${rejected.reason})`;
}

/** Why the flags leave an offer unpaid (no wallet of its kind, no rate), or undefined. */
function flagSkip(offer: Offer, context: FetchContext): string | undefined {
  if (offer.protocol !== 'x402') {
    return context.lightning
      ? undefined
      : `${offer.protocol}: no Lightning wallet (give --wallet or set TOLLWAY_WALLET)`;
  }
  if (!context.evm) return 'x402: no EVM key (give --evm-key with --evm-asset)';
  if (!context.rate) return 'x402: no --usd-per-btc to count token amounts against --max-cost';
  if (!context.usdAssets.has(offer.asset.toLowerCase())) {
    return `x402: ${offer.asset} is not an --evm-asset`;
  }
  return undefined;
}

/** The offers of a 402, those the SDK set aside, and those the flags leave unpaid. */
function offerLines(
  offers: readonly Offer[],
  rejected: readonly RejectedOffer[],
  context: FetchContext,
): string[] {
  const skipped = offers.map((o) => flagSkip(o, context)).filter((s) => s !== undefined);
  return [
    ...offers.map((o) => `* offer ${offerLine(o, context)}`),
    ...rejected.map((r) => `* skipped ${rejectedLine(r)}`),
    ...skipped.map((s) => `* skipped ${s}`),
  ];
}

/** The quote of `--no-pay`, for people. */
export function formatQuote(quote: Quote, context: FetchContext): string {
  if (quote.status !== 402) {
    return `${quote.url} answered ${quote.status} without asking for payment${quote.cached ? ' (a credential is cached)' : ''}\n`;
  }
  const lines = [
    `${quote.url} asks for payment (402)${quote.cached ? '; a cached credential would be tried first' : ''}`,
  ];
  for (const offer of quote.offers) {
    lines.push(
      `  offer    ${offerLine(offer, context)}${offer === quote.choice ? '  <- would pay' : ''}`,
    );
  }
  for (const rejected of quote.rejected) lines.push(`  skipped  ${rejectedLine(rejected)}`);
  if (quote.choice === undefined) lines.push('no offer can be paid');
  else if (quote.budget?.ok === false)
    lines.push(`refused: ${quote.budget.code}: ${quote.budget.message}`);
  return `${lines.join('\n')}\n`;
}

/**
 * What identifies a payment: the payment hash (Lightning), or x402's nonce (EIP-3009's for
 * `exact`, Permit2's for `upto`).
 */
function paymentId(payment: PaymentInfo): string {
  if (payment.protocol !== 'x402') return `payment hash ${payment.paymentHash}`;
  const signed = payment.x402Scheme === 'upto' ? 'Permit2 nonce' : 'EIP-3009 authorization nonce';
  return `${signed} ${payment.paymentHash}`;
}

/** The line `tollway fetch` writes on stderr when it paid (or deposited into an x402 channel). */
export function paidLine(payment: PaymentInfo): string {
  const amount = formatMsat(payment.amountMsat);
  if (payment.protocol !== 'x402') {
    return `paid ${amount} + ${formatMsat(payment.feeMsat)} fee with ${payment.protocol} (${paymentId(payment)})`;
  }
  const worth = '(the token amount at --usd-per-btc)';
  if (payment.x402Scheme === 'batch-settlement') {
    return `deposited ${amount} ${worth} into x402 channel ${payment.paymentHash}`;
  }
  return `paid ${amount} ${worth} with x402 (${paymentId(payment)})`;
}

/** What closing a session (or an x402 channel, refunded in tokens) gave back, in one line. */
export function closedLine(session: ClosedSession): string {
  const what = session.refund === undefined ? 'session' : 'x402 channel';
  return `closed ${what} ${session.id}: refund ${formatMsat(session.refundMsat)} (${session.refundStatus})`;
}

/** One step of a call, for `-v`. */
export function verboseLine(event: PayingFetchEvent, context: FetchContext): string {
  switch (event.type) {
    case 'challenge':
      return `< ${event.status} payment required${event.withCredential ? ' (the credential was refused)' : ''}`;
    case 'offers':
      return offerLines(event.offers, event.rejected, context).join('\n');
    case 'chosen':
      return `* paying ${event.offer.protocol} ${formatMsat(event.offer.amountMsat)}`;
    case 'paid':
      return `* ${paidLine(event.payment)}`;
    case 'shared':
      return '* using a credential another request paid for';
    case 'recovered':
      return `* recovered an earlier payment of ${formatMsat(event.payment.amountMsat)} (${paymentId(event.payment)})`;
    case 'released':
      return `* an earlier payment failed and was released (payment hash ${event.paymentHash})`;
    case 'cached':
      return `* sending the cached ${event.protocol} credential`;
    case 'voucher':
      return `* paying from x402 channel ${event.channelId} (a voucher, no transaction)`;
    case 'retry':
      return `< ${event.status} on retry`;
    case 'session-closed':
      return `* ${closedLine(event.session)}`;
    case 'session-close-failed':
      return `* closing an idle session failed: ${String(event.error)}`;
    case 'session-topped-up':
      return `* topped up session ${event.sessionId}: its stream ran out`;
    case 'session-top-up-failed':
      return `* topping up session ${event.sessionId} failed: ${String(event.error)}`;
  }
}
