import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { msatToWholeSats } from './whole-sats.js';

describe('msatToWholeSats', () => {
  it('converts whole sats', () => {
    expect(msatToWholeSats(0n, 'x')).toBe(0n);
    expect(msatToWholeSats(21_000n, 'x')).toBe(21n);
    expect(msatToWholeSats(2_100_000_000_000_000_000n, 'x')).toBe(2_100_000_000_000_000n);
  });

  it('refuses a fraction of a sat, never rounding', () => {
    for (const msat of [1n, 999n, 1_001n, 21_500n]) {
      let error: unknown;
      try {
        msatToWholeSats(msat, 'phoenixd');
      } catch (e) {
        error = e;
      }
      expect(isTollwayError(error, 'invalid_amount')).toBe(true);
      expect((error as Error).message).toContain('phoenixd');
    }
  });

  it('round-trips every whole number of sats and refuses everything else', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n }),
        fc.bigInt({ min: 0n, max: 999n }),
        (sats, rest) => {
          const msat = sats * 1000n + rest;
          if (rest === 0n) expect(msatToWholeSats(msat, 'x')).toBe(sats);
          else expect(() => msatToWholeSats(msat, 'x')).toThrow(/whole satoshis/);
        },
      ),
    );
  });
});
