import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { pollUntil, withPaymentDeadline } from './poll.js';

describe('pollUntil', () => {
  it('looks up until the value is final', async () => {
    let calls = 0;
    const value = await pollUntil(
      async () => ++calls,
      (n) => n >= 3,
      { timeoutMs: 5_000, intervalMs: 10, timeoutMessage: 'never' },
    );
    expect(value).toBe(3);
    expect(calls).toBe(3);
  });

  it('fails with payment_timeout at the deadline, not before', async () => {
    const started = Date.now();
    const error = await pollUntil(
      async () => 'open',
      () => false,
      {
        timeoutMs: 150,
        intervalMs: 40,
        timeoutMessage: 'still open',
        details: { paymentHash: 'ab' },
      },
    ).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(isTollwayError(error, 'payment_timeout')).toBe(true);
    expect((error as Error).message).toBe('still open');
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('stops on abort with the signal reason', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 30);
    const pending = pollUntil(
      async () => 0,
      () => false,
      {
        timeoutMs: 10_000,
        intervalMs: 1_000,
        timeoutMessage: 'never',
        signal: controller.signal,
      },
    );
    await expect(pending).rejects.toThrow('caller gave up');
  });

  it('does not retry a failing lookup', async () => {
    let calls = 0;
    const failing = pollUntil(
      async () => {
        calls += 1;
        throw new Error('boom');
      },
      () => true,
      { timeoutMs: 1_000, intervalMs: 10, timeoutMessage: 'never' },
    );
    await expect(failing).rejects.toThrow('boom');
    expect(calls).toBe(1);
  });
});

describe('withPaymentDeadline', () => {
  it('aborts the request at the deadline with payment_timeout', async () => {
    const error = await withPaymentDeadline(Date.now() + 50, 'ab'.repeat(32), (signal) => {
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason)),
      );
    }).catch((e: unknown) => e);
    expect(isTollwayError(error, 'payment_timeout')).toBe(true);
    expect((error as { details?: unknown }).details).toEqual({
      paymentHash: 'ab'.repeat(32),
      pending: true,
    });
  });

  it('passes the time left, with a margin, and leaves a finished request alone', async () => {
    let signalSeen: AbortSignal | undefined;
    const result = await withPaymentDeadline(
      Date.now() + 200,
      'cd'.repeat(32),
      async (signal, timeoutMs) => {
        signalSeen = signal;
        expect(timeoutMs).toBeGreaterThan(1_000);
        expect(timeoutMs).toBeLessThanOrEqual(1_200);
        return 'done';
      },
    );
    expect(result).toBe('done');
    await new Promise((r) => setTimeout(r, 250));
    expect(signalSeen?.aborted).toBe(false);
  });
});
