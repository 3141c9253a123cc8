/**
 * The SHA-256 compression function (FIPS 180-4, 6.2.2) as a WebAssembly module, emitted here as
 * bytes: the 64 rounds written out with the round constants inline, the state and the 16 schedule
 * words in locals. Measured in one process against the same rounds written out in JavaScript (which
 * V8 compiles with type checks and bounds-checked loads of the constants): ~238 against ~264 ns a
 * block over a long message, 4.4 against 5.0 µs for the 19 blocks of a macaroon check.
 *
 * Why not a package: `hash-wasm`'s SHA-256 compresses about as fast (~205 ns a block), but its
 * hasher only takes whole messages (init, update, digest: ~800 ns for a two-block hash, ~2.6 µs
 * for an HMAC) and cannot start from a precomputed state; the macaroon chain needs bare
 * compressions on states it keeps. Why emitted rather than a checked-in `.wasm`: the rounds are a
 * loop, and this keeps one source with no build step or assembler.
 *
 * Timing: additions, rotations and xors on 32-bit words, with no branch or memory access indexed
 * by secret data.
 */

// The SHA-256 round constants (FIPS 180-4, 4.2.2).
const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

// WebAssembly opcodes used (WebAssembly Core Specification 5.4).
const END = 0x0b;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_LOAD = 0x28;
const I32_STORE = 0x36;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_OR = 0x72;
const I32_XOR = 0x73;
const I32_SHR_U = 0x76;
const I32_ROTR = 0x78;
const TYPE_I32 = 0x7f;

function unsignedLeb(value: number, out: number[]): void {
  do {
    const low = value & 0x7f;
    value >>>= 7;
    out.push(value === 0 ? low : low | 0x80);
  } while (value !== 0);
}

function signedLeb(value: number, out: number[]): void {
  for (let rest = value | 0; ; ) {
    const low = rest & 0x7f;
    rest >>= 7;
    if ((rest === 0 && (low & 0x40) === 0) || (rest === -1 && (low & 0x40) !== 0)) {
      out.push(low);
      return;
    }
    out.push(low | 0x80);
  }
}

// Locals (all below 128, so each index is one byte): 0 is the parameter (the state's byte
// address), 1–8 the working state, 9–24 the message schedule.
const STATE_ADDRESS = 0;
const scheduleLocal = (round: number) => 9 + (round % 16);

/**
 * The function body of `compress(state)`: load the state and the block, 64 rounds, add into the
 * state. Written into `out` as a stack machine runs it, operands first.
 */
function compressBody(out: number[]): void {
  const get = (local: number) => out.push(LOCAL_GET, local);
  const set = (local: number) => out.push(LOCAL_SET, local);
  const i32 = (value: number) => {
    out.push(I32_CONST);
    signedLeb(value, out);
  };
  const shift = (opcode: number, local: number, bits: number) => {
    get(local);
    i32(bits);
    out.push(opcode);
  };
  /** `rotr(x, r0) ^ rotr(x, r1) ^ (rotr or shr)(x, r2)`: the Σ and σ functions. */
  const mix = (local: number, [r0, r1, r2]: readonly number[], last = I32_ROTR) => {
    shift(I32_ROTR, local, r0!);
    shift(I32_ROTR, local, r1!);
    out.push(I32_XOR);
    shift(last, local, r2!);
    out.push(I32_XOR);
  };

  out.push(1, 24, TYPE_I32); // one run of 24 i32 locals past the parameter
  // a…h live in locals that rotate by one name per round instead of being copied.
  const v = [1, 2, 3, 4, 5, 6, 7, 8];
  for (let i = 0; i < 8; i++) {
    get(STATE_ADDRESS);
    out.push(I32_LOAD, 2, 4 * i); // aligned to 4 bytes, offset 4i
    set(v[i]!);
  }
  for (let j = 0; j < 16; j++) {
    i32(0);
    out.push(I32_LOAD, 2);
    unsignedLeb(4 * j, out);
    set(scheduleLocal(j));
  }
  for (let r = 0; r < 64; r++) {
    const [a, b, c, d, e, f, g, h] = v as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const w = scheduleLocal(r);
    if (r >= 16) {
      // w[r] = w[r-16] + σ1(w[r-2]) + w[r-7] + σ0(w[r-15])
      get(w);
      mix(scheduleLocal(r - 2), [17, 19, 10], I32_SHR_U);
      out.push(I32_ADD);
      get(scheduleLocal(r - 7));
      out.push(I32_ADD);
      mix(scheduleLocal(r - 15), [7, 18, 3], I32_SHR_U);
      out.push(I32_ADD);
      set(w);
    }
    // T1 = h + Σ1(e) + Ch(e, f, g) + K[r] + w[r], kept in h's local; Ch = g ^ (e & (f ^ g)).
    get(h);
    mix(e, [6, 11, 25]);
    out.push(I32_ADD);
    get(g);
    get(e);
    get(f);
    get(g);
    out.push(I32_XOR, I32_AND, I32_XOR, I32_ADD);
    i32(K[r]!);
    out.push(I32_ADD);
    get(w);
    out.push(I32_ADD);
    set(h);
    // e' = d + T1, in d's local.
    get(d);
    get(h);
    out.push(I32_ADD);
    set(d);
    // a' = T1 + Σ0(a) + Maj(a, b, c), in h's local; Maj = (a & b) | (c & (a | b)).
    get(h);
    mix(a, [2, 13, 22]);
    out.push(I32_ADD);
    get(a);
    get(b);
    out.push(I32_AND);
    get(c);
    get(a);
    get(b);
    out.push(I32_OR, I32_AND, I32_OR, I32_ADD);
    set(h);
    v.splice(0, 8, h, a, b, c, d, e, f, g);
  }
  for (let i = 0; i < 8; i++) {
    get(STATE_ADDRESS);
    get(STATE_ADDRESS);
    out.push(I32_LOAD, 2, 4 * i);
    get(v[i]!);
    out.push(I32_ADD, I32_STORE, 2, 4 * i);
  }
  out.push(END);
}

/** Appends section `id` holding `content`. */
function section(out: number[], id: number, content: readonly number[]): void {
  out.push(id);
  unsignedLeb(content.length, out);
  for (const byte of content) out.push(byte);
}

const ascii = (text: string) => [text.length, ...Array.from(text, (char) => char.charCodeAt(0))];

/** The module: one function `compress(i32)` over an imported memory `m.memory` of one page. */
function moduleBytes(): Uint8Array {
  const body: number[] = [];
  compressBody(body);
  const code = [1]; // one function body
  unsignedLeb(body.length, code);
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1
  section(out, 1, [1, 0x60, 1, TYPE_I32, 0]); // type 0: (i32) -> ()
  section(out, 2, [1, ...ascii('m'), ...ascii('memory'), 0x02, 0x01, 1, 1]); // memory, 1 page
  section(out, 3, [1, 0]); // function 0 has type 0
  section(out, 7, [1, ...ascii('compress'), 0x00, 0]); // exports
  section(out, 10, [...code, ...body]);
  return new Uint8Array(out);
}

/**
 * The part of the WebAssembly JavaScript API used here (the project compiles without the DOM
 * library, where TypeScript declares it); undefined under `node --jitless`.
 */
declare const WebAssembly:
  | {
      Memory: new (descriptor: { initial: number; maximum: number }) => BlockMemory;
      Module: new (bytes: Uint8Array) => object;
      Instance: new (
        module: object,
        imports: { m: { memory: BlockMemory } },
      ) => { exports: Record<string, unknown> };
    }
  | undefined;

/** A WebAssembly memory of one 64 KiB page, never grown (so views of its buffer stay valid). */
export interface BlockMemory {
  readonly buffer: ArrayBuffer;
}

/**
 * The memory {@link compileCompress} works in: words 0–15 are the message block, a state is eight
 * words anywhere past them. Cheap to make (the function itself is compiled later); undefined where
 * WebAssembly is not available (`node --jitless`): the caller then hashes with `node:crypto`.
 */
export function createBlockMemory(): BlockMemory | undefined {
  if (typeof WebAssembly === 'undefined') return undefined;
  return new WebAssembly.Memory({ initial: 1, maximum: 1 });
}

/**
 * Compiles the compression function over `memory` (emitting and compiling it takes a few
 * milliseconds, so callers do it on first use). The function compresses the block in words 0–15
 * into the state at byte address `state`. Undefined if WebAssembly refuses the module.
 */
export function compileCompress(memory: BlockMemory): ((state: number) => void) | undefined {
  try {
    const module = new WebAssembly!.Module(moduleBytes());
    const { exports } = new WebAssembly!.Instance(module, { m: { memory } });
    return exports.compress as (state: number) => void;
  } catch {
    return undefined;
  }
}
