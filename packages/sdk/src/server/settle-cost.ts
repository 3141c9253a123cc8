/**
 * The charge of a payment that settles at what the answer cost (x402 `upto`): once the handler
 * commits to a successful status, it settles at the cost the handler reported (`setCost`) — or,
 * on a metered route, at what the meter reads once the answer ends — never above what the payer
 * authorised; without either, at the whole authorisation.
 */
import { type Amount, msatToUsd } from '../money.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { PaymentProof } from './offers.js';
import { createOutcomeCharge } from './outcome-charge.js';
import { type PriceInput, type PriceRequest, parsePrice } from './pricing.js';
import type { Reservation } from './reservation.js';
import { settle } from './settlement.js';
import type { PaymentContext, PaywallCharge, PaywallFinal } from './types.js';

/**
 * A cost in dollars, as the payment settles it: a cost in msat at the current rate, rounded up;
 * undefined (the whole authorisation) when there is no cost or no rate.
 */
async function costInUsd(
  context: PaywallContext,
  cost: PriceInput | undefined,
): Promise<Amount | undefined> {
  if (cost === undefined) return undefined;
  const amount = parsePrice(cost);
  if (amount.unit === 'usd' || context.rates === undefined) return amount;
  const rate = await context.rates.usdPerBtc();
  return { unit: 'usd', microUsd: msatToUsd(amount.msat, rate, 'ceil') };
}

/** See the module comment; `meterRequest` is the request a metered route's meter reads. */
export function costCharge(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  reservation: Reservation,
  payment: PaymentContext,
  meterRequest: PriceRequest | undefined,
): PaywallCharge {
  let reported: PriceInput | undefined;
  payment.setCost = (cost) => {
    reported = cost;
  };
  const settleAt = async (cost: PriceInput | undefined): Promise<PaywallFinal> => {
    let usd: Amount | undefined;
    try {
      usd = await costInUsd(context, cost);
    } catch (error) {
      context.logger.warn({ err: error }, 'a cost could not be read; settling what was authorised');
    }
    const final = await settle(context, exchange, proof, reservation, usd);
    return final.kind === 'pass'
      ? { ...final, headers: [...proof.headers, ...final.headers] }
      : final;
  };
  return createOutcomeCharge(exchange, meterRequest, {
    release() {
      reservation.release();
      return reservation.nothing;
    },
    metered: () => reported === undefined,
    charge: () => settleAt(reported),
    reserved: () => [],
    async end(reading, complete) {
      let cost = reported;
      if (cost === undefined) {
        try {
          cost = await reading.cost(complete);
        } catch (error) {
          context.logger.warn({ err: error }, 'a metered cost could not be read');
        }
      }
      // The answer has left: a failed settlement is logged, not answered.
      const final = await settleAt(cost);
      if (final.kind === 'respond') {
        context.logger.warn(
          { tokenId: proof.tokenId },
          'a payment settled after its answer failed',
        );
        return [];
      }
      return final.headers;
    },
  });
}
