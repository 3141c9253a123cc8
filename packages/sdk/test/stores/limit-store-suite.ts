/**
 * One behavioural suite for the counters behind freebies and rate limits (`LimitStore`): every
 * Store runs it (from store-suite.ts).
 */
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../../src/errors.js';
import type { LimitStore } from '../../src/server/store.js';

/** A fresh limit store, and another instance over the same state when there can be one. */
export interface LimitStoreFixture {
  store: LimitStore;
  peer?: LimitStore;
}

/** 2026-03-14 10:00:00 UTC. */
const NOW = Date.UTC(2026, 2, 14, 10);
const MICROS = NOW * 1000;
const DAY = 86_400_000;

/**
 * Registers the limit-store tests; `fixture()` gives the stores of the current test.
 *
 * @example
 * ```ts
 * describeLimitStoreSuite('memory', () => ({ store }));
 * ```
 */
export function describeLimitStoreSuite(name: string, fixture: () => LimitStoreFixture): void {
  describe(`${name} limit store`, () => {
    const both = (): LimitStore[] => {
      const { store, peer } = fixture();
      return peer === undefined ? [store] : [store, peer];
    };

    it('grants a freebie allowance exactly, under concurrency and across instances', async () => {
      const stores = both();
      const takes = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          stores[i % stores.length]!.takeFreebie('net-a', { requests: 10, periodMs: DAY }, NOW),
        ),
      );
      expect(takes.filter((take) => take.granted)).toHaveLength(10);
      expect(new Set(takes.map((take) => take.resetsAt))).toEqual(new Set([NOW + DAY]));
      const other = await fixture().store.takeFreebie(
        'net-b',
        { requests: 10, periodMs: DAY },
        NOW,
      );
      expect(other).toEqual({ granted: true, resetsAt: NOW + DAY });
    });

    it('starts a new freebie window once the last one ended', async () => {
      const { store } = fixture();
      const allowance = { requests: 1, periodMs: 60_000 };
      expect(await store.takeFreebie('k', allowance, NOW)).toEqual({
        granted: true,
        resetsAt: NOW + 60_000,
      });
      expect(await store.takeFreebie('k', allowance, NOW + 59_999)).toEqual({
        granted: false,
        resetsAt: NOW + 60_000,
      });
      expect(await store.takeFreebie('k', allowance, NOW + 60_000)).toEqual({
        granted: true,
        resetsAt: NOW + 120_000,
      });
    });

    it('advances a bucket clock from its own time or the first take, whichever is later', async () => {
      const { store } = fixture();
      expect(
        await store.advanceBuckets([{ key: 'b', costMicros: 3_000_000, fromMicros: MICROS }], NOW),
      ).toEqual([{ key: 'b', tatMicros: MICROS + 3_000_000 }]);
      // The clock is ahead of the take: the cost adds to it.
      expect(
        await store.advanceBuckets(
          [{ key: 'b', costMicros: 1_000_000, fromMicros: MICROS + 1_000_000 }],
          NOW,
        ),
      ).toEqual([{ key: 'b', tatMicros: MICROS + 4_000_000 }]);
      // A read (cost 0) tells the clock without moving it.
      expect(await store.advanceBuckets([{ key: 'b', costMicros: 0, fromMicros: 0 }], NOW)).toEqual(
        [{ key: 'b', tatMicros: MICROS + 4_000_000 }],
      );
      // The clock is behind the take (the bucket refilled): it starts again from the take.
      const later = MICROS + 10_000_000;
      expect(
        await store.advanceBuckets([{ key: 'b', costMicros: 500, fromMicros: later }], NOW),
      ).toEqual([{ key: 'b', tatMicros: later + 500 }]);
    });

    it('adds every advance of concurrent instances, many keys at once', async () => {
      const stores = both();
      const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
      await Promise.all(
        Array.from({ length: 10 }, (_, round) =>
          stores[round % stores.length]!.advanceBuckets(
            keys.map((key) => ({ key, costMicros: 1000, fromMicros: MICROS })),
            NOW,
          ),
        ),
      );
      const clocks = await fixture().store.advanceBuckets(
        keys.map((key) => ({ key, costMicros: 0, fromMicros: 0 })),
        NOW,
      );
      expect(clocks).toHaveLength(600);
      expect(new Set(clocks.map((clock) => clock.tatMicros))).toEqual(new Set([MICROS + 10_000]));
    });

    it('refuses malformed allowances and advances', async () => {
      const { store } = fixture();
      const failures = await Promise.all([
        store.takeFreebie('k', { requests: 0, periodMs: 1000 }, NOW).catch((e: unknown) => e),
        store.takeFreebie('k', { requests: 1, periodMs: 0.5 }, NOW).catch((e: unknown) => e),
        store
          .advanceBuckets([{ key: 'k', costMicros: -1, fromMicros: MICROS }], NOW)
          .catch((e: unknown) => e),
        store
          .advanceBuckets(
            [
              { key: 'k', costMicros: 1, fromMicros: MICROS },
              { key: 'k', costMicros: 1, fromMicros: MICROS },
            ],
            NOW,
          )
          .catch((e: unknown) => e),
      ]);
      for (const failure of failures) {
        expect(isTollwayError(failure) && failure.code).toBe('invalid_config');
      }
    });
  });
}
