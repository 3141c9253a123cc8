import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import {
  decodeJsonBase64Url,
  encodeJsonBase64Url,
  MAX_JSON_DEPTH,
  parseJson,
  stringifyJson,
} from './json.js';

function code(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('parseJson', () => {
  it('reads every JSON type', () => {
    expect(parseJson(' {"a":[1,-2.5e3,true,false,null,"x\\u0041\\n\\/"],"b":{}} ')).toEqual({
      a: [1, -2500, true, false, null, 'xA\n/'],
      b: {},
    });
  });

  it('rejects what RFC 8259 does not allow, with invalid_json', () => {
    const bad = [
      '',
      ' ',
      '{',
      '{"a":',
      '{"a":1,}',
      '[1,]',
      '[1 2]',
      '01',
      '+1',
      '1.',
      '.5',
      '1e',
      '-',
      'NaN',
      'Infinity',
      '1e400',
      'tru',
      'nul',
      "'a'",
      '"a',
      '"\\x"',
      '"\\u12"',
      '"a\nb"',
      '"\t"',
      '{a:1}',
      '{"a" 1}',
      '[]]',
      '1 2',
      '{"a":1}x',
      '\ufeff{}',
    ];
    for (const text of bad)
      expect([text, code(() => parseJson(text))]).toEqual([text, 'invalid_json']);
  });

  it('rejects repeated member names', () => {
    expect(code(() => parseJson('{"a":1,"a":1}'))).toBe('invalid_json');
    expect(code(() => parseJson('{"a":1,"b":{"a":2}}'))).toBe('ok');
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and no more`, () => {
    expect(code(() => parseJson('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)))).toBe(
      'ok',
    );
    expect(
      code(() => parseJson('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1))),
    ).toBe('invalid_json');
    expect(code(() => parseJson('{"a":'.repeat(100_000)))).toBe('invalid_json');
  });

  it('keeps integers exact as bigint on request', () => {
    expect(parseJson('[9223372036854775807,-0,1.5,1e2]', { bigints: true })).toEqual([
      9223372036854775807n,
      0n,
      1.5,
      100,
    ]);
    expect(parseJson('9007199254740993')).toBe(9007199254740992);
  });

  it('keeps a member named __proto__ as a plain member', () => {
    const value = parseJson('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(null);
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('agrees with JSON.parse on any JSON text (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(parseJson(text)).toEqual(JSON.parse(text));
      }),
    );
  });

  it('accepts exactly the texts JSON.parse accepts, bar repeated names and depth (property)', () => {
    const piece = fc.constantFrom(
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"',
      '\\',
      '"a"',
      '1',
      '-',
      '.',
      'e',
      '0',
      ' ',
      'true',
      'u',
      'null',
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 12 }).map((parts) => parts.join('')),
        (text) => {
          let native = 'ok';
          try {
            JSON.parse(text);
          } catch {
            native = 'invalid_json';
          }
          const ours = code(() => parseJson(text));
          if (ours !== native) expect(/"a".*"a"/.test(text) && ours === 'invalid_json').toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('stringifyJson', () => {
  it('keeps member order and writes bigints exactly', () => {
    expect(stringifyJson({ z: 1, a: [9223372036854775807n, 'é"\n'], m: null })).toBe(
      '{"z":1,"a":[9223372036854775807,"é\\"\\n"],"m":null}',
    );
  });

  it('refuses non-finite numbers', () => {
    expect(code(() => stringifyJson(Number.NaN))).toBe('invalid_json');
    expect(code(() => stringifyJson([Number.POSITIVE_INFINITY]))).toBe('invalid_json');
  });

  it('round-trips through parseJson (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(stringifyJson(parseJson(text))).toBe(text);
      }),
    );
  });
});

describe('encodeJsonBase64Url / decodeJsonBase64Url', () => {
  it('round-trips and rejects bad encodings', () => {
    expect(decodeJsonBase64Url(encodeJsonBase64Url({ a: 1n }), { bigints: true })).toEqual({
      a: 1n,
    });
    expect(code(() => decodeJsonBase64Url('a+b/'))).toBe('invalid_base64');
    expect(code(() => decodeJsonBase64Url('_w'))).toBe('invalid_json');
    expect(code(() => decodeJsonBase64Url('e30x'))).toBe('invalid_json');
  });
});
