/**
 * Draws on a prepaid balance: held at the request's price (the most it may cost), charged on the
 * outcome at what the handler reported it cost, or — on a metered route — at what the meter reads
 * from the answer once it ends; never more than was held. A meter that tells its cost as the answer
 * goes draws through a cover (balance-cover.ts), which holds more as the answer needs it.
 */

import { minBigint } from '../internal/bigint.js';
import { respond, storeCall } from './answers.js';
import type { BalanceCover } from './balance-cover.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import type { MeterReading } from './meter.js';
import { createOutcomeCharge } from './outcome-charge.js';
import { type PriceInput, type PriceRequest, parsePrice, priceToMsat } from './pricing.js';
import { RECEIPT_HEADERS, type Reservation } from './reservation.js';
import type { PaymentContext, PaywallCharge, PaywallFinal } from './types.js';

type Headers = Array<[name: string, value: string]>;

/** A draw on a balance: what was held, and what the handler reported it cost. */
export interface Draw {
  setCost(cost: PriceInput): void;
  /** The reported cost, msat, at most what is held; undefined when none was reported. */
  reported(): bigint | Promise<bigint> | undefined;
  /** What is held, msat. */
  heldMsat(): bigint;
  /**
   * Charges `charged` msat (at most what is held) and gives the receipt: at once when the charge
   * is written in the background, else once the store has it (see {@link Reservation.settle}).
   */
  settle(charged: bigint): Headers | Promise<Headers>;
  /** Charges nothing and gives the receipt that says so. */
  release(): Array<[string, string]>;
  /** The cover, when the draw holds more as a metered answer goes. */
  cover: BalanceCover | undefined;
}

export function createDraw(
  context: PaywallContext,
  reservation: Reservation,
  payment: PaymentContext,
  cover: BalanceCover | undefined,
): Draw {
  let cost: PriceInput | undefined;
  // The balance left once this draw is charged at what it held (others may hold part of it).
  const left = payment.remainingBalanceMsat ?? 0n;
  const heldMsat = () => cover?.heldMsat() ?? reservation.heldMsat;
  return {
    cover,
    heldMsat,
    setCost(reported) {
      cost = reported;
    },
    reported() {
      if (cost === undefined) return undefined;
      const amount = parsePrice(cost);
      if (amount.unit === 'msat') return minBigint(amount.msat, heldMsat());
      return priceToMsat(amount, context.rates).then((msat) => minBigint(msat, heldMsat()));
    },
    settle(charged) {
      const held = heldMsat();
      const leftAtHeld = cover?.leftAtHeld() ?? left;
      const written = cover === undefined ? reservation.settle(charged) : cover.settle(charged);
      const receipt: Headers = [
        [RECEIPT_HEADERS.charged, `${charged} msat`],
        [RECEIPT_HEADERS.remaining, `${leftAtHeld + held - charged} msat`],
      ];
      return written === undefined ? receipt : written.then(() => receipt);
    },
    release() {
      if (cover === undefined) reservation.release();
      else cover.release();
      return reservation.nothing;
    },
  };
}

/**
 * The charge of a draw on a balance: charged on commit at the reported cost (or the price held)
 * — or, on a metered route, at what the meter reads once the answer ends (what it delivered, when
 * its cover ended it for want of funds).
 */
export function drawCharge(
  context: PaywallContext,
  exchange: Exchange,
  draw: Draw,
  meterRequest: PriceRequest | undefined,
): PaywallCharge {
  const { cover } = draw;
  /** The answer passes with its receipt once charged; a charge not written answers 503 instead. */
  const passed = (receipt: Headers | Promise<Headers>): PaywallFinal | Promise<PaywallFinal> => {
    if (!('then' in receipt)) return { kind: 'pass', headers: receipt };
    return storeCall(context, () => receipt).then(
      (stored): PaywallFinal =>
        'value' in stored
          ? { kind: 'pass', headers: stored.value }
          : respond(context, exchange, stored),
    );
  };
  const charged = (reported: bigint | Promise<bigint> | undefined) => {
    if (reported === undefined) return passed(draw.settle(draw.heldMsat()));
    if (typeof reported === 'bigint') return passed(draw.settle(reported));
    return reported.then((msat) => passed(draw.settle(msat)));
  };
  return createOutcomeCharge(exchange, meterRequest, {
    release: () => draw.release(),
    metered: () => true,
    charge: () => charged(draw.reported()),
    reserved: () => [[RECEIPT_HEADERS.reserved, `${draw.heldMsat()} msat`]],
    ...(cover === undefined
      ? {}
      : {
          admit: (reading, say) =>
            reading.costSoFar === undefined ? undefined : cover.admit(reading.costSoFar(), say),
        }),
    // The answer's end waits for its charge: a charge that could not be written rejects, and
    // the caller cuts the answer short instead of ending it.
    async end(reading, complete) {
      const reported = await draw.reported();
      if (reported !== undefined) return draw.settle(reported);
      // What the answer delivered, chunk by chunk: its cover let each go (one that waited for a
      // top-up and never went is not charged, nor is what was held for it).
      if (cover !== undefined) return draw.settle(minBigint(cover.admitted(), draw.heldMsat()));
      return draw.settle(await meteredCost(context, reading, complete, draw.heldMsat()));
    },
  });
}

/**
 * What a metered answer cost, read by the meter (at most what was held); what was held when it
 * cannot tell.
 */
async function meteredCost(
  context: PaywallContext,
  reading: MeterReading,
  complete: boolean,
  heldMsat: bigint,
): Promise<bigint> {
  try {
    const metered = await reading.cost(complete);
    if (metered === undefined) return heldMsat;
    const msat = await priceToMsat(parsePrice(metered), context.rates);
    return minBigint(msat, heldMsat);
  } catch (error) {
    context.logger.warn({ err: error }, 'a metered cost could not be read; charged what was held');
    return heldMsat;
  }
}
