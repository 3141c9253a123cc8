import { describe, expect, it } from 'vitest';
import { randomId } from './crypto.js';

describe('randomId', () => {
  it('gives 16 random bytes as hex, never the same twice across refills of its pool', () => {
    // 256 ids use up one pool: 2 000 span several refills.
    const ids = Array.from({ length: 2000 }, () => randomId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
