import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { isTollwayError } from '../errors.js';
import {
  addFirstPartyCaveat,
  computeMacaroonSignature,
  createMacaroon,
  decodeMacaroon,
  encodeMacaroon,
  firstPartyCaveats,
  formatMacaroon,
  MAX_MACAROON_BYTES,
  MAX_MACAROON_CAVEATS,
  parseMacaroon,
  verifyMacaroonSignature,
} from './macaroon.js';
import type { Macaroon } from './types.js';

const text = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(
    parts.flatMap((part) => (typeof part === 'string' ? [...Buffer.from(part, 'latin1')] : part)),
  );

function expectInvalid(input: Uint8Array, message?: RegExp): void {
  try {
    decodeMacaroon(input);
  } catch (error) {
    expect(isTollwayError(error, 'invalid_macaroon')).toBe(true);
    if (message !== undefined) expect((error as Error).message).toMatch(message);
    return;
  }
  expect.fail('decodeMacaroon accepted invalid input');
}

const SIG = new Array(32).fill(7);
/** A minimal valid macaroon: no location, id "a", no caveats. */
const minimal = () => bytes([2, 2, 1], 'a', [0, 0, 6, 32], SIG);

describe('decodeMacaroon', () => {
  it('reads the libmacaroons example with a third-party caveat (go-macaroon V2 layout)', () => {
    const vid = bytes(
      new Array(24).fill(0),
      [0xd3, 0x6e, 0xc5, 0x02, 0xe0, 0x58, 0x86, 0xd1, 0xf0, 0x27, 0x9f, 0x05, 0x5f, 0xa5, 0x25],
      [0x54, 0xd1, 0x6d, 0x16, 0xc1, 0xb1, 0x40, 0x74, 0xbb, 0xb8, 0x3f, 0xf0, 0xfd, 0xd7, 0x9d],
      [0xc2, 0xfe, 0x09, 0x8f, 0x0e, 0xd4, 0xa2, 0xb0, 0x91, 0x13, 0x0e, 0x6b, 0x5d, 0xb4, 0x6a],
      [0x20, 0xa8, 0x6b],
    );
    const signature = Buffer.from(
      'd27db2fd1f22760e4c3dae8137e2d8fc1df6c0741c18aed4b97256bf78d1f55c',
      'hex',
    );
    const wire = bytes(
      [2, 1, 14],
      'http://mybank/',
      [2, 28],
      'we used our other secret key',
      [0, 2, 20],
      'account = 3735928559',
      [0, 1, 19],
      'http://auth.mybank/',
      [2, 39],
      'this was how we remind auth of key/pred',
      [4, 72],
      [...vid],
      [0, 0, 6, 32],
      [...signature],
    );
    const m = decodeMacaroon(wire);
    expect(m.location).toBe('http://mybank/');
    expect(m.caveats).toHaveLength(2);
    expect(m.caveats[1]?.location).toBe('http://auth.mybank/');
    expect(m.caveats[1]?.verificationId).toEqual(vid);
    expect(firstPartyCaveats(m)).toEqual(['account = 3735928559']);
    expect(encodeMacaroon(m)).toEqual(wire);
    // The third-party link of the chain is HMAC(sig, HMAC(sig, vid) || HMAC(sig, cid)).
    const rootKey = text('this is a different super-secret key; never use the same secret twice');
    expect(hex(computeMacaroonSignature(rootKey, m.identifier, m.caveats))).toBe(hex(signature));
    // …but a token that needs a discharge never verifies here.
    expect(verifyMacaroonSignature(m, rootKey)).toBe(false);
  });

  it('reads a macaroon without location and with empty identifier and caveat', () => {
    const m = decodeMacaroon(bytes([2, 2, 0, 0, 2, 0, 0, 0, 6, 32], SIG));
    expect(m).toEqual({
      location: '',
      identifier: new Uint8Array(0),
      caveats: [{ identifier: new Uint8Array(0) }],
      signature: new Uint8Array(SIG),
    });
  });

  it('reads a two-byte varint length and keeps no reference to the input', () => {
    const id = 'x'.repeat(200);
    const wire = bytes([2, 2, 0xc8, 0x01], id, [0, 0, 6, 32], SIG);
    const m = decodeMacaroon(wire);
    expect(m.identifier).toEqual(text(id));
    wire[4] = 0;
    expect(m.identifier[0]).toBe(0x78);
  });

  it.each([
    ['empty input', bytes(), /truncated/],
    ['version 1 (text) macaroons', bytes([1]), /V2/],
    ['a missing identifier', bytes([2, 0]), /identifier/],
    ['an empty location packet', bytes([2, 1, 0, 2, 1], 'a', [0, 0, 6, 32], SIG), /empty/],
    ['an overlong varint', bytes([2, 2, 0x81, 0x00], 'a', [0, 0, 6, 32], SIG), /overlong/],
    ['a four-byte varint', bytes([2, 2, 0x80, 0x80, 0x80, 0x01]), /range/],
    ['a length past the end', bytes([2, 2, 5], 'a'), /past the end/],
    ['a missing header EOS', bytes([2, 2, 1], 'a', [6, 32], SIG), /end of header/],
    ['a 31-byte signature', bytes([2, 2, 1], 'a', [0, 0, 6, 31], SIG.slice(1)), /32 bytes/],
    ['a truncated signature', bytes([2, 2, 1], 'a', [0, 0, 6, 32], SIG.slice(1)), /truncated/],
    ['trailing bytes', bytes([2, 2, 1], 'a', [0, 0, 6, 32], SIG, [0]), /trailing/],
    ['an unknown field type', bytes([2, 3, 1], 'a', [0, 0, 6, 32], SIG), /field type 3/],
    [
      'a located first-party caveat',
      bytes([2, 2, 1], 'a', [0, 1, 1], 'l', [2, 1], 'c', [0, 0, 6, 32], SIG),
      /first-party/,
    ],
    [
      'an empty verification id',
      bytes([2, 2, 1], 'a', [0, 2, 1], 'c', [4, 0, 0, 0, 6, 32], SIG),
      /empty/,
    ],
    ['a non-UTF-8 location', bytes([2, 1, 1, 0xff, 2, 1], 'a', [0, 0, 6, 32], SIG), /UTF-8/],
  ])('rejects %s', (_name, input, message) => expectInvalid(input, message));

  it('bounds the size and the number of caveats', () => {
    expectInvalid(new Uint8Array(MAX_MACAROON_BYTES + 1).fill(2), /too large/);
    const caveat = [2, 1, 0x61, 0];
    const many = (n: number) =>
      bytes([2, 2, 1], 'a', [0], new Array(n).fill(caveat).flat(), [0, 6, 32], SIG);
    expect(decodeMacaroon(many(MAX_MACAROON_CAVEATS)).caveats).toHaveLength(MAX_MACAROON_CAVEATS);
    expectInvalid(many(MAX_MACAROON_CAVEATS + 1), /too many caveats/);
  });
});

describe('encodeMacaroon', () => {
  const base = decodeMacaroon(minimal());

  it.each([
    ['a short signature', { ...base, signature: new Uint8Array(31) }],
    [
      'a located first-party caveat',
      { ...base, caveats: [{ identifier: text('c'), location: 'l' }] },
    ],
    [
      'an empty verification id',
      { ...base, caveats: [{ identifier: text('c'), verificationId: new Uint8Array(0) }] },
    ],
    [
      'too many caveats',
      { ...base, caveats: new Array(MAX_MACAROON_CAVEATS + 1).fill({ identifier: text('c') }) },
    ],
    ['an oversized identifier', { ...base, identifier: new Uint8Array(MAX_MACAROON_BYTES) }],
  ])('refuses %s', (_name, m: Macaroon) => {
    expect(() => encodeMacaroon(m)).toThrow(expect.objectContaining({ code: 'invalid_macaroon' }));
  });

  it('writes a three-byte varint for lengths of 16 KiB and more', () => {
    const m = { ...base, identifier: new Uint8Array(20_000) };
    const wire = encodeMacaroon(m);
    expect([...wire.subarray(0, 5)]).toEqual([2, 2, 0xa0, 0x9c, 0x01]);
    expect(decodeMacaroon(wire)).toEqual(m);
  });
});

describe('parseMacaroon / formatMacaroon', () => {
  const m = createMacaroon({ rootKey: text('k'), identifier: text('id??>>'), caveats: ['a=b'] });
  const wire = encodeMacaroon(m);

  it('reads standard and URL-safe base64, padded or not, and hex in either case', () => {
    const std = Buffer.from(wire).toString('base64');
    expect(formatMacaroon(m)).toBe(std);
    for (const form of [
      std,
      std.replace(/=+$/, ''),
      Buffer.from(wire).toString('base64url'),
      hex(wire),
      hex(wire).toUpperCase(),
    ]) {
      expect(parseMacaroon(form)).toEqual(m);
    }
  });

  it.each([
    '',
    '%%%',
    'AgEE bHNhdA',
    '02zz',
    'AGIAJEemVQUTEyNCR0exk7ek90Cg==',
    'A'.repeat(MAX_MACAROON_BYTES * 2 + 1),
  ])('rejects %j with invalid_macaroon', (input) => {
    expect(() => parseMacaroon(input)).toThrow(
      expect.objectContaining({ code: 'invalid_macaroon' }),
    );
  });
});

describe('createMacaroon / addFirstPartyCaveat / verifyMacaroonSignature', () => {
  const rootKey = text('this is our super secret key; only we should know it');

  it('reproduces the libmacaroons README signatures', () => {
    const m = createMacaroon({
      rootKey,
      identifier: text('we used our secret key'),
      location: 'http://mybank/',
    });
    expect(hex(m.signature)).toBe(
      'e3d9e02908526c4c0039ae15114115d97fdd68bf2ba379b342aaf0f617d0552f',
    );
    const attenuated = addFirstPartyCaveat(m, 'account = 3735928559');
    expect(hex(attenuated.signature)).toBe(
      '1efe4763f290dbce0c1d08477367e11f4eee456a64933cf662d79772dbb82128',
    );
    expect(m.caveats).toHaveLength(0);
    expect(verifyMacaroonSignature(m, rootKey)).toBe(true);
    expect(verifyMacaroonSignature(attenuated, rootKey)).toBe(true);
    expect(verifyMacaroonSignature(attenuated, text('another key'))).toBe(false);
  });

  it('defaults the location to lsat and signs the given caveats in order', () => {
    const m = createMacaroon({ rootKey, identifier: text('i'), caveats: ['a=1', 'b=2'] });
    expect(m.location).toBe('lsat');
    const stepwise = addFirstPartyCaveat(
      addFirstPartyCaveat(createMacaroon({ rootKey, identifier: text('i') }), 'a=1'),
      'b=2',
    );
    expect(stepwise).toEqual(m);
    const swapped = createMacaroon({ rootKey, identifier: text('i'), caveats: ['b=2', 'a=1'] });
    expect(hex(swapped.signature)).not.toBe(hex(m.signature));
  });

  it('signs and verifies the same without WebAssembly (node --jitless), on node:crypto', async () => {
    vi.stubGlobal('WebAssembly', undefined);
    vi.resetModules();
    try {
      const plain = await import('./macaroon.js');
      const m = plain.createMacaroon({
        rootKey,
        identifier: text('we used our secret key'),
        caveats: ['account = 3735928559'],
      });
      expect(hex(m.signature)).toBe(
        '1efe4763f290dbce0c1d08477367e11f4eee456a64933cf662d79772dbb82128',
      );
      expect(plain.verifyMacaroonSignature(m, rootKey)).toBe(true);
      expect(plain.verifyMacaroonSignature(m, text('another key'))).toBe(false);
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  });

  it('rejects non-UTF-8 caveats when listing them', () => {
    const m = { ...decodeMacaroon(minimal()), caveats: [{ identifier: bytes([0xc3]) }] };
    expect(() => firstPartyCaveats(m)).toThrow(expect.objectContaining({ code: 'invalid_caveat' }));
  });
});

const arbitraryMacaroon: fc.Arbitrary<Macaroon> = fc.record({
  location: fc.oneof(fc.constant(''), fc.string({ minLength: 1, unit: 'grapheme' })),
  identifier: fc.uint8Array({ maxLength: 300 }),
  caveats: fc.array(
    fc.oneof(
      fc.record({ identifier: fc.uint8Array({ maxLength: 200 }) }),
      fc.record(
        {
          identifier: fc.uint8Array({ maxLength: 50 }),
          verificationId: fc.uint8Array({ minLength: 1, maxLength: 80 }),
          location: fc.string({ minLength: 1 }),
        },
        { requiredKeys: ['identifier', 'verificationId'] },
      ),
    ),
    { maxLength: 8 },
  ),
  signature: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});

describe('properties', () => {
  it('decode(encode(m)) == m and encode(decode(b)) == b', () => {
    fc.assert(
      fc.property(arbitraryMacaroon, (m) => {
        const wire = encodeMacaroon(m);
        const back = decodeMacaroon(wire);
        expect(back).toEqual(m);
        expect(encodeMacaroon(back)).toEqual(wire);
        expect(parseMacaroon(formatMacaroon(m))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('any single-byte change of a token fails verification', () => {
    const rootKey = text('root');
    // No location: the location hint is not signed (libmacaroons design), every other byte is.
    const token = encodeMacaroon(
      createMacaroon({
        rootKey,
        location: '',
        identifier: new Uint8Array(66).fill(9),
        caveats: ['services=svc:0', 'svc_capabilities=a,b', 'svc_valid_until=4102444800'],
      }),
    );
    fc.assert(
      fc.property(
        fc.nat({ max: token.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (index, delta) => {
          const changed = token.slice();
          changed[index] = ((changed[index] ?? 0) + delta) % 256;
          let m: Macaroon;
          try {
            m = decodeMacaroon(changed);
          } catch (error) {
            expect(isTollwayError(error, 'invalid_macaroon')).toBe(true);
            return;
          }
          expect(verifyMacaroonSignature(m, rootKey)).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
