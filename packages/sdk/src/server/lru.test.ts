import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLru } from './lru.js';

describe('createLru', () => {
  it('keeps recently used entries and forgets old ones', () => {
    const lru = createLru<string, number>(4);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    lru.set('d', 4);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.get('d')).toBe(4);
    expect(lru.delete('a')).toBe(true);
    expect(lru.delete('a')).toBe(false);
  });

  it('never holds more than its size, and keeps the latest value of recent keys', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer())),
        (max, writes) => {
          const lru = createLru<number, number>(max);
          for (const [key, value] of writes) lru.set(key, value);
          expect(lru.size).toBeLessThanOrEqual(max);
          const [lastKey, lastValue] = writes.at(-1) ?? [undefined, undefined];
          if (lastKey !== undefined) expect(lru.get(lastKey)).toBe(lastValue);
        },
      ),
    );
  });

  it('keeps an entry through at least half its size of newer entries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 50 }), (max) => {
        const lru = createLru<number, number>(max);
        lru.set(-1, -1);
        for (let key = 0; key < Math.floor(max / 2) - 1; key++) lru.set(key, key);
        expect(lru.get(-1)).toBe(-1);
      }),
    );
  });
});
