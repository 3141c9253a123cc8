import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import {
  type AuthChallenge,
  formatChallenge,
  MAX_AUTH_HEADER_ELEMENTS,
  MAX_AUTH_HEADER_LENGTH,
  parseChallenges,
  parseCredentials,
} from './www-authenticate.js';

/** Challenges as plain data, for comparisons. */
function simple(challenges: AuthChallenge[]): [string, Record<string, string>, string?][] {
  return challenges.map((c) =>
    c.token68 === undefined ? [c.scheme, { ...c.params }] : [c.scheme, { ...c.params }, c.token68],
  );
}

function code(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('parseChallenges', () => {
  it('reads a challenge with quoted parameters and keeps the scheme spelling', () => {
    const [challenge] = parseChallenges('lSaT macaroon="AgE=", invoice="lnbc1"');
    expect(challenge?.scheme).toBe('lSaT');
    expect(challenge?.schemeLower).toBe('lsat');
    expect({ ...challenge?.params }).toEqual({ macaroon: 'AgE=', invoice: 'lnbc1' });
  });

  it('splits comma-joined challenges, with or without a space, and joins header lines', () => {
    const expected = [
      ['Basic', { realm: 'a' }],
      ['L402', { macaroon: 'm', invoice: 'i' }],
      ['Bearer', {}],
    ];
    expect(
      simple(parseChallenges('Basic realm="a", L402 macaroon="m", invoice="i", Bearer')),
    ).toEqual(expected);
    expect(simple(parseChallenges('Basic realm="a",L402 macaroon="m",invoice="i",Bearer'))).toEqual(
      expected,
    );
    expect(
      simple(parseChallenges(['Basic realm="a"', 'L402 macaroon="m", invoice="i"', 'Bearer'])),
    ).toEqual(expected);
  });

  it('skips empty list elements and surrounding space', () => {
    expect(simple(parseChallenges(' , A x=1 , , ,B y=2,, '))).toEqual([
      ['A', { x: '1' }],
      ['B', { y: '2' }],
    ]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges([])).toEqual([]);
  });

  it('lower-cases parameter names, keeps the first of a repeated name and unknown names', () => {
    expect(simple(parseChallenges('X ID="a", Other=b, id="c", ID=d'))).toEqual([
      ['X', { id: 'a', other: 'b' }],
    ]);
  });

  it('unescapes quoted-pairs and treats commas, "=" and scheme names inside quotes as data', () => {
    const header = 'Payment realm="a \\"b\\" \\\\ c", id="x, Payment id=y", z="\\q"';
    expect(simple(parseChallenges(header))).toEqual([
      ['Payment', { realm: 'a "b" \\ c', id: 'x, Payment id=y', z: 'q' }],
    ]);
  });

  it('reads bare values up to a comma or space, including unquoted base64', () => {
    expect(simple(parseChallenges('LSAT macaroon=AgE/+x==, invoice=lnbc1'))).toEqual([
      ['LSAT', { macaroon: 'AgE/+x==', invoice: 'lnbc1' }],
    ]);
    expect(simple(parseChallenges('A x = 1 , y= "2"'))).toEqual([['A', { x: '1', y: '2' }]]);
    expect(simple(parseChallenges('A y=2, x=, z='))).toEqual([['A', { y: '2', x: '', z: '' }]]);
  });

  it('tolerates a missing comma between parameters', () => {
    expect(simple(parseChallenges('L402 version="0" macaroon="m", invoice="i"'))).toEqual([
      ['L402', { version: '0', macaroon: 'm', invoice: 'i' }],
    ]);
    expect(simple(parseChallenges('A x="1" B y="2"'))).toEqual([
      ['A', { x: '1' }],
      ['B', { y: '2' }],
    ]);
  });

  it('reads the token68 form', () => {
    expect(simple(parseChallenges('Negotiate abc+/_~.-==, Basic realm="r"'))).toEqual([
      ['Negotiate', {}, 'abc+/_~.-=='],
      ['Basic', { realm: 'r' }],
    ]);
    expect(simple(parseChallenges('Bearer abc='))).toEqual([['Bearer', {}, 'abc=']]);
    // `x=` alone is a token68 by the grammar, not an empty parameter.
    expect(simple(parseChallenges('A x=, B'))).toEqual([
      ['A', {}, 'x='],
      ['B', {}],
    ]);
  });

  it('drops a challenge with a syntax error; its later parameters do not leak', () => {
    expect(simple(parseChallenges('A x="1", @bad, y="2", B z="3"'))).toEqual([['B', { z: '3' }]]);
    expect(simple(parseChallenges('A x="1", B y="unterminated, C z=3'))).toEqual([
      ['A', { x: '1' }],
    ]);
    expect(simple(parseChallenges('A x="1"junk, B y="2"'))).toEqual([
      ['A', { x: '1' }],
      ['junk', {}],
      ['B', { y: '2' }],
    ]);
    expect(simple(parseChallenges('A x="1"@, B y="2"'))).toEqual([['B', { y: '2' }]]);
  });

  it('ignores parameters before the first scheme', () => {
    expect(simple(parseChallenges('realm="x, y", id=1, B z="3"'))).toEqual([['B', { z: '3' }]]);
  });

  it('keeps a parameter named __proto__ as data without touching any prototype', () => {
    const [challenge] = parseChallenges('A __proto__="x", constructor="y", toString=z');
    expect(Object.getOwnPropertyDescriptor(challenge?.params, '__proto__')?.value).toBe('x');
    expect(challenge?.params.constructor).toBe('y');
    expect(Object.getPrototypeOf(challenge?.params)).toBe(null);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(parseChallenges('A id=1')[0]?.params.toString).toBeUndefined();
  });

  it('throws invalid_challenge past the length and element caps, and not before', () => {
    const long = `A x="${'a'.repeat(MAX_AUTH_HEADER_LENGTH - 6)}"`;
    expect(long.length).toBe(MAX_AUTH_HEADER_LENGTH);
    expect(parseChallenges(long)).toHaveLength(1);
    expect(code(() => parseChallenges(`${long} `))).toBe('invalid_challenge');
    const many = (n: number): string =>
      ['A', ...Array.from({ length: n - 1 }, (_, i) => `p${i}=1`)].join(', ');
    expect(parseChallenges(many(MAX_AUTH_HEADER_ELEMENTS))).toHaveLength(1);
    expect(code(() => parseChallenges(many(MAX_AUTH_HEADER_ELEMENTS + 1)))).toBe(
      'invalid_challenge',
    );
  });

  // A quadratic scan of 16 KiB would take seconds; linear work takes well under a millisecond
  // (the bound leaves room for a loaded machine's stalls).
  it('does linear work on hostile input', () => {
    const n = MAX_AUTH_HEADER_LENGTH - 10;
    const hostile = [
      `A x="${'\\'.repeat(n)}`,
      `A x="${'\\"'.repeat(n / 2)}`,
      '"'.repeat(n),
      `A ${'a'.repeat(n)}`,
      `A ${'a='.repeat(n / 2)}`,
      `@${'"a,'.repeat(n / 3)}`,
      `A x="1"${'@'.repeat(n)}`,
      ` ${'\t,'.repeat(n / 2)}`,
      `A ${'a'.repeat(n / 2)}${'='.repeat(n / 2)}x`,
    ];
    for (const input of hostile) {
      code(() => parseChallenges(input));
      const start = performance.now();
      code(() => parseChallenges(input));
      expect(performance.now() - start).toBeLessThan(1_000);
    }
  });
});

describe('formatChallenge', () => {
  it('quotes every value and escapes " and \\ as quoted-pairs, in order, skipping undefined', () => {
    expect(
      formatChallenge('Payment', { id: 'a', realm: 'say "hi" \\o/', x: undefined, d: '' }),
    ).toBe('Payment id="a", realm="say \\"hi\\" \\\\o/", d=""');
    expect(formatChallenge('Bearer', {})).toBe('Bearer');
  });

  it('passes HTAB and obs-text through unescaped', () => {
    expect(formatChallenge('A', { x: 'tab\there café' })).toBe('A x="tab\there café"');
  });

  it('refuses what a header cannot carry', () => {
    for (const value of ['a\r\nSet-Cookie: x', 'a\nb', 'nul\0', '\x7f', 'あ', '😀', '\u0100']) {
      expect(code(() => formatChallenge('A', { x: value }))).toBe('invalid_challenge');
    }
    expect(code(() => formatChallenge('A B', { x: '1' }))).toBe('invalid_challenge');
    expect(code(() => formatChallenge('', { x: '1' }))).toBe('invalid_challenge');
    expect(code(() => formatChallenge('A', { 'x y': '1' }))).toBe('invalid_challenge');
    expect(code(() => formatChallenge('A', { 'x=': '1' }))).toBe('invalid_challenge');
  });

  const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
  const name = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9a-z]{1,12}$/);
  const value = fc.string({
    unit: fc.oneof(
      fc.constantFrom('"', '\\', ',', '=', ' ', '\t', ';', 'é', '\xff', 'L402 ', 'a="b"'),
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    ),
    maxLength: 40,
  });
  const challenge = fc.record({
    scheme: token,
    params: fc.dictionary(name, value, { maxKeys: 6 }),
  });

  it('round-trips through parseChallenges, one challenge or several joined (property)', () => {
    fc.assert(
      fc.property(
        fc.array(challenge, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (list, asLines) => {
          const lines = list.map((c) => formatChallenge(c.scheme, c.params));
          const parsed = parseChallenges(asLines ? lines : lines.join(', '));
          expect(simple(parsed)).toEqual(list.map((c) => [c.scheme, { ...c.params }]));
        },
      ),
    );
  });
});

describe('parseCredentials', () => {
  it('splits credentials and re-joins continuation elements', () => {
    const parsed = parseCredentials('L402 a, b ,c:ff, Bearer x, Digest u="1, 2", r="3"');
    expect(parsed.map((c) => [c.scheme, c.rest])).toEqual([
      ['L402', 'a,b,c:ff'],
      ['Bearer', 'x'],
      ['Digest', 'u="1, 2",r="3"'],
    ]);
  });

  it('reads each line on its own, and a first element without a space as a bare scheme', () => {
    expect(
      parseCredentials(['Payment', 'payment abc', '  ', 'x']).map((c) => [c.schemeLower, c.rest]),
    ).toEqual([
      ['payment', ''],
      ['payment', 'abc'],
      ['x', ''],
    ]);
    expect(parseCredentials([])).toEqual([]);
  });

  it('throws invalid_credential past the caps', () => {
    expect(code(() => parseCredentials('a'.repeat(MAX_AUTH_HEADER_LENGTH + 1)))).toBe(
      'invalid_credential',
    );
    expect(code(() => parseCredentials(`L402 ${'a,'.repeat(MAX_AUTH_HEADER_ELEMENTS + 1)}`))).toBe(
      'invalid_credential',
    );
  });
});
