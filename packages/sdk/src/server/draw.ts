/**
 * Draws on a prepaid balance: held at the request's price (the most it may cost), charged on the
 * outcome at what the handler reported it cost, or — on a metered route — at what the meter reads
 * from the answer once it ends; never more than was held.
 */
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { MeterReading } from './meter.js';
import { type PriceInput, type PriceRequest, parsePrice, priceToMsat } from './pricing.js';
import { RECEIPT_HEADERS, type Reservation } from './reservation.js';
import type { PaymentContext, PaywallCharge } from './types.js';

/** A draw on a balance: what was held, and what the handler reported it cost. */
export interface Draw {
  setCost(cost: PriceInput): void;
  /** The reported cost, msat, at most what was held; undefined when none was reported. */
  reported(): bigint | Promise<bigint> | undefined;
  /** The receipt for a draw of `charged` msat. */
  receipt(charged: bigint): Array<[string, string]>;
}

export function createDraw(
  context: PaywallContext,
  reservation: Reservation,
  payment: PaymentContext,
): Draw {
  let cost: PriceInput | undefined;
  const held = reservation.heldMsat;
  // The balance left once this draw is charged at what it held (others may hold part of it).
  const leftAtHeld = payment.remainingBalanceMsat ?? 0n;
  return {
    setCost(reported) {
      cost = reported;
    },
    reported() {
      if (cost === undefined) return undefined;
      const amount = parsePrice(cost);
      if (amount.unit === 'msat') return minBigint(amount.msat, held);
      return priceToMsat(amount, context.rates).then((msat) => minBigint(msat, held));
    },
    receipt(charged) {
      return [
        [RECEIPT_HEADERS.charged, `${charged} msat`],
        [RECEIPT_HEADERS.remaining, `${leftAtHeld + held - charged} msat`],
      ];
    },
  };
}

/**
 * The charge of a draw on a balance: charged on commit at the reported cost (or the price held)
 * — or, on a metered route, at what the meter reads once the answer ends.
 */
export function drawCharge(
  context: PaywallContext,
  exchange: Exchange,
  reservation: Reservation,
  draw: Draw,
  meterRequest: PriceRequest | undefined,
): PaywallCharge {
  const { route } = exchange;
  let state: 'open' | 'metering' | 'done' = 'open';
  let reading: MeterReading | undefined;
  const settleAt = (charged: bigint): Array<[string, string]> => {
    reservation.settle(charged);
    return draw.receipt(charged);
  };
  const charge: PaywallCharge = {
    commit(status, headers) {
      if (state !== 'open') return { kind: 'pass', headers: [] };
      if (status >= route.chargeBelow) {
        state = 'done';
        reservation.release();
        return { kind: 'pass', headers: reservation.nothing };
      }
      if (route.meter === undefined || meterRequest === undefined) {
        state = 'done';
        const reported = draw.reported();
        if (reported === undefined)
          return { kind: 'pass', headers: settleAt(reservation.heldMsat) };
        if (typeof reported === 'bigint') return { kind: 'pass', headers: settleAt(reported) };
        return reported.then((charged) => ({ kind: 'pass', headers: settleAt(charged) }));
      }
      state = 'metering';
      reading = route.meter.open({ request: meterRequest, status, headers });
      return {
        kind: 'pass',
        headers: [[RECEIPT_HEADERS.reserved, `${reservation.heldMsat} msat`]],
      };
    },
    release() {
      if (state === 'done') return [];
      state = 'done';
      reservation.release();
      return reservation.nothing;
    },
  };
  if (route.meter !== undefined) {
    charge.meter = {
      write(chunk) {
        if (state === 'metering') reading?.write(chunk);
      },
      async end(complete) {
        if (state !== 'metering') return [];
        state = 'done';
        const reported = await draw.reported();
        if (reported !== undefined) return settleAt(reported);
        // What the answer cost, read by the meter; what was held when it cannot tell.
        try {
          const metered = await reading?.cost(complete);
          if (metered === undefined) return settleAt(reservation.heldMsat);
          const msat = await priceToMsat(parsePrice(metered), context.rates);
          return settleAt(minBigint(msat, reservation.heldMsat));
        } catch (error) {
          context.logger.warn(
            { err: error },
            'a metered cost could not be read; charged what was held',
          );
          return settleAt(reservation.heldMsat);
        }
      },
    };
  }
  return charge;
}

function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
