/**
 * x402's corrective 402 for a `batch-settlement` voucher that does not match what its channel
 * drew (a payer whose own record of the channel is behind: another process, or another call of
 * the same record, drew since; or it lost its record). It is the route's 402 again, its
 * `PAYMENT-REQUIRED` saying `cumulative_amount_mismatch` and carrying, in the batch-settlement
 * requirements' `extra`, what the channel was charged (`channelState`) and the highest voucher
 * the server holds (`voucherState`: its signature proves the amount to the payer). The payer
 * checks them, corrects its record and signs again. No `PAYMENT-RESPONSE`: nothing was settled,
 * and x402's client takes one as a final answer. The same form as `@x402/evm`'s own server.
 */
import { X402_HEADERS } from '../x402/headers.js';
import { formatPaymentRequiredHeader } from '../x402/payment-required.js';
import type { X402PaymentRequirements, X402ResourceInfo } from '../x402/types.js';
import type { CredentialRefusal } from './offers.js';
import type { ChannelRecord } from './store.js';

/** x402's reason for a voucher that does not match what its channel was charged. */
const CUMULATIVE_AMOUNT_MISMATCH = 'invalid_batch_settlement_evm_cumulative_amount_mismatch';

/** What the route's 402 offers, which a corrective 402 offers again. */
export interface BatchOffered {
  resource: X402ResourceInfo;
  /** Every x402 requirement of the route, its batch-settlement one among them. */
  accepts: X402PaymentRequirements[];
}

/**
 * The corrective 402 for a voucher on `channel`, which was charged `charged` in all (token base
 * units, refunds aside); `message` says why, in the problem body.
 */
export function correctiveAnswer(
  offered: BatchOffered,
  channel: ChannelRecord,
  charged: bigint,
  message: string,
): CredentialRefusal {
  const state: Record<string, Record<string, unknown>> = {
    channelState: {
      channelId: channel.id,
      balance: (channel.deposit - channel.refunded).toString(),
      totalClaimed: channel.claimed.toString(),
      withdrawRequestedAt: channel.withdrawRequestedAt,
      chargedCumulativeAmount: charged.toString(),
    },
  };
  // No voucher kept yet (a first deposit still settling): the payer reads the channel on chain.
  if (channel.voucherSignature !== '') {
    state.voucherState = {
      signedMaxClaimable: channel.voucherMax.toString(),
      signature: channel.voucherSignature,
    };
  }
  const required = formatPaymentRequiredHeader({
    x402Version: 2,
    error: CUMULATIVE_AMOUNT_MISMATCH,
    resource: offered.resource,
    accepts: offered.accepts.map((requirements) =>
      requirements.scheme === 'batch-settlement'
        ? { ...requirements, extra: { ...requirements.extra, ...state } }
        : requirements,
    ),
  });
  return {
    ok: false,
    status: 402,
    code: 'x402_voucher_mismatch',
    message,
    headers: [[X402_HEADERS.paymentRequired, required]],
  };
}
