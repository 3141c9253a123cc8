import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { canonicalizeJson } from './jcs.js';
import { type JsonValue, parseJson } from './json.js';

// The RFC 8785 vectors themselves are replayed in test/mpp-vectors.test.ts.
describe('canonicalizeJson', () => {
  it('sorts members by UTF-16 code units at every level and keeps array order', () => {
    expect(canonicalizeJson({ b: [{ z: 1, y: 2 }, 'x'], a: {}, '\u{10000}': 1, '\ue000': 2 })).toBe(
      '{"a":{},"b":[{"y":2,"z":1},"x"],"\u{10000}":1,"\ue000":2}',
    );
  });

  it('refuses bigints and non-finite numbers', () => {
    for (const value of [1n, [Number.NaN], { a: Number.NEGATIVE_INFINITY }] as JsonValue[]) {
      let thrown: unknown;
      try {
        canonicalizeJson(value);
      } catch (error) {
        thrown = error;
      }
      expect(isTollwayError(thrown, 'invalid_json')).toBe(true);
    }
  });

  it('is a fixed point and ignores member order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (generated) => {
        const value = parseJson(JSON.stringify(generated));
        const canonical = canonicalizeJson(value);
        expect(JSON.parse(canonical)).toEqual(JSON.parse(JSON.stringify(generated)));
        expect(canonicalizeJson(parseJson(canonical))).toBe(canonical);
        const reversed = JSON.parse(JSON.stringify(generated), (_key, member) =>
          member !== null && typeof member === 'object' && !Array.isArray(member)
            ? Object.fromEntries(Object.entries(member).reverse())
            : member,
        );
        expect(canonicalizeJson(reversed)).toBe(canonical);
      }),
    );
  });
});
