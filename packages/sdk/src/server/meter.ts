/**
 * Meters: what a request cost, read from its answer (LLM tokens, bytes, rows). A metered route
 * holds its `price` — the most a request may cost — from a prepaid balance before the request runs,
 * and settles at the cost its meter reads from the answer as it streams (or that the handler
 * reports), never above what was held.
 */
import type { PriceInput, PriceRequest } from './pricing.js';
import type { HeaderReader } from './types.js';

/** The answer a meter reads: the request it answers, and its status and headers. */
export interface MeteredAnswer {
  request: PriceRequest;
  status: number;
  /** The answer's headers, when the caller knows them (the gateway does; adapters may not). */
  headers: HeaderReader | undefined;
}

/** One answer being read; see {@link Meter}. */
export interface MeterReading {
  /** A chunk of the answer's body, in order, as it leaves. */
  write(chunk: Uint8Array): void;
  /**
   * What the answer cost, once its body ended (`complete`) or stopped short (the client went
   * away, the upstream failed mid-answer); undefined when the body did not say.
   */
  cost(complete: boolean): PriceInput | undefined | Promise<PriceInput | undefined>;
  /**
   * What the answer read so far has cost, msat, for a meter that can tell as the answer goes (a
   * price per event: `createEventMeter`). A draw on a balance then holds more of it before the
   * answer goes past what it holds, and a session's answer waits for a top-up when nothing is
   * left; a meter without it is held at the route's price, the most a request may cost.
   */
  costSoFar?(): bigint;
}

/** Reads what answers cost; see the module comment. */
export interface Meter {
  /** True when its readings tell their cost as the answer goes ({@link MeterReading.costSoFar}). */
  readonly runningCost?: boolean;
  open(answer: MeteredAnswer): MeterReading;
}
