import { secp256k1 as noble } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ecdsa, loadNativeEcdsa, nobleEcdsa } from './secp256k1.js';

// The native addon is prebuilt for this machine: its absence here would hide the fast path.
const native = loadNativeEcdsa();
if (native === undefined) throw new Error('the secp256k1 native addon did not load');

const N = noble.Point.CURVE().n;
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const secretKey = bytes32.filter((key) => noble.utils.isValidSecretKey(key));

/** The same signature with S replaced by N - S (valid too, but high S). */
function highS(signature: Uint8Array): Uint8Array {
  const s = BigInt(`0x${Buffer.from(signature.subarray(32, 64)).toString('hex')}`);
  const out = signature.slice(0, 64);
  out.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
  return out;
}

describe('ecdsa', () => {
  it('uses the native addon when it loads', () => {
    expect(ecdsa()).not.toBe(nobleEcdsa);
  });

  it('signs as noble does, byte for byte (RFC 6979, low S, same recovery id)', () => {
    fc.assert(
      fc.property(bytes32, secretKey, (hash, key) => {
        expect(native.signRecoverable(hash, key)).toEqual(nobleEcdsa.signRecoverable(hash, key));
      }),
      { numRuns: 200 },
    );
  });

  it('recovers and verifies as noble does, high S included', () => {
    fc.assert(
      fc.property(bytes32, secretKey, fc.boolean(), (hash, key, high) => {
        const signed = native.signRecoverable(hash, key);
        const publicKey = noble.getPublicKey(key, true);
        const signature = high ? highS(signed) : signed.subarray(0, 64);
        const recovery = high ? (signed[64] ?? 0) ^ 1 : (signed[64] ?? 0);
        for (const side of [native, nobleEcdsa]) {
          expect(side.recoverPublicKey(signature, recovery, hash)).toEqual(publicKey);
          expect(side.verify(signature, hash, publicKey)).toBe(true);
          expect(
            side.verify(
              signature,
              hash.map((b) => b ^ 1),
              publicKey,
            ),
          ).toBe(false);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses malformed signatures and keys alike: false to verify, a throw to recover', () => {
    const key = new Uint8Array(32).fill(7);
    const hash = new Uint8Array(32).fill(9);
    const publicKey = noble.getPublicKey(key, true);
    const overflow = new Uint8Array(64).fill(0xff);
    const zero = new Uint8Array(64);
    for (const side of [native, nobleEcdsa]) {
      expect(side.verify(overflow, hash, publicKey)).toBe(false);
      expect(side.verify(zero, hash, publicKey)).toBe(false);
      const signature = side.signRecoverable(hash, key).subarray(0, 64);
      expect(side.verify(signature, hash, new Uint8Array(33).fill(2))).toBe(false);
      expect(() => side.recoverPublicKey(overflow, 0, hash)).toThrow();
      expect(() => side.recoverPublicKey(zero, 0, hash)).toThrow();
    }
  });
});
