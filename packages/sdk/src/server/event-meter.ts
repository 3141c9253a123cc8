/**
 * A meter that prices an event stream per event — the Lightning session draft's price "per chunk
 * when streaming": every server-sent event costs the same. It tells its cost as the answer goes
 * (an event counts from its first field line, before the rest of it leaves), so a draw that reaches
 * what it holds holds more first, and a session's stream waits for a top-up when nothing is left
 * (see `sessions.topUpTimeout` of the paywall). Comment lines (`:`) and blank lines cost nothing.
 */
import { TollwayError } from '../errors.js';
import type { Meter } from './meter.js';
import { type PriceInput, parsePrice } from './pricing.js';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/**
 * Creates a meter charging `price` (in sats or msat) per event of the answer.
 *
 * @example
 * ```ts
 * const route = paywall.route({ service: 'ticks', price: '100 sat', balance: '500 sat', meter: createEventMeter('1 sat') });
 * ```
 */
export function createEventMeter(price: PriceInput): Meter {
  const amount = parsePrice(price);
  if (amount.unit !== 'msat') {
    throw new TollwayError('invalid_price', 'the price per event is in sats or msat');
  }
  const each = amount.msat;
  return {
    runningCost: true,
    open() {
      let events = 0n;
      let atLineStart = true;
      let inEvent = false;
      const costSoFar = () => events * each;
      return {
        write(chunk) {
          for (const byte of chunk) {
            if (byte === LF) {
              // A line break at a line's start ends the event (a blank line).
              if (atLineStart) inEvent = false;
              atLineStart = true;
            } else if (byte !== CR) {
              if (atLineStart && !inEvent && byte !== COLON) {
                inEvent = true;
                events += 1n;
              }
              atLineStart = false;
            }
          }
        },
        cost: costSoFar,
        costSoFar,
      };
    },
  };
}
