import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { decodeBase64Url, encodeBase64Url } from './base64url.js';

// The MPP base64url vectors are replayed in test/mpp-vectors.test.ts.
describe('base64url', () => {
  it('round-trips any bytes, unpadded and padded (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = encodeBase64Url(bytes);
        expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
        expect(decodeBase64Url(text)).toEqual(bytes);
        expect(decodeBase64Url(text.padEnd(Math.ceil(text.length / 4) * 4, '='))).toEqual(bytes);
      }),
    );
  });

  it('rejects any text that is not the canonical spelling of its bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom('A', 'B', 'w', '-', '_', '+', '/', '=', ' ', '\n'),
          maxLength: 12,
        }),
        (text) => {
          let bytes: Uint8Array | undefined;
          try {
            bytes = decodeBase64Url(text);
          } catch (error) {
            expect(isTollwayError(error, 'invalid_base64')).toBe(true);
            return;
          }
          expect(encodeBase64Url(bytes)).toBe(text.replace(/=+$/, ''));
        },
      ),
    );
  });
});
