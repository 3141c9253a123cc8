/**
 * What the batch-settlement side of the x402 offer knows of a channel, in the store and on chain:
 * the store account its requests draw from (refunds are charged to it too, so that nothing
 * refunded can be drawn), what its requests drew, and the channel's state on chain, read through
 * the facilitator's check of a zero-charge voucher (the `refund` form), which answers it.
 */
import type { BatchChannelConfig } from '../x402/batch-channel.js';
import type { Facilitator } from '../x402/facilitator.js';
import type { X402PaymentRequirements } from '../x402/types.js';
import type { ChannelRecord, Store } from './store.js';

/** The store account a channel's draws (and refunds) are counted under. */
export function channelAccount(channelId: string): string {
  return `x402-batch:${channelId}`;
}

/** What the channel's requests drew and were charged, token base units (refunds aside). */
export async function drawnOf(store: Store, channel: ChannelRecord): Promise<bigint> {
  const usage = await store.getUsage(channelAccount(channel.id));
  return usage.spentMsat - channel.refunded;
}

/** A channel's state in the contract. */
export interface ChannelOnChain {
  balance: bigint;
  totalClaimed: bigint;
  /** Unix seconds; 0 when no withdrawal is pending. */
  withdrawRequestedAt: number;
  refundNonce: bigint;
}

function bigintOf(value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'string' && /^[0-9]{1,78}$/.test(value)) return BigInt(value);
  return undefined;
}

/**
 * The channel's state on chain, read by the facilitator as it checks `voucher` in the `refund`
 * form (a voucher signed by the payer that claims nothing more): the state, or the facilitator's
 * reason when it refuses the voucher (the balance fell below its ceiling: a withdrawal). Throws
 * `facilitator_unavailable` when the facilitator cannot answer.
 */
export async function readChannelOnChain(
  facilitator: Facilitator,
  requirements: X402PaymentRequirements,
  channel: { id: string; config: BatchChannelConfig },
  voucher: { maxClaimableAmount: bigint; signature: string },
): Promise<{ ok: true; state: ChannelOnChain } | { ok: false; reason: string }> {
  const payload = {
    type: 'refund',
    channelConfig: channel.config,
    voucher: {
      channelId: channel.id,
      maxClaimableAmount: voucher.maxClaimableAmount.toString(),
      signature: voucher.signature,
    },
  };
  const verdict = await facilitator.verify(
    { x402Version: 2, accepted: requirements, payload },
    requirements,
  );
  if (!verdict.isValid) return { ok: false, reason: verdict.invalidReason ?? 'invalid' };
  const extra = verdict.extra ?? {};
  const balance = bigintOf(extra.balance);
  const totalClaimed = bigintOf(extra.totalClaimed);
  const withdrawRequestedAt = bigintOf(extra.withdrawRequestedAt);
  const refundNonce = bigintOf(extra.refundNonce);
  if (
    balance === undefined ||
    totalClaimed === undefined ||
    withdrawRequestedAt === undefined ||
    refundNonce === undefined
  ) {
    return { ok: false, reason: 'the facilitator did not tell the channel state' };
  }
  return {
    ok: true,
    state: { balance, totalClaimed, withdrawRequestedAt: Number(withdrawRequestedAt), refundNonce },
  };
}
