import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads seconds and unit text', () => {
    expect(parseDuration(90, 'x')).toBe(90);
    expect(parseDuration('90s', 'x')).toBe(90);
    expect(parseDuration('15m', 'x')).toBe(900);
    expect(parseDuration('1h', 'x')).toBe(3600);
    expect(parseDuration(' 7 D ', 'x')).toBe(604_800);
  });

  it('refuses anything else with invalid_config naming the option', () => {
    for (const value of [0, -1, 1.5, Number.NaN, '', '1', '1w', '1.5h', 'h', '11 years', '4000d']) {
      expect(() => parseDuration(value, 'validFor')).toThrowError(
        expect.objectContaining({
          code: 'invalid_config',
          message: expect.stringContaining('validFor'),
        }),
      );
    }
  });

  it('agrees between numbers and second text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (seconds) => {
        expect(parseDuration(`${seconds}s`, 'x')).toBe(parseDuration(seconds, 'x'));
      }),
    );
  });
});
