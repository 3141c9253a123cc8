/**
 * x402 `batch-settlement` for the x402 offer: the payer deposits into a payment channel once (the
 * facilitator settles the deposit on chain), then pays each request with a voucher, a signature
 * over the cumulative amount the server may claim. A voucher is checked here without a chain
 * round trip (its EIP-712 signature, and the channel's deposit as the store knows it); the engine
 * draws the request's price from the channel like a prepaid balance, across every instance on
 * the store, and refuses a voucher that does not cover everything drawn (one used again, older
 * than the last used, or signed from a payer's record that is behind) with x402's corrective 402
 * (./x402-batch-corrective.ts), a deposit's before it is settled. The receiver side redeems in
 * batches: {@link BatchRedeemer.redeem} claims what each channel drew, with its highest voucher,
 * in one transaction, then sweeps it to `payTo`; it also reads the claimed channels' state on
 * chain, and once a payer asked the contract to withdraw without the server, that channel's
 * vouchers are refused (what it drew is claimed before the withdrawal can end). A `refund`
 * payload refunds what is left (./x402-batch-refund.ts).
 */
import { z } from 'zod';
import { TollwayError } from '../errors.js';
import type { BatchChannelConfig, BatchChannels, BatchClaim } from '../x402/batch-channel.js';
import type { Facilitator } from '../x402/facilitator.js';
import { X402_HEADERS } from '../x402/headers.js';
import { formatPaymentResponseHeader } from '../x402/payment-response.js';
import type {
  X402Network,
  X402PaymentPayload,
  X402PaymentRequirements,
  X402SettleResponse,
} from '../x402/types.js';
import { amountSchema, parseWith, wireObject } from '../x402/wire.js';
import type { CredentialRefusal, CredentialVerdict } from './offers.js';
import { retryCharge } from './retry-charge.js';
import type { ChannelRecord, Store } from './store.js';
import { type BatchOffered, correctiveAnswer } from './x402-batch-corrective.js';
import { refundBatchChannel } from './x402-batch-refund.js';
import { channelAccount, drawnOf, readChannelOnChain } from './x402-batch-state.js';

/** Options of the x402 offer's `batch` (see {@link createX402Offer}). */
export interface X402BatchOptions {
  /** The paywall's store: channels, vouchers and what each channel drew live there. */
  store: Store;
  /**
   * Channel ids, voucher checks and the receiver authorizer that signs claim batches (payers bind
   * their channels to its address): `createBatchChannels(key)` from `@tollway/sdk/x402`.
   */
  channels: BatchChannels;
  /** Seconds a payer waits to withdraw unclaimed funds without the server. Default 900 (15 min). */
  withdrawDelay?: number;
}

/** What redeeming did: vouchers claimed, the claim and sweep transactions, the amount swept. */
export interface BatchRedemption {
  claimed: number;
  amount: bigint;
  claimTransaction?: string;
  settleTransaction?: string;
}

/** Redeems what channels drew; see the module comment. */
export interface BatchRedeemer {
  /** Nothing when another instance on the store is redeeming. */
  redeem(options?: { maxClaims?: number }): Promise<BatchRedemption>;
}

/** The batch-settlement side of one x402 offer. */
export interface BatchSide {
  /** The `extra` of the offer's `batch-settlement` requirements. */
  extra: Record<string, unknown>;
  /** `offered`: what the route's 402 offers (a corrective 402 offers it again). */
  check(
    payment: X402PaymentPayload,
    requirements: X402PaymentRequirements,
    offered: BatchOffered,
  ): Promise<CredentialVerdict>;
  redeemer: BatchRedeemer;
}

const MIN_WITHDRAW_DELAY = 900;
/** The store claim an instance holds while it redeems, and for how long at most. */
const REDEEM_LEASE = 'x402-batch:redeeming';
const REDEEM_LEASE_MS = 5 * 60_000;
const MAX_WITHDRAW_DELAY = 30 * 24 * 3600;
/**
 * How long a corrective 402 for a channel whose first deposit is settling waits for it, ms: a
 * deposit's settlement waits for its transaction's receipt (seconds on a public chain).
 */
const FIRST_VOUCHER_WAIT_MS = 10_000;
/** How often it looks meanwhile, ms. */
const FIRST_VOUCHER_POLL_MS = 25;
/**
 * How long the record of a deposit the chain took is tried again through a store outage, ms (the
 * request waits meanwhile, its draw held): a PostgreSQL restart or failover takes seconds.
 */
const DEPOSIT_RECORD_RETRY_MS = 30_000;
/**
 * The facilitator's reasons for refusing a channel's own highest voucher that mean its balance on
 * chain fell (below the voucher, or to nothing): its payer withdrew.
 */
const WITHDRAWN = new Set([
  'invalid_batch_settlement_evm_cumulative_exceeds_balance',
  'invalid_batch_settlement_evm_channel_not_found',
]);

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 20-byte hex address')
  .transform((text) => text as `0x${string}`);
const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32 bytes of hex')
  .transform((text) => text.toLowerCase() as `0x${string}`);

const channelConfigSchema: z.ZodType<BatchChannelConfig> = wireObject({
  payer: address,
  payerAuthorizer: address,
  receiver: address,
  receiverAuthorizer: address,
  token: address,
  withdrawDelay: z.number().int().min(MIN_WITHDRAW_DELAY).max(MAX_WITHDRAW_DELAY),
  salt: bytes32,
});

interface BatchPayload {
  type: 'voucher' | 'deposit' | 'refund';
  channelConfig: BatchChannelConfig;
  voucher: { channelId: `0x${string}`; maxClaimableAmount: bigint; signature: `0x${string}` };
  deposit?: { amount: bigint };
  /** A refund's amount; none: everything left. */
  amount?: bigint;
}

const batchPayloadSchema: z.ZodType<BatchPayload> = z.preprocess(
  (value) => value,
  z.looseObject({
    type: z.enum(['voucher', 'deposit', 'refund']),
    channelConfig: channelConfigSchema,
    voucher: wireObject({
      channelId: bytes32,
      maxClaimableAmount: amountSchema,
      signature: z
        .string()
        .regex(/^0x(?:[0-9a-fA-F]{2}){65}$/, 'expected a 65-byte hex signature')
        .transform((text) => text as `0x${string}`),
    }),
    deposit: z.looseObject({ amount: amountSchema }).optional(),
    amount: amountSchema
      .refine((amount) => amount > 0n, 'a refund amount must be positive')
      .optional(),
  }),
) as z.ZodType<BatchPayload>;

function refused(message: string): CredentialVerdict {
  return { ok: false, code: 'x402_payment_invalid', message, status: 402 };
}

/**
 * A channel with no record here yet, its first deposit still settling, as a corrective 402 tells
 * it: nothing deposited, no voucher kept (the payer reads the channel on chain instead).
 */
function unrecordedChannel(id: string, network: string): ChannelRecord {
  return {
    id,
    network,
    config: '',
    deposit: 0n,
    voucherMax: 0n,
    voucherSignature: '',
    claimed: 0n,
    refunded: 0n,
    withdrawRequestedAt: 0,
  };
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The batch-settlement side of an x402 offer paying `payTo` in `asset` on `network`. Throws
 * `invalid_config` for a withdraw delay out of range.
 */
export function createBatchSide(
  options: X402BatchOptions,
  offer: {
    facilitator: Facilitator;
    network: X402Network;
    asset: `0x${string}`;
    payTo: `0x${string}`;
    unit: string;
  },
): BatchSide {
  const { store } = options;
  const { facilitator, network, asset, payTo, unit } = offer;
  const { channels } = options;
  const { authorizer } = channels;
  const withdrawDelay = options.withdrawDelay ?? MIN_WITHDRAW_DELAY;
  if (
    !Number.isInteger(withdrawDelay) ||
    withdrawDelay < MIN_WITHDRAW_DELAY ||
    withdrawDelay > MAX_WITHDRAW_DELAY
  ) {
    throw new TollwayError('invalid_config', 'withdrawDelay must be 900 s to 30 days, in seconds');
  }

  /** A refusal when the facilitator would not settle a deposit; undefined when it would. */
  async function verifyDeposit(
    payment: X402PaymentPayload,
    requirements: X402PaymentRequirements,
  ): Promise<CredentialVerdict | undefined> {
    try {
      const verdict = await facilitator.verify(
        { ...payment, accepted: requirements },
        requirements,
      );
      if (verdict.isValid) return undefined;
      return refused(`The facilitator refused the deposit: ${verdict.invalidReason ?? 'invalid'}.`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, code: 'facilitator_unavailable', message, status: 503 };
    }
  }

  /**
   * Settles a deposit of `amount` into the channel at the facilitator (on chain) and adds it to
   * the channel's deposit, then keeps the voucher that came with it; a refusal when it could not be
   * settled. Run once the request's draw on the channel is held (`draws.fund`): a deposit whose
   * voucher no longer covers what the channel drew is refused before it moves money.
   */
  async function fundChannel(
    payment: X402PaymentPayload,
    requirements: X402PaymentRequirements,
    channel: { id: string; config: BatchChannelConfig },
    amount: bigint,
    voucher: { max: bigint; signature: string },
  ): Promise<CredentialRefusal | undefined> {
    let transaction: string;
    try {
      const settled = await facilitator.settle(
        { ...payment, accepted: requirements },
        requirements,
      );
      if (!settled.success) {
        const message = `The deposit could not be settled: ${settled.errorReason ?? 'unknown'}.`;
        return { ok: false, status: 402, code: 'x402_payment_invalid', message, headers: [] };
      }
      transaction = settled.transaction;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, status: 503, code: 'facilitator_unavailable', message, headers: [] };
    }
    await recordDeposit(channel, amount, transaction || globalThis.crypto.randomUUID(), voucher);
    return undefined;
  }

  /**
   * Records a deposit the chain took: its credit, then the voucher that came with it (a first
   * deposit has a record only now). The money has moved, so a store outage is waited out (the
   * writes are tried again for up to {@link DEPOSIT_RECORD_RETRY_MS}; the credit counts once
   * however often it is tried, by its `reference`), and a failure past that names the deposit, for
   * whoever reconciles the channel with the chain.
   */
  async function recordDeposit(
    channel: { id: string; config: BatchChannelConfig },
    amount: bigint,
    reference: string,
    voucher: { max: bigint; signature: string },
  ): Promise<void> {
    const { id, config } = channel;
    const record = { id, network, config: JSON.stringify(config) };
    try {
      await retryCharge(
        () => store.creditChannel(record, amount, reference),
        DEPOSIT_RECORD_RETRY_MS,
      );
    } catch (cause) {
      const message = `deposit ${reference} of ${amount} ${unit} into channel ${id} was settled on chain but could not be recorded`;
      throw new TollwayError('store_error', message, { cause });
    }
    await retryCharge(() => store.acceptVoucher(id, voucher), DEPOSIT_RECORD_RETRY_MS);
  }

  async function check(
    payment: X402PaymentPayload,
    requirements: X402PaymentRequirements,
    offered: BatchOffered,
  ): Promise<CredentialVerdict> {
    let payload: BatchPayload;
    try {
      payload = parseWith(batchPayloadSchema, payment.payload, 'batch-settlement payload');
    } catch (error) {
      const message = error instanceof Error ? error.message : 'not a batch-settlement payload';
      return { ok: false, code: 'invalid_x402_payload', message, status: 402 };
    }
    const config = payload.channelConfig;
    const { voucher } = payload;
    if (
      !same(config.receiver, payTo) ||
      !same(config.receiverAuthorizer, authorizer.address) ||
      !same(config.token, asset)
    ) {
      return refused('The channel pays another receiver, authorizer or token than this offer.');
    }
    const channelId = channels.channelId(config, network).toLowerCase();
    if (channelId !== voucher.channelId) return refused('The voucher names another channel.');
    const signed = await channels.verifyVoucher(
      {
        config,
        channelId,
        maxClaimableAmount: voucher.maxClaimableAmount,
        signature: voucher.signature,
      },
      network,
    );
    if (!signed) return refused("The voucher is not signed by the channel's payer authorizer.");
    if (payload.type === 'refund') {
      const refund = {
        channelId,
        config,
        voucher,
        ...(payload.amount === undefined ? {} : { amount: payload.amount }),
        payment,
        requirements,
        offered,
      };
      const context = { store, facilitator, authorizer, network, unit, sweep };
      return {
        ok: true,
        proof: {
          protocol: 'x402',
          tokenId: channelId,
          paymentHash: `${channelId}:refund`,
          headers: [],
          answer: () => refundBatchChannel(context, refund),
        },
      };
    }
    const channel = await store.getChannel(channelId);
    if (channel !== undefined && channel.withdrawRequestedAt !== 0) {
      return refused(
        "This channel's payer asked the contract to withdraw it: it takes no more vouchers here.",
      );
    }
    // What this payment deposits (a channel's first deposit, or a top-up); none: a voucher alone.
    const paidIn = payload.type === 'deposit' ? (payload.deposit?.amount ?? 0n) : undefined;
    if (paidIn === undefined && channel === undefined) {
      return refused('This channel has no deposit here: deposit first.');
    }
    if (paidIn !== undefined && channel !== undefined) {
      // A deposit whose voucher is behind is corrected before the facilitator is asked about it,
      // as x402's servers do. Deposits racing draws are settled by the engine: the deposit is made
      // only once its draw is held (`fund` below).
      const behind = await behindOf(channel, voucher.maxClaimableAmount, requirements.amount);
      if (behind !== undefined) {
        const answer = correctiveAnswer(
          offered,
          channel,
          behind,
          staleMessage(voucher.maxClaimableAmount, behind),
        );
        return {
          ok: true,
          proof: {
            ...voucherProof(channelId, voucher.maxClaimableAmount),
            headers: [],
            answer: async () => answer,
          },
        };
      }
    }
    if (paidIn !== undefined) {
      const refusal = await verifyDeposit(payment, requirements);
      if (refusal !== undefined) return refusal;
    }
    // What the channel holds once this request's deposit, if any, is made.
    const deposit = (channel?.deposit ?? 0n) + (paidIn ?? 0n);
    const refunded = channel?.refunded ?? 0n;
    if (voucher.maxClaimableAmount > deposit - refunded) {
      return refused('The voucher is for more than the channel holds: deposit more.');
    }
    const kept = { max: voucher.maxClaimableAmount, signature: voucher.signature };
    // Kept as the channel's highest when it is: claims use it, and corrective 402s prove with it.
    if (channel !== undefined) await store.acceptVoucher(channelId, kept);
    const response = formatPaymentResponseHeader({
      success: true,
      transaction: '',
      network,
      payer: config.payer,
      amount: requirements.amount,
      extra: {
        chargedAmount: requirements.amount.toString(),
        channelState: {
          channelId,
          balance: (deposit - refunded).toString(),
          totalClaimed: (channel?.claimed ?? 0n).toString(),
          withdrawRequestedAt: 0,
          refundNonce: '0',
          chargedCumulativeAmount: voucher.maxClaimableAmount.toString(),
        },
      },
    });
    const funded = { id: channelId, config };
    return {
      ok: true,
      proof: {
        ...voucherProof(channelId, voucher.maxClaimableAmount),
        headers: [[X402_HEADERS.paymentResponse, response]],
        // Refunds are charged to the account: the voucher covers what was drawn besides them.
        draws: {
          account: channelAccount(channelId),
          amount: requirements.amount,
          deposit,
          ceiling: voucher.maxClaimableAmount + refunded,
          unit,
          uncovered: (drawn) => stale(offered, channelId, voucher.maxClaimableAmount, drawn),
          ...(paidIn === undefined
            ? {}
            : { fund: () => fundChannel(payment, requirements, funded, paidIn, kept) }),
        },
      },
    };
  }

  /**
   * The corrective 402 for a voucher for `max` in all that does not cover what the channel's
   * account drew and holds besides its request (`spent`, refunds included), read again: the
   * channel's highest voucher may have risen since the check.
   */
  async function stale(
    offered: BatchOffered,
    channelId: string,
    max: bigint,
    spent: bigint,
  ): Promise<CredentialRefusal> {
    let channel = await store.getChannel(channelId);
    let drawn = spent;
    if (channel === undefined || channel.voucherSignature === '') {
      // Its first deposit is settling (this request's draw was refused for another one's): the
      // corrective waits for its voucher, which proves what it says, then says what was drawn.
      channel = await firstVoucherOf(channelId);
      if (channel !== undefined) {
        const usage = await store.getUsage(channelAccount(channelId));
        drawn = usage.spentMsat + usage.heldMsat;
      }
    }
    const known = channel ?? unrecordedChannel(channelId, network);
    const charged = drawn - known.refunded;
    return correctiveAnswer(offered, known, charged, staleMessage(max, charged));
  }

  /**
   * The channel once a voucher is kept for it (its first deposit settled, on any instance); as it
   * stands when none is within {@link FIRST_VOUCHER_WAIT_MS} (that deposit failed).
   */
  async function firstVoucherOf(channelId: string): Promise<ChannelRecord | undefined> {
    const deadline = Date.now() + FIRST_VOUCHER_WAIT_MS;
    for (;;) {
      const channel = await store.getChannel(channelId);
      if ((channel !== undefined && channel.voucherSignature !== '') || Date.now() >= deadline) {
        return channel;
      }
      await new Promise((resolve) => setTimeout(resolve, FIRST_VOUCHER_POLL_MS));
    }
  }

  /**
   * What the channel drew and holds (refunds aside), when a voucher for `max` in all does not
   * cover it and a request of `amount`; undefined when it does.
   */
  async function behindOf(
    channel: ChannelRecord,
    max: bigint,
    amount: bigint,
  ): Promise<bigint | undefined> {
    const usage = await store.getUsage(channelAccount(channel.id));
    const drawn = usage.spentMsat + usage.heldMsat - channel.refunded;
    return max < drawn + amount ? drawn : undefined;
  }

  /** Why a voucher for `max` in all is refused, the channel having been charged `charged`. */
  function staleMessage(max: bigint, charged: bigint): string {
    return `This voucher (up to ${max} ${unit} in total) does not cover what the channel drew (${charged}) and this request: it was used already, a later one was, or the payer's record is behind. PAYMENT-REQUIRED says what the channel was charged: sign again on top of it.`;
  }

  /** What a proof of a voucher on `channelId` for `max` in all says of itself. */
  function voucherProof(channelId: string, max: bigint) {
    return { protocol: 'x402' as const, tokenId: channelId, paymentHash: `${channelId}:${max}` };
  }

  /** A batch-settlement operation for the facilitator to settle (claim, sweep). */
  function operation(payload: Record<string, unknown>): {
    payment: X402PaymentPayload;
    requirements: X402PaymentRequirements;
  } {
    const requirements: X402PaymentRequirements = {
      scheme: 'batch-settlement',
      network,
      asset,
      amount: 0n,
      payTo,
      maxTimeoutSeconds: 60,
      extra: {},
    };
    return { payment: { x402Version: 2, accepted: requirements, payload }, requirements };
  }

  /** Pays `payTo` what was claimed for it; the outcome, which may be a failure. */
  function sweep(): Promise<X402SettleResponse> {
    const settle = operation({ type: 'settle', receiver: payTo, token: asset });
    return facilitator.settle(settle.payment, settle.requirements);
  }

  /** Claims and sweeps what channels drew; see {@link BatchRedeemer}. */
  async function redeemNow(maxClaims: number): Promise<BatchRedemption> {
    const claimable = await store.listClaimableChannels(maxClaims);
    const claims: Array<BatchClaim & { id: string; delta: bigint; channel: ChannelRecord }> = [];
    for (const channel of claimable) {
      const drawn = await drawnOf(store, channel);
      // What the channel drew, as far as its highest voucher covers it.
      let total = drawn;
      if (channel.voucherMax < total) total = channel.voucherMax;
      if (total <= channel.claimed) continue;
      claims.push({
        id: channel.id,
        channel,
        delta: total - channel.claimed,
        config: JSON.parse(channel.config) as BatchChannelConfig,
        maxClaimableAmount: channel.voucherMax,
        signature: channel.voucherSignature as `0x${string}`,
        totalClaimed: total,
      });
    }
    if (claims.length === 0) return { claimed: 0, amount: 0n };
    const claim = operation({
      type: 'claim',
      claims: claims.map((row) => ({
        voucher: { channel: row.config, maxClaimableAmount: row.maxClaimableAmount.toString() },
        signature: row.signature,
        totalClaimed: row.totalClaimed.toString(),
      })),
      claimAuthorizerSignature: await authorizer.signClaims(claims, network),
    });
    const claimed = await facilitator.settle(claim.payment, claim.requirements);
    if (!claimed.success) {
      throw new TollwayError(
        'x402_settlement_failed',
        `the claim failed: ${claimed.errorReason ?? 'unknown reason'}`,
      );
    }
    for (const row of claims) await store.noteClaimed(row.id, row.totalClaimed);
    const amount = claims.reduce((sum, row) => sum + row.delta, 0n);
    const swept = await sweep();
    for (const row of claims) await noteWithdrawal(row.channel, row.config);
    await store.recordSettlement({
      reference: claimed.transaction,
      service: 'x402-batch',
      protocol: 'x402',
      amount,
      unit,
      settledAt: Date.now(),
    });
    return {
      claimed: claims.length,
      amount,
      claimTransaction: claimed.transaction,
      ...(swept.success ? { settleTransaction: swept.transaction } : {}),
    };
  }

  /**
   * Notes when the channel's payer asked the contract to withdraw, once (a balance below the
   * channel's highest voucher means a withdrawal ended); best effort: a facilitator that does not
   * answer leaves it for the next redemption.
   */
  async function noteWithdrawal(channel: ChannelRecord, config: BatchChannelConfig): Promise<void> {
    const requirements = {
      ...operation({}).requirements,
      extra: { receiverAuthorizer: authorizer.address, withdrawDelay: config.withdrawDelay },
    };
    const voucher = {
      maxClaimableAmount: channel.voucherMax,
      signature: channel.voucherSignature,
    };
    try {
      const read = await readChannelOnChain(
        facilitator,
        requirements,
        { id: channel.id, config },
        voucher,
      );
      // Once seen, a withdrawal is kept: the deposit the store knows may be gone.
      const requestedAt = read.ok
        ? read.state.withdrawRequestedAt
        : WITHDRAWN.has(read.reason)
          ? Math.floor(Date.now() / 1000)
          : 0;
      if (requestedAt !== 0 && channel.withdrawRequestedAt === 0) {
        await store.noteWithdrawal(channel.id, requestedAt);
      }
    } catch {
      // Read again after the next claim.
    }
  }

  const redeemer: BatchRedeemer = {
    async redeem(redeemOptions = {}) {
      // One instance redeems at a time: others sharing the store would claim the same draws.
      const now = Date.now();
      const lease = { expiresAt: now + REDEEM_LEASE_MS, heldUntil: now + REDEEM_LEASE_MS };
      if (!(await store.claim(REDEEM_LEASE, lease, now))) return { claimed: 0, amount: 0n };
      try {
        return await redeemNow(redeemOptions.maxClaims ?? 100);
      } finally {
        await store.releaseClaim(REDEEM_LEASE);
      }
    },
  };

  return {
    extra: {
      receiverAuthorizer: authorizer.address,
      withdrawDelay,
      assetTransferMethod: 'eip3009',
    },
    check,
    redeemer,
  };
}
