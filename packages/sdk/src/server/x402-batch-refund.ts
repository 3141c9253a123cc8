/**
 * The cooperative refund of an x402 `batch-settlement` channel: the payer sends a `refund` payload
 * (its channel config, a voucher signed for what it was charged, which claims nothing more, and
 * optionally an amount) to any route the channel pays; the server answers it instead of the
 * handler. It takes what nobody drew or holds of the channel off the channel's account (a hold,
 * atomic against the draws of every instance), claims what the channel drew with its highest
 * voucher and refunds the rest in one transaction (the contract's `claimWithSignature` then
 * `refundWithSignature`, both signed by the receiver authorizer, through the facilitator), sweeps
 * what the claim earned to the receiver, and answers 200 with the settlement in `PAYMENT-RESPONSE`.
 *
 * The refund is charged to the channel's account, so nothing refunded can be drawn again, and
 * counted as refunded, so that what the channel drew (and what redeeming claims) leaves it out.
 * A refund whose outcome is unknown (the facilitator failed mid-way) keeps its hold: nothing
 * more is drawn from what may have gone back, and the payer can still withdraw on chain. A refund
 * voucher for less than the channel drew gets the corrective 402 x402's own servers send.
 */
import { minBigint } from '../internal/bigint.js';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';
import type { BatchChannelConfig, ReceiverAuthorizer } from '../x402/batch-channel.js';
import type { Facilitator } from '../x402/facilitator.js';
import { X402_HEADERS } from '../x402/headers.js';
import { formatPaymentResponseHeader } from '../x402/payment-response.js';
import type {
  X402Network,
  X402PaymentPayload,
  X402PaymentRequirements,
  X402SettleResponse,
} from '../x402/types.js';
import type { CredentialAnswer } from './offers.js';
import type { ChannelRecord, Store } from './store.js';
import { type BatchOffered, correctiveAnswer } from './x402-batch-corrective.js';
import { type ChannelOnChain, channelAccount, readChannelOnChain } from './x402-batch-state.js';

/** What a refund needs of the batch side of an x402 offer. */
export interface BatchRefundContext {
  store: Store;
  facilitator: Facilitator;
  authorizer: ReceiverAuthorizer;
  network: X402Network;
  /** The unit settlements are recorded in (the offer's asset). */
  unit: string;
  /** Pays the receiver what was claimed for it (the contract's `settle`); a failure waits for the next redemption. */
  sweep(): Promise<unknown>;
}

/** A payer's refund request, its voucher's signature checked. */
export interface BatchRefundRequest {
  channelId: `0x${string}`;
  config: BatchChannelConfig;
  /** The payer's voucher: what it agrees the channel was charged in total. */
  voucher: { maxClaimableAmount: bigint; signature: `0x${string}` };
  /** Token base units asked back; undefined: everything left. */
  amount?: bigint;
  payment: X402PaymentPayload;
  requirements: X402PaymentRequirements;
  /** What the route's 402 offers (a corrective 402 offers it again). */
  offered: BatchOffered;
}

/** x402's reasons for a refund not made (`@x402/evm` batch-settlement). */
const REASON = {
  missing: 'invalid_batch_settlement_evm_missing_channel',
  busy: 'invalid_batch_settlement_evm_channel_busy',
  noBalance: 'invalid_batch_settlement_evm_refund_no_balance',
} as const;

/** Held while a refund of the channel runs: one refund of a channel at a time. */
const REFUND_LEASE_MS = 5 * 60_000;
/**
 * Attempts at holding what is left while requests draw at the same time: an attempt fails only
 * when another request held part of the channel between reading what is left and holding it, so
 * this bounds how many draws may slip in meanwhile (three were too few for four concurrent
 * vouchers on a loaded machine: the refund was sometimes refused).
 */
const HOLD_ATTEMPTS = 16;

/** A refund not made, with x402's `reason` in `PAYMENT-RESPONSE` (the official client reads it). */
function notMade(
  context: BatchRefundContext,
  request: BatchRefundRequest,
  reason: string,
  message: string,
  settled?: X402SettleResponse,
): CredentialAnswer {
  const response: X402SettleResponse = settled ?? {
    success: false,
    errorReason: reason,
    errorMessage: message,
    transaction: '',
    network: context.network,
    payer: request.config.payer,
  };
  return {
    ok: false,
    status: 402,
    code: 'x402_refund_refused',
    message: `The refund was not made: ${message}`,
    headers: [[X402_HEADERS.paymentResponse, formatPaymentResponseHeader(response)]],
  };
}

/**
 * Refunds what is left of the channel to its payer (see the module comment); one refund of a
 * channel at a time across instances.
 */
export async function refundBatchChannel(
  context: BatchRefundContext,
  request: BatchRefundRequest,
): Promise<CredentialAnswer> {
  const { store } = context;
  const lease = `x402-batch:refunding:${request.channelId}`;
  const now = Date.now();
  const held = { expiresAt: now + REFUND_LEASE_MS, heldUntil: now + REFUND_LEASE_MS };
  if (!(await store.claim(lease, held, now))) {
    return notMade(context, request, REASON.busy, 'another refund of this channel is under way.');
  }
  try {
    return await refundNow(context, request);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, status: 503, code: 'facilitator_unavailable', message, headers: [] };
  } finally {
    await store.releaseClaim(lease);
  }
}

async function refundNow(
  context: BatchRefundContext,
  request: BatchRefundRequest,
): Promise<CredentialAnswer> {
  const { store } = context;
  const channel = await store.getChannel(request.channelId);
  if (channel === undefined) {
    return notMade(context, request, REASON.missing, 'this channel has no deposit here.');
  }
  const account = channelAccount(channel.id);
  const drawnBefore = (await store.getUsage(account)).spentMsat - channel.refunded;
  if (request.voucher.maxClaimableAmount < drawnBefore) {
    return correctiveAnswer(
      request.offered,
      channel,
      drawnBefore,
      `The refund voucher is for less than the channel drew (${drawnBefore}): sign it for that.`,
    );
  }
  const read = await readChannelOnChain(
    context.facilitator,
    request.requirements,
    { id: channel.id, config: request.config },
    request.voucher,
  );
  if (!read.ok)
    return notMade(context, request, read.reason, `the facilitator said ${read.reason}.`);
  const taken = await takeWhatIsLeft(store, channel, read.state, request.amount);
  if (taken === undefined) {
    return notMade(context, request, REASON.noBalance, 'the channel has nothing left to refund.');
  }
  const claim = claimOf(channel, read.state, taken.drawn);
  const payload = {
    ...(request.payment.payload as Record<string, unknown>),
    amount: taken.amount.toString(),
    refundNonce: read.state.refundNonce.toString(),
    claims:
      claim === undefined
        ? []
        : [
            {
              voucher: {
                channel: request.config,
                maxClaimableAmount: channel.voucherMax.toString(),
              },
              signature: channel.voucherSignature,
              totalClaimed: claim.toString(),
            },
          ],
    refundAuthorizerSignature: await context.authorizer.signRefund(
      { channelId: request.channelId, nonce: read.state.refundNonce, amount: taken.amount },
      context.network,
    ),
    ...(claim === undefined
      ? {}
      : {
          claimAuthorizerSignature: await context.authorizer.signClaims(
            [
              {
                config: request.config,
                maxClaimableAmount: channel.voucherMax,
                signature: channel.voucherSignature as `0x${string}`,
                totalClaimed: claim,
              },
            ],
            context.network,
          ),
        }),
  };
  const settled = await context.facilitator.settle(
    { ...request.payment, accepted: request.requirements, payload },
    request.requirements,
  );
  if (!settled.success) {
    await store.releaseHold(taken.holdId);
    return notMade(
      context,
      request,
      settled.errorReason ?? 'refund_failed',
      `the refund failed: ${settled.errorReason ?? 'unknown reason'}.`,
      settled,
    );
  }
  const refunded = minBigint(settled.amount ?? taken.amount, taken.amount);
  await record(context, channel, { refunded, claim, reference: settled.transaction });
  await store.settleHold(taken.holdId, { uses: 0, amountMsat: refunded });
  await store.noteRefunded(channel.id, channel.refunded + refunded);
  const response = {
    ...settled,
    amount: refunded,
    extra: { ...settled.extra, chargedAmount: '0' },
  };
  return {
    ok: true,
    body: {
      status: 'refunded',
      channelId: channel.id,
      refunded: refunded.toString(),
      claimed: (claim ?? read.state.totalClaimed).toString(),
      transaction: settled.transaction,
    },
    headers: [[X402_HEADERS.paymentResponse, formatPaymentResponseHeader(response)]],
  };
}

/**
 * Holds what nobody drew or holds of the channel, at most `wanted` and what the contract has
 * unclaimed: the hold, its amount and what the channel drew when it was taken; undefined when
 * nothing is left. The hold never expires by itself: the refund settles or releases it.
 */
async function takeWhatIsLeft(
  store: Store,
  channel: ChannelRecord,
  chain: ChannelOnChain,
  wanted: bigint | undefined,
): Promise<{ holdId: string; amount: bigint; drawn: bigint } | undefined> {
  const account = channelAccount(channel.id);
  for (let attempt = 0; attempt < HOLD_ATTEMPTS; attempt++) {
    const usage = await store.getUsage(account);
    const drawn = usage.spentMsat - channel.refunded;
    // What the contract will have claimed once the refund's claim is made.
    let claimed = drawn;
    if (chain.totalClaimed > claimed) claimed = chain.totalClaimed;
    let amount = minBigint(
      channel.deposit - usage.spentMsat - usage.heldMsat,
      chain.balance - claimed,
    );
    if (wanted !== undefined) amount = minBigint(amount, wanted);
    if (amount <= 0n) return undefined;
    const holdId = `refund-${bytesToHex(randomBytes(16))}`;
    const hold = {
      id: holdId,
      tokenId: account,
      balance: { amountMsat: amount, initialMsat: channel.deposit },
      expiresAt: Number.MAX_SAFE_INTEGER,
    };
    if ((await store.hold(hold, Date.now())).ok) return { holdId, amount, drawn };
  }
  return undefined;
}

/** The total to claim with the refund: what the channel drew, when the contract has less. */
function claimOf(channel: ChannelRecord, chain: ChannelOnChain, drawn: bigint): bigint | undefined {
  const total = minBigint(drawn, channel.voucherMax);
  return total > chain.totalClaimed ? total : undefined;
}

/** Notes the claim made with the refund, and records what it earned as a settlement. */
async function record(
  context: BatchRefundContext,
  channel: ChannelRecord,
  made: { refunded: bigint; claim: bigint | undefined; reference: string },
): Promise<void> {
  const { store } = context;
  if (made.claim === undefined) return;
  await store.noteClaimed(channel.id, made.claim);
  await context.sweep();
  const earned = made.claim - channel.claimed;
  if (earned <= 0n) return;
  await store.recordSettlement({
    reference: made.reference,
    service: 'x402-batch',
    protocol: 'x402',
    amount: earned,
    unit: context.unit,
    settledAt: Date.now(),
  });
}
