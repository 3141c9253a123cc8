import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { pollForSettlement, pollUntil } from './poll.js';
import type { InvoiceStatus } from './types.js';

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
    // Not long after it: a loaded machine may stall for a second or two.
    expect(elapsed).toBeLessThan(4_000);
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

describe('pollForSettlement', () => {
  it('looks the invoice up until it is no longer open, then fails with payment_timeout', async () => {
    const states: InvoiceStatus['state'][] = ['open', 'open', 'settled'];
    const wait = pollForSettlement(async (paymentHash) => {
      return { paymentHash, state: states.shift() ?? 'open' };
    }, 10);
    expect(await wait('ab', { timeoutMs: 5_000 })).toEqual({ paymentHash: 'ab', state: 'settled' });
    expect(states).toEqual([]);
    const error = await wait('cd', { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(isTollwayError(error, 'payment_timeout')).toBe(true);
    expect((error as { details?: unknown }).details).toEqual({ paymentHash: 'cd' });
  });
});
