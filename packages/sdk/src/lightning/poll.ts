/**
 * Waiting on a backend whose API has no blocking wait or no timeout of its own (LNbits, phoenixd):
 * looking up again until a value is final, and bounding one request by a payment's deadline.
 */
import { TollwayError } from '../errors.js';

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
 * Runs `request` with a signal that aborts at `deadline` (unix ms) with a `payment_timeout` error: the
 * outcome of a payment request cut off this way is unknown, so the payment must be looked up later.
 * `request` also gets the time left, to give its transport a slightly longer timeout of its own.
 *
 * @example
 * ```ts
 * const res = await withPaymentDeadline(deadline, paymentHash, (signal, timeoutMs) =>
 *   http.request('POST', '/payinvoice', { form, signal, timeoutMs }),
 * );
 * ```
 */
export async function withPaymentDeadline<T>(
  deadline: number,
  paymentHash: string,
  request: (signal: AbortSignal, timeoutMs: number) => Promise<T>,
): Promise<T> {
  const remaining = Math.max(deadline - Date.now(), 1);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new TollwayError(
        'payment_timeout',
        'no outcome before the deadline; the payment may still complete',
        {
          details: { paymentHash, pending: true },
        },
      ),
    );
  }, remaining);
  try {
    return await request(controller.signal, remaining + 1_000);
  } finally {
    clearTimeout(timer);
  }
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
