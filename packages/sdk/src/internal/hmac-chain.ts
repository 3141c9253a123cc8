/**
 * HMAC-SHA256 chains, the macaroon signature computation, hand-written on a SHA-256 compression
 * function. Why not `node:crypto`: `createHmac(…).update(…).digest()` spends about 2 µs per call
 * setting up objects around 4 block compressions, and a cold token check makes 5 such calls in a
 * row (most of its time); one-shot `crypto.hash` costs nearly 1 µs per call on Node 20. Here the
 * chained key never leaves 32-bit words, scratch space is allocated once, and the key generator's
 * padded blocks are compressed once. `@noble/hashes` was measured too: its general-purpose HMAC
 * objects cost more than `createHmac`. `hmac-chain.test.ts` checks every length against
 * `node:crypto`.
 *
 * Timing: the compression is additions, rotations and xors on 32-bit words, with no branch or
 * table look-up indexed by secret data.
 */
import { sha256 } from './crypto.js';

// The SHA-256 round constants (FIPS 180-4, 4.2.2).
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const IV = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK_BYTES = 64;
const IPAD = 0x36363636;
const OPAD = 0x5c5c5c5c;

// Scratch space, reused by every call (JavaScript runs one call at a time).
const W = new Int32Array(64);
const state = new Int32Array(8);
const key = new Int32Array(8);

/**
 * Compresses the 16 words in `W[0..15]` into `H` (FIPS 180-4, 6.2.2). The rounds are written out
 * 16 at a time with the message schedule in 16 local words instead of an array, and Σ/σ/Ch/Maj
 * inline (V8 does not inline that many helper calls): about a quarter faster than a plain loop.
 * Round r works on the state words rotated by r mod 8 and on schedule word r mod 16.
 */
function compress(H: Int32Array): void {
  let w0 = W[0]!;
  let w1 = W[1]!;
  let w2 = W[2]!;
  let w3 = W[3]!;
  let w4 = W[4]!;
  let w5 = W[5]!;
  let w6 = W[6]!;
  let w7 = W[7]!;
  let w8 = W[8]!;
  let w9 = W[9]!;
  let w10 = W[10]!;
  let w11 = W[11]!;
  let w12 = W[12]!;
  let w13 = W[13]!;
  let w14 = W[14]!;
  let w15 = W[15]!;
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  let e = H[4]!;
  let f = H[5]!;
  let g = H[6]!;
  let h = H[7]!;
  let t = 0;
  for (let i = 0; ; i += 16) {
    // Round i + 0
    t =
      (h +
        (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) +
        K[i + 0]! +
        w0) |
      0;
    d = (d + t) | 0;
    h =
      (t +
        (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c))) |
      0;
    // Round i + 1
    t =
      (g +
        (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) +
        ((d & e) ^ (~d & f)) +
        K[i + 1]! +
        w1) |
      0;
    c = (c + t) | 0;
    g =
      (t +
        (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) +
        ((h & a) ^ (h & b) ^ (a & b))) |
      0;
    // Round i + 2
    t =
      (f +
        (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) +
        ((c & d) ^ (~c & e)) +
        K[i + 2]! +
        w2) |
      0;
    b = (b + t) | 0;
    f =
      (t +
        (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) +
        ((g & h) ^ (g & a) ^ (h & a))) |
      0;
    // Round i + 3
    t =
      (e +
        (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) +
        ((b & c) ^ (~b & d)) +
        K[i + 3]! +
        w3) |
      0;
    a = (a + t) | 0;
    e =
      (t +
        (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) +
        ((f & g) ^ (f & h) ^ (g & h))) |
      0;
    // Round i + 4
    t =
      (d +
        (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) +
        ((a & b) ^ (~a & c)) +
        K[i + 4]! +
        w4) |
      0;
    h = (h + t) | 0;
    d =
      (t +
        (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) +
        ((e & f) ^ (e & g) ^ (f & g))) |
      0;
    // Round i + 5
    t =
      (c +
        (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) +
        ((h & a) ^ (~h & b)) +
        K[i + 5]! +
        w5) |
      0;
    g = (g + t) | 0;
    c =
      (t +
        (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) +
        ((d & e) ^ (d & f) ^ (e & f))) |
      0;
    // Round i + 6
    t =
      (b +
        (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) +
        ((g & h) ^ (~g & a)) +
        K[i + 6]! +
        w6) |
      0;
    f = (f + t) | 0;
    b =
      (t +
        (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) +
        ((c & d) ^ (c & e) ^ (d & e))) |
      0;
    // Round i + 7
    t =
      (a +
        (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) +
        ((f & g) ^ (~f & h)) +
        K[i + 7]! +
        w7) |
      0;
    e = (e + t) | 0;
    a =
      (t +
        (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) +
        ((b & c) ^ (b & d) ^ (c & d))) |
      0;
    // Round i + 8
    t =
      (h +
        (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) +
        K[i + 8]! +
        w8) |
      0;
    d = (d + t) | 0;
    h =
      (t +
        (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c))) |
      0;
    // Round i + 9
    t =
      (g +
        (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) +
        ((d & e) ^ (~d & f)) +
        K[i + 9]! +
        w9) |
      0;
    c = (c + t) | 0;
    g =
      (t +
        (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) +
        ((h & a) ^ (h & b) ^ (a & b))) |
      0;
    // Round i + 10
    t =
      (f +
        (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) +
        ((c & d) ^ (~c & e)) +
        K[i + 10]! +
        w10) |
      0;
    b = (b + t) | 0;
    f =
      (t +
        (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) +
        ((g & h) ^ (g & a) ^ (h & a))) |
      0;
    // Round i + 11
    t =
      (e +
        (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) +
        ((b & c) ^ (~b & d)) +
        K[i + 11]! +
        w11) |
      0;
    a = (a + t) | 0;
    e =
      (t +
        (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) +
        ((f & g) ^ (f & h) ^ (g & h))) |
      0;
    // Round i + 12
    t =
      (d +
        (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) +
        ((a & b) ^ (~a & c)) +
        K[i + 12]! +
        w12) |
      0;
    h = (h + t) | 0;
    d =
      (t +
        (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) +
        ((e & f) ^ (e & g) ^ (f & g))) |
      0;
    // Round i + 13
    t =
      (c +
        (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) +
        ((h & a) ^ (~h & b)) +
        K[i + 13]! +
        w13) |
      0;
    g = (g + t) | 0;
    c =
      (t +
        (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) +
        ((d & e) ^ (d & f) ^ (e & f))) |
      0;
    // Round i + 14
    t =
      (b +
        (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) +
        ((g & h) ^ (~g & a)) +
        K[i + 14]! +
        w14) |
      0;
    f = (f + t) | 0;
    b =
      (t +
        (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) +
        ((c & d) ^ (c & e) ^ (d & e))) |
      0;
    // Round i + 15
    t =
      (a +
        (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) +
        ((f & g) ^ (~f & h)) +
        K[i + 15]! +
        w15) |
      0;
    e = (e + t) | 0;
    a =
      (t +
        (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) +
        ((b & c) ^ (b & d) ^ (c & d))) |
      0;
    if (i === 48) break;
    // The schedule words of the next 16 rounds.
    w0 =
      (w0 +
        (((w1 >>> 7) | (w1 << 25)) ^ ((w1 >>> 18) | (w1 << 14)) ^ (w1 >>> 3)) +
        w9 +
        (((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10))) |
      0;
    w1 =
      (w1 +
        (((w2 >>> 7) | (w2 << 25)) ^ ((w2 >>> 18) | (w2 << 14)) ^ (w2 >>> 3)) +
        w10 +
        (((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10))) |
      0;
    w2 =
      (w2 +
        (((w3 >>> 7) | (w3 << 25)) ^ ((w3 >>> 18) | (w3 << 14)) ^ (w3 >>> 3)) +
        w11 +
        (((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10))) |
      0;
    w3 =
      (w3 +
        (((w4 >>> 7) | (w4 << 25)) ^ ((w4 >>> 18) | (w4 << 14)) ^ (w4 >>> 3)) +
        w12 +
        (((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10))) |
      0;
    w4 =
      (w4 +
        (((w5 >>> 7) | (w5 << 25)) ^ ((w5 >>> 18) | (w5 << 14)) ^ (w5 >>> 3)) +
        w13 +
        (((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10))) |
      0;
    w5 =
      (w5 +
        (((w6 >>> 7) | (w6 << 25)) ^ ((w6 >>> 18) | (w6 << 14)) ^ (w6 >>> 3)) +
        w14 +
        (((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10))) |
      0;
    w6 =
      (w6 +
        (((w7 >>> 7) | (w7 << 25)) ^ ((w7 >>> 18) | (w7 << 14)) ^ (w7 >>> 3)) +
        w15 +
        (((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10))) |
      0;
    w7 =
      (w7 +
        (((w8 >>> 7) | (w8 << 25)) ^ ((w8 >>> 18) | (w8 << 14)) ^ (w8 >>> 3)) +
        w0 +
        (((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10))) |
      0;
    w8 =
      (w8 +
        (((w9 >>> 7) | (w9 << 25)) ^ ((w9 >>> 18) | (w9 << 14)) ^ (w9 >>> 3)) +
        w1 +
        (((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10))) |
      0;
    w9 =
      (w9 +
        (((w10 >>> 7) | (w10 << 25)) ^ ((w10 >>> 18) | (w10 << 14)) ^ (w10 >>> 3)) +
        w2 +
        (((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10))) |
      0;
    w10 =
      (w10 +
        (((w11 >>> 7) | (w11 << 25)) ^ ((w11 >>> 18) | (w11 << 14)) ^ (w11 >>> 3)) +
        w3 +
        (((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10))) |
      0;
    w11 =
      (w11 +
        (((w12 >>> 7) | (w12 << 25)) ^ ((w12 >>> 18) | (w12 << 14)) ^ (w12 >>> 3)) +
        w4 +
        (((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10))) |
      0;
    w12 =
      (w12 +
        (((w13 >>> 7) | (w13 << 25)) ^ ((w13 >>> 18) | (w13 << 14)) ^ (w13 >>> 3)) +
        w5 +
        (((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10))) |
      0;
    w13 =
      (w13 +
        (((w14 >>> 7) | (w14 << 25)) ^ ((w14 >>> 18) | (w14 << 14)) ^ (w14 >>> 3)) +
        w6 +
        (((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10))) |
      0;
    w14 =
      (w14 +
        (((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3)) +
        w7 +
        (((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10))) |
      0;
    w15 =
      (w15 +
        (((w0 >>> 7) | (w0 << 25)) ^ ((w0 >>> 18) | (w0 << 14)) ^ (w0 >>> 3)) +
        w8 +
        (((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10))) |
      0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
  H[5] = (H[5]! + f) | 0;
  H[6] = (H[6]! + g) | 0;
  H[7] = (H[7]! + h) | 0;
}

/** Loads 64 bytes from `bytes[offset…]` into `W[0..15]` (big-endian words). */
function loadBlock(bytes: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++, offset += 4) {
    W[i] =
      (bytes[offset]! << 24) |
      (bytes[offset + 1]! << 16) |
      (bytes[offset + 2]! << 8) |
      bytes[offset + 3]!;
  }
}

/**
 * Hashes `message` into `H`, which has already absorbed `prefixBytes` bytes (whole blocks), and
 * pads: `H` ends as the SHA-256 of prefix + message. The last block is built in `W` directly.
 */
function absorb(H: Int32Array, message: Uint8Array, prefixBytes: number): void {
  const length = message.length;
  const whole = length - (length % BLOCK_BYTES);
  for (let offset = 0; offset < whole; offset += BLOCK_BYTES) {
    loadBlock(message, offset);
    compress(H);
  }
  const rest = length - whole;
  const fullWords = rest >> 2;
  let offset = whole;
  for (let i = 0; i < fullWords; i++, offset += 4) {
    W[i] =
      (message[offset]! << 24) |
      (message[offset + 1]! << 16) |
      (message[offset + 2]! << 8) |
      message[offset + 3]!;
  }
  // The remaining 0–3 bytes, then the 0x80 that ends the message.
  let last = 0x80 << (24 - 8 * (rest & 3));
  for (let j = 0; j < (rest & 3); j++) last |= message[offset + j]! << (24 - 8 * j);
  W[fullWords] = last;
  for (let i = fullWords + 1; i < 16; i++) W[i] = 0;
  if (rest + 9 > BLOCK_BYTES) {
    compress(H);
    W.fill(0, 0, 16);
  }
  // The message length in bits, big-endian, in the last two words.
  const bits = (prefixBytes + length) * 8;
  W[14] = Math.floor(bits / 2 ** 32);
  W[15] = bits;
  compress(H);
}

/** Sets `H` to the state after one block: the 8 key words xor `pad`, then 8 words of `pad`. */
function padState(H: Int32Array, keyWords: Int32Array, pad: number): void {
  for (let i = 0; i < 8; i++) W[i] = keyWords[i]! ^ pad;
  for (let i = 8; i < 16; i++) W[i] = pad;
  H.set(IV);
  compress(H);
}

/**
 * Completes an HMAC whose inner digest is in `state`, writing the MAC to `keyWords`: the outer
 * hash starts from `outer` (the precomputed state after the opad block) when given, else from
 * `keyWords` xor opad, and absorbs the 32-byte inner digest as one padded block.
 */
function finishOuter(keyWords: Int32Array, outer: Int32Array | undefined): void {
  if (outer === undefined) padState(keyWords, keyWords, OPAD);
  else keyWords.set(outer);
  for (let i = 0; i < 8; i++) W[i] = state[i]!;
  W[8] = 0x80000000;
  for (let i = 9; i < 15; i++) W[i] = 0;
  W[15] = (BLOCK_BYTES + 32) * 8;
  compress(keyWords);
}

/** One HMAC step keyed by eight words (a 32-byte key) over `message`; the MAC replaces the key. */
function hmacWords(keyWords: Int32Array, message: Uint8Array): void {
  padState(state, keyWords, IPAD);
  absorb(state, message, BLOCK_BYTES);
  finishOuter(keyWords, undefined);
}

/** A key prepared once for many HMACs: its states after the ipad and opad blocks. */
export interface PreparedHmacKey {
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}

/** Prepares `secret` (any length; longer than 64 bytes is hashed first, per RFC 2104). */
export function prepareHmacKey(secret: Uint8Array): PreparedHmacKey {
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(secret.length > BLOCK_BYTES ? sha256(secret) : secret);
  const inner = new Int32Array(8);
  const outer = new Int32Array(8);
  for (const [H, pad] of [
    [inner, 0x36],
    [outer, 0x5c],
  ] as const) {
    const padded = block.map((byte) => byte ^ pad);
    H.set(IV);
    loadBlock(padded, 0);
    compress(H);
  }
  return { inner, outer };
}

/** Big-endian bytes of eight words. */
function wordsToBytes(words: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const word = words[i]!;
    out[4 * i] = word >>> 24;
    out[4 * i + 1] = word >>> 16;
    out[4 * i + 2] = word >>> 8;
    out[4 * i + 3] = word;
  }
  return out;
}

/**
 * The chain `k = HMAC(first, messages[0])`, then `k = HMAC(k, messages[i])` for each next message;
 * returns the last `k` (32 bytes). This is the macaroon signature with `first` the key generator
 * and the messages the root key, the identifier and each first-party caveat.
 *
 * @example
 * ```ts
 * const signature = hmacSha256Chain(prepareHmacKey(utf8ToBytes('macaroons-key-generator')), [rootKey, identifier]);
 * ```
 */
export function hmacSha256Chain(
  first: PreparedHmacKey,
  messages: readonly Uint8Array[],
): Uint8Array {
  if (messages.length === 0) throw new RangeError('an HMAC chain needs at least one message');
  state.set(first.inner);
  absorb(state, messages[0]!, BLOCK_BYTES);
  finishOuter(key, first.outer);
  for (let i = 1; i < messages.length; i++) hmacWords(key, messages[i]!);
  return wordsToBytes(key);
}
