import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTokenId, decodeIdentifier, encodeIdentifier } from './identifier.js';

const range = (from: number, to: number, step = 1) =>
  new Uint8Array(Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => from + i * step));

describe('identifier v0', () => {
  it('matches Aperture TestEncodeIdentifierBytes (hash 1..32, token id 32..1)', () => {
    const encoded = encodeIdentifier({
      version: 0,
      paymentHash: range(1, 32),
      tokenId: range(32, 1, -1),
    });
    expect(Buffer.from(encoded).toString('hex')).toBe(
      '00000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20' +
        '201f1e1d1c1b1a191817161514131211100f0e0d0c0b0a090807060504030201',
    );
    expect(decodeIdentifier(encoded)).toEqual({
      version: 0,
      paymentHash: range(1, 32),
      tokenId: range(32, 1, -1),
    });
  });

  it('round-trips any hash and token id', () => {
    const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(hash32, hash32, (paymentHash, tokenId) => {
        expect(decodeIdentifier(encodeIdentifier({ version: 0, paymentHash, tokenId }))).toEqual({
          version: 0,
          paymentHash,
          tokenId,
        });
      }),
      { numRuns: 200 },
    );
  });

  it('rejects boltwall ASCII-hex identifiers as an unknown version (0x3030)', () => {
    const ascii = new TextEncoder().encode('0000'.padEnd(132, 'a'));
    expect(() => decodeIdentifier(ascii)).toThrow(
      expect.objectContaining({ code: 'unknown_identifier_version', details: { version: 0x3030 } }),
    );
  });

  it.each([0, 1, 65, 67, 132])('rejects a version-0 identifier of %i bytes', (length) => {
    expect(() => decodeIdentifier(new Uint8Array(length))).toThrow(
      expect.objectContaining({ code: 'invalid_identifier' }),
    );
  });

  it('refuses to encode another version or wrong field lengths', () => {
    const ok32 = new Uint8Array(32);
    for (const bad of [
      { version: 1, paymentHash: ok32, tokenId: ok32 },
      { version: 0, paymentHash: new Uint8Array(31), tokenId: ok32 },
      { version: 0, paymentHash: ok32, tokenId: new Uint8Array(33) },
    ]) {
      expect(() => encodeIdentifier(bad)).toThrow(
        expect.objectContaining({ code: 'invalid_identifier' }),
      );
    }
  });

  it('creates distinct random 32-byte token ids', () => {
    const a = createTokenId();
    const b = createTokenId();
    expect(a).toHaveLength(32);
    expect(a).not.toEqual(b);
  });
});
