/**
 * ECDSA on secp256k1 for BOLT11: signing (the dev node's invoices) and checking (every decoded
 * invoice). libsecp256k1 through the native addon of the `secp256k1` package when it loads — an
 * optional dependency, prebuilt for Linux x64 (glibc and musl), macOS arm64 and Windows x64 — else
 * `@noble/curves` in plain JavaScript. Both sign deterministically (RFC 6979, low S), so an invoice
 * is the same byte for byte either way; `secp256k1.test.ts` holds them to each other.
 *
 * Why: one signature is most of the cost of a 402 challenge with the dev node, and one recovery
 * most of the cost of decoding an invoice. Measured on the CI machine, per operation: signing
 * 676 µs (noble) vs 57 µs (native), recovering 1441 µs vs 61 µs, verifying 1361 µs vs 56 µs; the
 * WASM build of libsecp256k1 (`tiny-secp256k1`) signs in 137 µs (docs/architecture.md).
 */
import { createRequire } from 'node:module';
import { secp256k1 as noble } from '@noble/curves/secp256k1.js';

/** The operations BOLT11 needs; see {@link ecdsa}. */
export interface Ecdsa {
  /** `r || s || recovery id` (65 bytes, low S) of a 32-byte `hash` under `secretKey`. */
  signRecoverable(hash: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /**
   * The compressed public key (33 bytes) that made `signature` (`r || s`, 64 bytes) of `hash`
   * with `recovery` (0 to 3). Throws when there is none.
   */
  recoverPublicKey(signature: Uint8Array, recovery: number, hash: Uint8Array): Uint8Array;
  /** Whether `signature` (`r || s`; high S accepted) signs `hash` under `publicKey`; false for malformed input. */
  verify(signature: Uint8Array, hash: Uint8Array, publicKey: Uint8Array): boolean;
}

/** `@noble/curves`: plain JavaScript, everywhere. */
export const nobleEcdsa: Ecdsa = {
  signRecoverable(hash, secretKey) {
    const recovered = noble.sign(hash, secretKey, { prehash: false, format: 'recovered' });
    // noble puts the recovery id first; BOLT11 wants it last.
    const signature = new Uint8Array(65);
    signature.set(recovered.subarray(1), 0);
    signature[64] = recovered[0] ?? 0;
    return signature;
  },
  recoverPublicKey(signature, recovery, hash) {
    const recovered = new Uint8Array(65);
    recovered[0] = recovery;
    recovered.set(signature, 1);
    return noble.recoverPublicKey(recovered, hash, { prehash: false });
  },
  verify: (signature, hash, publicKey) =>
    noble.verify(signature, hash, publicKey, { prehash: false, lowS: false }),
};

/** The part of the `secp256k1` package's API used here (it validates its arguments). */
interface NativeSecp256k1 {
  ecdsaSign(hash: Uint8Array, secretKey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaRecover(
    signature: Uint8Array,
    recid: number,
    hash: Uint8Array,
    compressed: boolean,
  ): Uint8Array;
  ecdsaVerify(signature: Uint8Array, hash: Uint8Array, publicKey: Uint8Array): boolean;
  /** Rewrites a signature in place to low S. */
  signatureNormalize(signature: Uint8Array): Uint8Array;
}

function nativeEcdsa(native: NativeSecp256k1): Ecdsa {
  return {
    signRecoverable(hash, secretKey) {
      const { signature, recid } = native.ecdsaSign(hash, secretKey);
      const out = new Uint8Array(65);
      out.set(signature, 0);
      out[64] = recid;
      return out;
    },
    recoverPublicKey: (signature, recovery, hash) =>
      native.ecdsaRecover(signature, recovery, hash, true),
    verify(signature, hash, publicKey) {
      try {
        // libsecp256k1 verifies low-S signatures only; BOLT11 does not ask for low S.
        return native.ecdsaVerify(native.signatureNormalize(signature.slice()), hash, publicKey);
      } catch {
        return false;
      }
    },
  };
}

let loaded: Ecdsa | undefined;

/**
 * Loads the native addon of the `secp256k1` package (its `bindings` entry, never the package's
 * own fallback to `elliptic`); undefined where it is not installed or has no binary.
 */
export function loadNativeEcdsa(): Ecdsa | undefined {
  try {
    return nativeEcdsa(createRequire(import.meta.url)('secp256k1/bindings') as NativeSecp256k1);
  } catch {
    return undefined;
  }
}

/** libsecp256k1 when its addon loads, else noble; chosen on first use. */
export function ecdsa(): Ecdsa {
  loaded ??= loadNativeEcdsa() ?? nobleEcdsa;
  return loaded;
}
