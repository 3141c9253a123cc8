/**
 * Settling a payment that moves money (x402) at the facilitator, and recording it: the headers
 * for the answer, or the 402 that replaces it, with the reservation released so the payment can
 * be presented again.
 */
import type { Amount } from '../money.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { PaymentProof } from './offers.js';
import { RECEIPT_HEADERS, type Reservation } from './reservation.js';
import type { PaywallFinal } from './types.js';

/**
 * Settles `proof` (x402; at `cost` when it settles what the answer cost) and records it: the
 * headers for the answer, or the 402 that replaces it (the reservation released, so the payment
 * can be presented again).
 */
export async function settle(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  reservation: Reservation,
  cost?: Amount,
): Promise<PaywallFinal> {
  const outcome = await (proof.settle as NonNullable<PaymentProof['settle']>)(cost);
  const report =
    outcome.data === undefined ? undefined : { kind: proof.protocol, data: outcome.data };
  if (!outcome.ok) {
    reservation.release();
    const decision = await challenge(
      context,
      exchange,
      { status: 402, code: outcome.code, detail: outcome.message },
      {
        headers: [...outcome.headers, ...reservation.nothing],
        ...(report === undefined ? {} : { settlement: report }),
      },
    );
    if (decision.kind === 'respond') return decision;
    // The request turned free meanwhile: nothing to settle, nothing to replace.
    return { kind: 'pass', headers: outcome.headers };
  }
  reservation.settle();
  const { settlement } = outcome;
  exchange.trace?.charged(settlement);
  context.recorder.settlement({
    ...settlement,
    tokenId: proof.tokenId,
    service: exchange.route.service,
    protocol: proof.protocol,
    settledAt: exchange.now,
  });
  return {
    kind: 'pass',
    headers: [
      ...outcome.headers,
      [RECEIPT_HEADERS.charged, `${settlement.amount} ${settlement.unit}`],
    ],
    ...(report === undefined ? {} : { settlement: report }),
  };
}
