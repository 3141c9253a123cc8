import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { base64ToBytes } from './bytes.js';
import { timingSafeEqual } from './crypto.js';

/**
 * What `base64ToBytes` must do, from Node's encoder: text is accepted exactly when it is the
 * canonical encoding of some bytes in one alphabet, padded fully or not at all.
 */
function oracle(text: string): Uint8Array | undefined {
  const body = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(body) && !/^[A-Za-z0-9_-]*$/.test(body)) return undefined;
  const bytes = Buffer.from(body, 'base64');
  const urlSafe = /[-_]/.test(body);
  const unpadded = bytes.toString(urlSafe ? 'base64url' : 'base64').replace(/=+$/, '');
  if (unpadded !== body) return undefined;
  const padded = `${body}${'='.repeat((4 - (body.length % 4)) % 4)}`;
  return text === body || text === padded ? new Uint8Array(bytes) : undefined;
}

const base64Char = fc.constantFrom(...'ABCYZabyz0189+/-_='.split(''));

describe('base64ToBytes', () => {
  it('decodes every form of random bytes: standard and URL-safe, padded and not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const standard = Buffer.from(bytes).toString('base64');
        for (const text of [
          standard,
          standard.replace(/=+$/, ''),
          Buffer.from(bytes).toString('base64url'),
          `${Buffer.from(bytes).toString('base64url')}${'='.repeat((4 - (standard.replace(/=+$/, '').length % 4)) % 4)}`,
        ]) {
          expect(base64ToBytes(text)).toEqual(new Uint8Array(bytes));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts exactly what the oracle accepts, with the same bytes, and throws only invalid_base64', () => {
    fc.assert(
      fc.property(fc.array(base64Char, { maxLength: 14 }), (chars) => {
        const text = chars.join('');
        const expected = oracle(text);
        let actual: Uint8Array | undefined;
        try {
          actual = base64ToBytes(text);
        } catch (error) {
          expect(isTollwayError(error, 'invalid_base64')).toBe(true);
        }
        expect(actual).toEqual(expected);
      }),
      { numRuns: 20_000 },
    );
  });

  it('refuses characters outside both alphabets, anywhere', () => {
    for (const text of ['AB C', 'ABé=', 'AB\u0000A', 'A=BC', '====', 'QUJD\n']) {
      expect(() => base64ToBytes(text)).toThrow(/base64/);
    }
  });
});

describe('timingSafeEqual', () => {
  it('is byte equality, false for other lengths', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
        expect(timingSafeEqual(a, b)).toBe(Buffer.compare(a, b) === 0);
        expect(timingSafeEqual(a, a.slice())).toBe(true);
      }),
    );
  });
});
