import { describe, expect, it, vi } from 'vitest';
import { TollwayError } from '../errors.js';
import { createMemoryStore } from '../stores/memory.js';
import { createLimitSync } from './limit-sync.js';
import { createRateLimiter, type RateLimit } from './rate-limit.js';
import type { LimitStore } from './store.js';

const silent = { warn: () => {}, error: () => {} };
const LIMIT: RateLimit = { requests: 6, per: '1m', burst: 3 };

/** One instance of an API: its own limiter and sync, on a shared store and clock. */
function instance(store: LimitStore, now: () => number, syncIntervalMs = 60_000) {
  const limiter = createRateLimiter(LIMIT, now);
  const sync = createLimitSync({
    store,
    scope: 'api',
    buckets: [limiter.shared],
    syncIntervalMs,
    now,
    logger: silent,
  });
  return { limiter, sync };
}

describe('createLimitSync', () => {
  it('makes instances count one bucket: after a sync each refuses what the others took', async () => {
    let clock = 1_000_000;
    const store = createMemoryStore();
    const [a, b, c] = [0, 1, 2].map(() => instance(store, () => clock));
    if (a === undefined || b === undefined || c === undefined) throw new Error('three instances');
    expect([1, 2, 3].map(() => a.limiter.take('net').ok)).toEqual([true, true, true]);
    await a.sync.flush();
    // b has never heard of the key: its first take passes (the documented overshoot), and its
    // sync teaches it the shared clock: four requests taken of a burst of three.
    expect(b.limiter.take('net')).toEqual({ ok: true });
    await b.sync.flush();
    expect(b.limiter.take('net')).toEqual({ ok: false, retryAfterSeconds: 20 });
    expect(c.limiter.take('net').ok).toBe(true);
    await c.sync.flush();
    // 20 s later a's own clock has room for one; it takes it and learns the others' two at its
    // next sync. Alone it would have room for another now.
    clock += 20_000;
    expect(a.limiter.take('net')).toEqual({ ok: true });
    await a.sync.flush();
    expect(a.limiter.take('net')).toEqual({ ok: false, retryAfterSeconds: 20 });
    clock += 20_000;
    expect(a.limiter.take('net')).toEqual({ ok: true });
    // Another key and another scope are other buckets.
    expect(b.limiter.take('other').ok).toBe(true);
  });

  it('keeps what it took while the store fails, and shares it once the store is back', async () => {
    let failing = true;
    const store = createMemoryStore();
    const flaky: LimitStore = {
      takeFreebie: (...args) => store.takeFreebie(...args),
      advanceBuckets: (...args) =>
        failing
          ? Promise.reject(new TollwayError('store_error', 'down'))
          : store.advanceBuckets(...args),
    };
    const warnings: string[] = [];
    const clock = () => 5_000_000;
    const limiter = createRateLimiter(LIMIT, clock);
    const sync = createLimitSync({
      store: flaky,
      scope: 'api',
      buckets: [limiter.shared],
      now: clock,
      logger: { ...silent, warn: (_context, message) => warnings.push(message) },
    });
    limiter.take('net');
    limiter.take('net');
    await sync.flush();
    await sync.flush();
    expect(warnings).toEqual(['rate limits cannot be shared now; each instance limits alone']);
    failing = false;
    await sync.flush();
    const [clockAfter] = await store.advanceBuckets(
      [{ key: `api|${limiter.shared.name}|net`, costMicros: 0, fromMicros: 0 }],
      clock(),
    );
    // Two requests of 10 s each, from the time of the first.
    expect(clockAfter?.tatMicros).toBe(5_000_000_000 + 20_000_000);
  });

  it('syncs at once when a key new to this instance is taken, not at the next interval', async () => {
    const store = createMemoryStore();
    const { limiter, sync } = instance(store, Date.now, 60_000);
    sync.start();
    try {
      limiter.take('fresh');
      const key = `api|${limiter.shared.name}|fresh`;
      await vi.waitFor(async () => {
        const [bucket] = await store.advanceBuckets(
          [{ key, costMicros: 0, fromMicros: 0 }],
          Date.now(),
        );
        expect(bucket?.tatMicros ?? 0).toBeGreaterThan(Date.now() * 1000);
      });
    } finally {
      await sync.stop();
    }
  });

  it('shares what is left when it stops', async () => {
    const store = createMemoryStore();
    const { limiter, sync } = instance(store, () => 7_000_000);
    sync.start();
    limiter.take('net');
    await sync.stop();
    const [bucket] = await store.advanceBuckets(
      [{ key: `api|${limiter.shared.name}|net`, costMicros: 0, fromMicros: 0 }],
      7_000_000,
    );
    expect(bucket?.tatMicros).toBe(7_000_000_000 + 10_000_000);
  });
});
