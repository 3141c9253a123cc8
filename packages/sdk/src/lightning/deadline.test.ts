import { describe, expect, it } from 'vitest';
import { TollwayError } from '../errors.js';
import { paymentTimeout, withDeadline } from './deadline.js';

const timeout = () => new TollwayError('payment_timeout', 'too slow');

/** A task that waits `ms` unless its signal aborts first. */
function wait<T>(ms: number, value: T): (signal: AbortSignal) => Promise<T> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(value), ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('aborted'));
      });
    });
}

describe('withDeadline', () => {
  it('returns the result of a task that finishes in time, and leaves its signal alone', async () => {
    let seen: AbortSignal | undefined;
    const result = await withDeadline(50, timeout, (signal) => {
      seen = signal;
      return wait(5, 'done')(signal);
    });
    expect(result).toBe('done');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen?.aborted).toBe(false);
  });

  it('aborts a slow task and fails with the timeout error', async () => {
    let seen: AbortSignal | undefined;
    const started = Date.now();
    const outcome = withDeadline(30, timeout, (signal) => {
      seen = signal;
      return wait(5_000, 'late')(signal);
    });
    await expect(outcome).rejects.toMatchObject({ code: 'payment_timeout' });
    expect(seen?.aborted).toBe(true);
    // Well before the task's own 5 s: a loaded machine may stall for a second or two.
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("keeps a task's own error when it fails in time", async () => {
    const failing = async () => {
      throw new TollwayError('no_route', 'nowhere to go');
    };
    await expect(withDeadline(1_000, timeout, failing)).rejects.toMatchObject({ code: 'no_route' });
  });

  it("fails with the caller's reason when the caller aborts, before or during the task", async () => {
    const before = new AbortController();
    before.abort(new Error('cancelled early'));
    await expect(withDeadline(1_000, timeout, wait(5_000, 'x'), before.signal)).rejects.toThrow(
      'cancelled early',
    );

    const during = new AbortController();
    setTimeout(() => during.abort(new Error('cancelled')), 10);
    await expect(withDeadline(1_000, timeout, wait(5_000, 'x'), during.signal)).rejects.toThrow(
      'cancelled',
    );
  });
});

describe('paymentTimeout', () => {
  it('marks the payment as pending, to be looked up by hash', () => {
    const error = paymentTimeout('ab'.repeat(32), 50);
    expect(error.code).toBe('payment_timeout');
    expect(error.details).toEqual({ paymentHash: 'ab'.repeat(32), pending: true });
  });
});
