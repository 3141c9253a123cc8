/**
 * A deadline for one backend operation (a payment, a wait for settlement), shared by the backends.
 */
import { TollwayError } from '../errors.js';

/** Extra time given to the socket beyond an operation's own deadline, so that the deadline fires first. */
export const SOCKET_GRACE_MS = 5_000;

/**
 * Runs `task` with a signal that aborts when `timeoutMs` passes or when `signal` aborts. If the
 * deadline passed first, the task's failure is replaced by `onTimeout()`; if the caller aborted, by
 * the caller's abort reason. A task that finishes in time keeps its own result or error.
 *
 * The task must pass the signal on to whatever it waits for (an HTTP request), so that the
 * deadline also stops the waiting.
 *
 * @example
 * ```ts
 * const result = await withDeadline(
 *   30_000,
 *   () => paymentTimeout(paymentHash, 30_000),
 *   (signal) => client.request('POST', '/v1/xpay', { json, signal, timeoutMs: 30_000 + SOCKET_GRACE_MS }),
 * );
 * ```
 */
export async function withDeadline<T>(
  timeoutMs: number,
  onTimeout: () => TollwayError,
  task: (signal: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (signal?.aborted) throw signal.reason;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const forward = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  try {
    return await task(controller.signal);
  } catch (error) {
    if (timedOut) throw onTimeout();
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', forward);
  }
}

/**
 * The `payment_timeout` of a payment with no outcome by its deadline: it may still complete, so it
 * must be looked up by hash later.
 *
 * @example
 * ```ts
 * await withDeadline(timeoutMs, () => paymentTimeout(paymentHash, timeoutMs), pay);
 * ```
 */
export function paymentTimeout(paymentHash: string, timeoutMs: number): TollwayError {
  return new TollwayError(
    'payment_timeout',
    `payment not final within ${timeoutMs} ms; look it up by hash`,
    { details: { paymentHash, pending: true } },
  );
}
