import { describe, expect, it } from 'vitest';
import { bytesToHex } from './bytes.js';
import { randomId, randomPublicBytes } from './crypto.js';

describe('randomId', () => {
  it('gives 16 random bytes as hex, never the same twice across refills of its pool', () => {
    // 256 ids use up one pool: 2 000 span several refills.
    const ids = Array.from({ length: 2000 }, () => randomId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('randomPublicBytes', () => {
  it('gives bytes of their own, never the same twice across refills of the pool', () => {
    // 128 draws of 32 bytes use up one pool: 1 000 span several refills.
    const drawn = Array.from({ length: 1000 }, () => randomPublicBytes(32));
    const seen = drawn.map((bytes) => bytesToHex(bytes));
    for (const bytes of drawn) expect(bytes.length).toBe(32);
    expect(new Set(seen).size).toBe(seen.length);
    // Each is a copy: later draws (and refills) leave it as it was.
    for (let i = 0; i < 300; i++) randomId();
    expect(drawn.map((bytes) => bytesToHex(bytes))).toEqual(seen);
  });
});
