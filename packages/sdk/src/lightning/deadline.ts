/**
 * A deadline for one backend operation (a payment, a wait for settlement), shared by the backends.
 */
import type { TollwayError } from '../errors.js';

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
 *   () => new TollwayError('payment_timeout', 'no final outcome in 30 s'),
 *   (signal) => client.request('POST', '/v1/xpay', { json, signal }),
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
