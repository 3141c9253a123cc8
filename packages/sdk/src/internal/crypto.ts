/**
 * The one place the SDK touches `node:crypto` (synchronous and fast); lint holds it (biome.json).
 * Internal: not exported.
 */
import {
  createHash,
  createHmac,
  randomBytes as nodeRandomBytes,
  randomFillSync,
  X509Certificate,
} from 'node:crypto';
import { bytesToHex } from './bytes.js';

/** HMAC-SHA256(key, data). */
export function hmacSha256(key: Uint8Array | string, data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** SHA-256(data). */
export function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/** `n` cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}

/** Random bytes for {@link randomId} and {@link randomPublicBytes}, refilled whole once used up. */
const pool = new Uint8Array(4096);
let poolUsed = pool.length;

/**
 * The next `n` bytes of the pool (a view into it; `n` at most its size), refilled 4 KiB at a
 * time, as Node's `randomUUID` does: one call into the random generator costs 6–12 µs on this
 * project's machine whatever its length. Only for values that are not secrets.
 */
function pooled(n: number): Uint8Array {
  if (poolUsed + n > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  poolUsed += n;
  return pool.subarray(poolUsed - n, poolUsed);
}

/**
 * 16 random bytes as hex, for an identifier that is not a secret (a hold's id), from the pool
 * (see {@link pooled}): a paid request drawing on a balance made one.
 */
export function randomId(): string {
  return bytesToHex(pooled(16));
}

/**
 * `n` random bytes (at most 4096) for a value that must be unique and unguessable beforehand but
 * is not a secret (an L402 token id, which every macaroon carries in the clear), from the pool
 * (see {@link pooled}): every 402 mints a token id.
 */
export function randomPublicBytes(n: number): Uint8Array {
  return pooled(n).slice();
}

/**
 * Constant-time equality; false (not a throw) when the lengths differ. An xor-accumulating loop
 * with no early exit, as `crypto.timingSafeEqual` is, without its argument checks (a tenth of a
 * macaroon check for 32 bytes).
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/** The DER bytes of the (first) certificate in `pem`; throws when it is not a certificate. */
export function certificateDer(pem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pem).raw);
}
