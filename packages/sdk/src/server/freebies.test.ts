import { describe, expect, it } from 'vitest';
import { TollwayError } from '../errors.js';
import { createMemoryStore } from '../stores/memory.js';
import { createFreebies } from './freebies.js';
import type { LimitStore } from './store.js';

const silent = { warn: () => {}, error: () => {} };

describe('createFreebies', () => {
  it('gives each network its requests per period, from its first request', async () => {
    let clock = 1_000;
    const store = createMemoryStore();
    const freebies = createFreebies(
      { requests: 2, per: '1h' },
      { store, scope: 's', now: () => clock, logger: silent },
    );
    expect([await freebies.take('a'), await freebies.take('a'), await freebies.take('a')]).toEqual([
      true,
      true,
      false,
    ]);
    expect(await freebies.take('b')).toBe(true);
    clock += 3_599_999;
    // Used up: answered from memory, without asking the store.
    expect(freebies.take('a')).toBe(false);
    clock += 1;
    expect(await freebies.take('a')).toBe(true);
  });

  it('counts one allowance for every paywall on one store and scope', async () => {
    const store = createMemoryStore();
    const shared = { store, scope: 'api', now: () => 1_000, logger: silent };
    const [one, two] = [1, 2].map(() => createFreebies({ requests: 3, per: '1d' }, shared));
    const takes = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? one : two)?.take('203.0.113.0/24')),
    );
    expect(takes.filter(Boolean)).toHaveLength(3);
    const other = createFreebies({ requests: 3, per: '1d' }, { ...shared, scope: 'other' });
    expect(await other.take('203.0.113.0/24')).toBe(true);
  });

  it('gives nothing away while the store fails, and says so', async () => {
    const warnings: string[] = [];
    const failing: LimitStore = {
      takeFreebie: () => Promise.reject(new TollwayError('store_error', 'down')),
      advanceBuckets: () => Promise.reject(new TollwayError('store_error', 'down')),
    };
    const freebies = createFreebies(
      { requests: 5, per: '1h' },
      {
        store: failing,
        scope: 's',
        now: Date.now,
        logger: { ...silent, warn: (_context, message) => warnings.push(message) },
      },
    );
    expect(await freebies.take('a')).toBe(false);
    expect(warnings).toEqual(['freebies cannot be counted now; the request is not free']);
  });

  it('refuses malformed options', () => {
    const shared = { store: createMemoryStore(), scope: 's', now: Date.now, logger: silent };
    expect(() => createFreebies({ requests: 1.5, per: '1h' }, shared)).toThrowError(
      expect.objectContaining({ code: 'invalid_config' }),
    );
  });
});
