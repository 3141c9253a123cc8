import { describe, expect, it } from 'vitest';
import { TollwayError } from '../errors.js';
import {
  addFirstPartyCaveat,
  createMacaroon,
  decodeMacaroon,
  encodeMacaroon,
  parseMacaroon,
} from './macaroon.js';

// Deterministic xorshift32, so a failure reproduces; the seed is printed in the failure message.
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const seeds = [
  createMacaroon({
    rootKey: new Uint8Array(32),
    identifier: new Uint8Array(66).fill(3),
    caveats: ['services=svc:0', 'svc_capabilities=add,subtract', 'svc_valid_until=4102444800'],
  }),
  addFirstPartyCaveat(
    createMacaroon({ rootKey: new Uint8Array(1), identifier: new Uint8Array(200), location: '' }),
    'x'.repeat(300),
  ),
  {
    location: 'http://mybank/',
    identifier: new Uint8Array([1]),
    caveats: [
      { identifier: new Uint8Array([2]), verificationId: new Uint8Array(72), location: 'l' },
    ],
    signature: new Uint8Array(32),
  },
].map(encodeMacaroon);

function mutate(next: () => number, input: Uint8Array): Uint8Array {
  const int = (n: number) => Math.floor(next() * n);
  let bytes = input.slice();
  for (let edits = 1 + int(4); edits > 0; edits--) {
    const at = int(bytes.length + 1);
    switch (int(6)) {
      case 0:
        if (at < bytes.length) bytes[at] = int(256);
        break;
      case 1:
        if (at < bytes.length) bytes[at] = (bytes[at] ?? 0) ^ (1 << int(8));
        break;
      case 2: {
        const grown = new Uint8Array(bytes.length + 1);
        grown.set(bytes.subarray(0, at));
        grown[at] = int(256);
        grown.set(bytes.subarray(at), at + 1);
        bytes = grown;
        break;
      }
      case 3: {
        const tail = bytes.subarray(Math.min(bytes.length, at + 1 + int(8)));
        const shrunk = new Uint8Array(at + tail.length);
        shrunk.set(bytes.subarray(0, at));
        shrunk.set(tail, at);
        bytes = shrunk;
        break;
      }
      case 4:
        bytes = bytes.slice(0, at);
        break;
      default:
        // A large varint-looking value, to stress length handling.
        if (at < bytes.length) bytes.set([0xff, 0xff, 0xff, 0x7f].slice(0, bytes.length - at), at);
    }
  }
  return bytes;
}

function randomBytes(next: () => number): Uint8Array {
  const bytes = new Uint8Array(Math.floor(next() * 64));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  if (next() < 0.5 && bytes.length > 0) bytes[0] = 2;
  return bytes;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=% \n:\u00e9';

function mutateText(next: () => number, bytes: Uint8Array): string {
  const encodings = ['base64', 'base64url', 'hex'] as const;
  const encoding = encodings[Math.floor(next() * encodings.length)] ?? 'hex';
  const chars = [...Buffer.from(bytes).toString(encoding)];
  for (let edits = Math.floor(next() * 3); edits > 0; edits--) {
    const at = Math.floor(next() * (chars.length + 1));
    const char = ALPHABET[Math.floor(next() * ALPHABET.length)] ?? 'A';
    if (next() < 0.5) chars.splice(at, 1, char);
    else chars.splice(at, 0, char);
  }
  return chars.join('');
}

/** Runs `fn`, failing on anything thrown that is not a TollwayError. Returns true when it decoded. */
function survives(fn: () => unknown, describeInput: () => string): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    if (!(error instanceof TollwayError)) {
      expect.fail(`non-TollwayError ${String(error)} for ${describeInput()}`);
    }
    return false;
  }
}

describe('macaroon fuzz', () => {
  it('decodeMacaroon throws only TollwayError on 120k random and mutated inputs', () => {
    const seed = Date.now();
    const next = random(seed);
    let decoded = 0;
    const runs = 120_000;
    for (let i = 0; i < runs; i++) {
      const base = seeds[i % seeds.length] ?? new Uint8Array(0);
      const input = i % 4 === 0 ? randomBytes(next) : mutate(next, base);
      if (
        survives(
          () => decodeMacaroon(input),
          () => `seed ${seed}, input ${Buffer.from(input).toString('hex')}`,
        )
      ) {
        decoded++;
        // Anything accepted is canonical: it re-encodes to the same bytes.
        expect(Buffer.from(encodeMacaroon(decodeMacaroon(input))).equals(input)).toBe(true);
      }
    }
    // The mutations must also reach the accepting paths, or this test checks too little.
    expect(decoded).toBeGreaterThan(100);
  }, 15_000);

  it('parseMacaroon throws only TollwayError on 100k random and mutated texts', () => {
    const seed = Date.now();
    const next = random(seed);
    const runs = 100_000;
    for (let i = 0; i < runs; i++) {
      const base = seeds[i % seeds.length] ?? new Uint8Array(0);
      const input =
        i % 3 === 0
          ? Array.from({ length: Math.floor(next() * 40) }, () =>
              String.fromCharCode(Math.floor(next() * 0x3000)),
            ).join('')
          : mutateText(next, i % 2 === 0 ? base : mutate(next, base));
      survives(
        () => parseMacaroon(input),
        () => `seed ${seed}, input ${JSON.stringify(input)}`,
      );
    }
  }, 15_000);
});
