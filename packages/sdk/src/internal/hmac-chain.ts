/**
 * HMAC-SHA256 chains, the macaroon signature computation, on bare SHA-256 compressions
 * (`sha256-block.ts`). Why not `node:crypto`: `createHmac(…).update(…).digest()` spends about 2 µs
 * per call setting up objects around 4 block compressions, and a cold token check makes 5 such
 * calls in a row (most of its time); one-shot `crypto.hash` costs over 1 µs per call on Node 20.
 * Here the chained key never leaves 32-bit words, scratch space is allocated once, and the key
 * generator's padded blocks are compressed once. `@noble/hashes` was measured too: its
 * general-purpose HMAC objects cost more than `createHmac`. `hmac-chain.test.ts` checks every
 * length against `node:crypto`.
 */
import { sha256 } from './crypto.js';
import { compileCompress, createBlockMemory } from './sha256-block.js';

// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const IV = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK_BYTES = 64;
const IPAD = 0x36363636;
const OPAD = 0x5c5c5c5c;

// Scratch space in the compression function's memory, reused by every call (JavaScript runs one
// call at a time): the message block, the hash state, the chained key. The function itself is
// compiled by the first prepareHmacKey: emitting it takes a few milliseconds, which a process
// that never checks a macaroon does not pay at import.
const blockMemory = createBlockMemory();
const memory = new Int32Array(blockMemory?.buffer ?? new ArrayBuffer(128));
const W = memory.subarray(0, 16);
const STATE = 16;
const KEY = 24;
const state = memory.subarray(STATE, STATE + 8);
const key = memory.subarray(KEY, KEY + 8);
let compressAt: ((address: number) => void) | undefined;

/** Compresses the block in `W` into the state at word `at` of the memory. */
function compress(at: number): void {
  compressAt!(4 * at);
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
 * Hashes `message` into the state at word `at`, which has already absorbed `prefixBytes` bytes
 * (whole blocks), and pads: the state ends as the SHA-256 of prefix + message. The last block is
 * built in `W` directly.
 */
function absorb(at: number, message: Uint8Array, prefixBytes: number): void {
  const length = message.length;
  const whole = length - (length % BLOCK_BYTES);
  for (let offset = 0; offset < whole; offset += BLOCK_BYTES) {
    loadBlock(message, offset);
    compress(at);
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
    compress(at);
    W.fill(0, 0, 16);
  }
  // The message length in bits, big-endian, in the last two words.
  const bits = (prefixBytes + length) * 8;
  W[14] = Math.floor(bits / 2 ** 32);
  W[15] = bits;
  compress(at);
}

/** Sets the state at word `at` to the state after one block: `key` xor `pad`, then 8 words of `pad`. */
function padState(at: number, pad: number): void {
  for (let i = 0; i < 8; i++) W[i] = key[i]! ^ pad;
  for (let i = 8; i < 16; i++) W[i] = pad;
  memory.set(IV, at);
  compress(at);
}

/**
 * Completes an HMAC whose inner digest is in `state`, writing the MAC to `key`: the outer hash
 * starts from `outer` (the precomputed state after the opad block) when given, else from `key`
 * xor opad, and absorbs the 32-byte inner digest as one padded block.
 */
function finishOuter(outer: Int32Array | undefined): void {
  if (outer === undefined) padState(KEY, OPAD);
  else key.set(outer);
  for (let i = 0; i < 8; i++) W[i] = state[i]!;
  W[8] = 0x80000000;
  for (let i = 9; i < 15; i++) W[i] = 0;
  W[15] = (BLOCK_BYTES + 32) * 8;
  compress(KEY);
}

/** One HMAC step keyed by `key` (32 bytes as eight words) over `message`; the MAC replaces the key. */
function hmacStep(message: Uint8Array): void {
  padState(STATE, IPAD);
  absorb(STATE, message, BLOCK_BYTES);
  finishOuter(undefined);
}

/** A key prepared once for many HMACs: its states after the ipad and opad blocks. */
export interface PreparedHmacKey {
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}

/**
 * Prepares `secret` (any length; longer than 64 bytes is hashed first, per RFC 2104). Undefined
 * where WebAssembly is not available (`node --jitless`): compute the HMACs with `node:crypto`.
 */
export function prepareHmacKey(secret: Uint8Array): PreparedHmacKey | undefined {
  if (blockMemory === undefined) return undefined;
  compressAt ??= compileCompress(blockMemory);
  if (compressAt === undefined) return undefined;
  const padded = new Uint8Array(BLOCK_BYTES);
  padded.set(secret.length > BLOCK_BYTES ? sha256(secret) : secret);
  const [inner, outer] = [0x36, 0x5c].map((pad) => {
    loadBlock(
      padded.map((byte) => byte ^ pad),
      0,
    );
    state.set(IV);
    compress(STATE);
    return state.slice();
  }) as [Int32Array, Int32Array];
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
 * const keyGenerator = prepareHmacKey(utf8ToBytes('macaroons-key-generator'));
 * if (keyGenerator !== undefined) hmacSha256Chain(keyGenerator, [rootKey, identifier]);
 * ```
 */
export function hmacSha256Chain(
  first: PreparedHmacKey,
  messages: readonly Uint8Array[],
): Uint8Array {
  if (messages.length === 0) throw new RangeError('an HMAC chain needs at least one message');
  state.set(first.inner);
  absorb(STATE, messages[0]!, BLOCK_BYTES);
  finishOuter(first.outer);
  for (let i = 1; i < messages.length; i++) hmacStep(messages[i]!);
  return wordsToBytes(key);
}
