/**
 * Waiting on a backend whose API has no blocking wait (LNbits, phoenixd) or a payment the safety
 * layer must resolve: looking up again until a value is final.
 */
import { TollwayError } from '../errors.js';
import type { InvoiceStatus, LightningBackend } from './types.js';

/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Fails with `payment_timeout` once this many ms have passed and the value is still not final. */
  timeoutMs: number;
  /** Delay between look-ups. */
  intervalMs: number;
  /** Aborting rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Message of the `payment_timeout` error. */
  timeoutMessage: string;
  /** Details of the `payment_timeout` error. */
  details?: Record<string, unknown>;
}

/**
 * Calls `lookup` until `isFinal` accepts its value, and returns that value. The first look-up runs at
 * once; errors of `lookup` are not retried.
 *
 * @example
 * ```ts
 * const status = await pollUntil(() => backend.lookupInvoice(hash), (s) => s.state !== 'open', {
 *   timeoutMs: 30_000, intervalMs: 1_000, timeoutMessage: 'invoice still open',
 * });
 * ```
 */
export async function pollUntil<T>(
  lookup: () => Promise<T>,
  isFinal: (value: T) => boolean,
  options: PollOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const value = await lookup();
    if (isFinal(value)) return value;
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new TollwayError(
        'payment_timeout',
        options.timeoutMessage,
        options.details ? { details: options.details } : {},
      );
    }
    await sleep(Math.min(options.intervalMs, remaining), options.signal);
  }
}

/**
 * `waitForSettlement` of a backend that can only look an invoice up: looks it up every `intervalMs`
 * until it is no longer open, failing with `payment_timeout` after `timeoutMs` (default 60 000 ms).
 *
 * @example
 * ```ts
 * const backend = { lookupInvoice, waitForSettlement: pollForSettlement(lookupInvoice, 1_000) };
 * ```
 */
export function pollForSettlement(
  lookupInvoice: (paymentHash: string) => Promise<InvoiceStatus>,
  intervalMs: number,
): LightningBackend['waitForSettlement'] {
  return (paymentHash, waitOptions = {}) => {
    const timeoutMs = waitOptions.timeoutMs ?? 60_000;
    return pollUntil(
      () => lookupInvoice(paymentHash),
      (s) => s.state !== 'open',
      {
        timeoutMs,
        intervalMs,
        timeoutMessage: `invoice still open after ${timeoutMs} ms`,
        details: { paymentHash },
        ...(waitOptions.signal ? { signal: waitOptions.signal } : {}),
      },
    );
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
