/**
 * The state machine of a charge settled on the outcome, shared by a draw on a balance (draw.ts)
 * and a payment settled at what the answer cost (settle-cost.ts): a failed answer releases what is
 * held; a successful one is charged at once, or — on a metered route — read by the meter as it
 * leaves and charged when it ends. Each step happens once.
 */
import type { Exchange } from './exchange.js';
import type { MeterReading } from './meter.js';
import type { PriceRequest } from './pricing.js';
import type { PaywallCharge, PaywallFinal } from './types.js';

type Headers = Array<[name: string, value: string]>;

/** What a charge does at each step; see {@link createOutcomeCharge}. */
export interface OutcomeSteps {
  /** Nothing is charged: releases what is held, and gives the headers that say so. */
  release(): Headers;
  /** Whether a successful answer is read by the route's meter (else it is charged at commit). */
  metered(): boolean;
  /** Charges a successful answer at its commit. */
  charge(): PaywallFinal | Promise<PaywallFinal>;
  /** The headers of a metered answer's head. */
  reserved(): Headers;
  /** A chunk the meter read: undefined to let it go, or a promise (see `ChargeMeter.write`). */
  admit?(
    reading: MeterReading,
    say: ((bytes: Uint8Array) => void) | undefined,
  ): Promise<boolean> | undefined;
  /** The metered answer ended (`complete`) or stopped short: charges it, gives its receipt. */
  end(reading: MeterReading, complete: boolean): Promise<Headers>;
}

/** The charge of `exchange`; `meterRequest` is the request its route's meter reads, if metered. */
export function createOutcomeCharge(
  exchange: Exchange,
  meterRequest: PriceRequest | undefined,
  steps: OutcomeSteps,
): PaywallCharge {
  const { route } = exchange;
  let state: 'open' | 'metering' | 'done' = 'open';
  let reading: MeterReading | undefined;
  const charge: PaywallCharge = {
    commit(status, headers) {
      if (state !== 'open') return { kind: 'pass', headers: [] };
      if (status >= route.chargeBelow) {
        state = 'done';
        return { kind: 'pass', headers: steps.release() };
      }
      if (route.meter === undefined || meterRequest === undefined || !steps.metered()) {
        state = 'done';
        return steps.charge();
      }
      state = 'metering';
      reading = route.meter.open({ request: meterRequest, status, headers });
      return { kind: 'pass', headers: steps.reserved() };
    },
    release() {
      if (state === 'done') return [];
      state = 'done';
      return steps.release();
    },
  };
  if (route.meter !== undefined) {
    charge.meter = {
      write(chunk, say) {
        if (state !== 'metering' || reading === undefined) return undefined;
        reading.write(chunk);
        return steps.admit?.(reading, say);
      },
      async end(complete) {
        if (state !== 'metering' || reading === undefined) return [];
        state = 'done';
        return steps.end(reading, complete);
      },
    };
  }
  return charge;
}
