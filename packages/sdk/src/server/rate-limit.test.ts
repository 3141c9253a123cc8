import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChallengeLimiter, createRateLimiter } from './rate-limit.js';

describe('createRateLimiter', () => {
  it('allows a burst, then refills at the given rate, per key', () => {
    let clock = 0;
    const limiter = createRateLimiter({ requests: 6, per: '1m', burst: 2 }, () => clock);
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 10 });
    expect(limiter.take('b')).toEqual({ ok: true });
    clock += 4_000;
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 6 });
    clock += 6_000;
    expect(limiter.take('a')).toEqual({ ok: true });
    clock += 3_600_000;
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')].map((d) => d.ok)).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('never lets more through than the burst plus what the elapsed time refilled', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 200 }),
        (requests, burst, steps) => {
          let clock = 0;
          const limiter = createRateLimiter({ requests, per: 60, burst }, () => clock);
          let passed = 0;
          for (const step of steps) {
            clock += step;
            if (limiter.take('k').ok) passed += 1;
          }
          expect(passed).toBeLessThanOrEqual(burst + Math.floor((clock * requests) / 60_000) + 1);
        },
      ),
    );
  });

  it('keeps what a bucket holds when the clock is set back', () => {
    let clock = 10_000_000;
    const limiter = createRateLimiter({ requests: 6, per: '1m', burst: 2 }, () => clock);
    clock += 7_200_000;
    expect(limiter.take('a')).toEqual({ ok: true });
    clock -= 7_200_000;
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 10 });
  });

  it('refuses malformed limits', () => {
    expect(() => createRateLimiter({ requests: 0, per: '1m' }, Date.now)).toThrowError(
      expect.objectContaining({ code: 'invalid_config' }),
    );
    expect(() => createRateLimiter({ requests: 1, per: 'often' }, Date.now)).toThrowError(
      expect.objectContaining({ code: 'invalid_config' }),
    );
  });
});

describe('createChallengeLimiter', () => {
  it('takes from the network bucket first, then from the total shared by every network', () => {
    let clock = 0;
    const limiter = createChallengeLimiter(
      {
        network: { requests: 1, per: '1m', burst: 2 },
        total: { requests: 60, per: '1m', burst: 3 },
      },
      () => clock,
    );
    const take = (network: string) => limiter?.take(network);
    expect([take('a'), take('a'), take('a')]).toEqual([
      { ok: true },
      { ok: true },
      { ok: false, retryAfterSeconds: 60, limit: 'network' },
    ]);
    expect(take('b')).toEqual({ ok: true });
    expect(take('c')).toEqual({ ok: false, retryAfterSeconds: 1, limit: 'total' });
    clock += 1000;
    expect(take('c')).toEqual({ ok: true });
  });

  it('has defaults, and is absent when both limits are off', () => {
    expect(createChallengeLimiter({ network: false, total: false }, () => 0)).toBeUndefined();
    const limiter = createChallengeLimiter({ network: undefined, total: undefined }, () => 0);
    const networks = Array.from({ length: 200 }, (_, i) => `10.0.${i}.0/24`);
    const granted = networks.filter((network) => limiter?.take(network).ok).length;
    expect(granted).toBe(100);
  });
});
