import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { assertAdapterOptions, parseJsonBody, resolveClientIp } from './common.js';

describe('resolveClientIp', () => {
  const chain = ' 198.51.100.1 ,, 2001:db8::7 , 203.0.113.9 ';

  it.each([
    [undefined, '127.0.0.1'],
    [false, '127.0.0.1'],
    [0, '127.0.0.1'],
    [true, '198.51.100.1'],
    [1, '203.0.113.9'],
    [2, '2001:db8::7'],
    [3, '198.51.100.1'],
    [9, '198.51.100.1'],
  ])('trustProxy %s picks %s', (trustProxy, expected) => {
    expect(resolveClientIp('127.0.0.1', chain, trustProxy)).toBe(expected);
  });

  it('falls back to the socket without a usable header, and to "" without a socket', () => {
    expect(resolveClientIp('::1', null, true)).toBe('::1');
    expect(resolveClientIp('::1', ' , ', 1)).toBe('::1');
    expect(resolveClientIp(undefined, undefined, true)).toBe('');
  });
});

describe('assertAdapterOptions', () => {
  it.each([{ trustProxy: -1 }, { trustProxy: 1.5 }, { bodyLimit: -1 }, { bodyLimit: Number.NaN }])(
    'refuses %o with invalid_config',
    (options) => {
      let caught: unknown;
      try {
        assertAdapterOptions(options);
      } catch (error) {
        caught = error;
      }
      expect(isTollwayError(caught, 'invalid_config')).toBe(true);
    },
  );

  it('accepts the defaults and sane values', () => {
    expect(() => assertAdapterOptions({})).not.toThrow();
    expect(() => assertAdapterOptions({ trustProxy: 2, bodyLimit: 0 })).not.toThrow();
  });
});

describe('parseJsonBody', () => {
  it('reads JSON, gives undefined for nothing, and refuses bad JSON or bad UTF-8', () => {
    expect(parseJsonBody(new TextEncoder().encode('{"a":[1]}'))).toEqual({ a: [1] });
    expect(parseJsonBody(new Uint8Array())).toBeUndefined();
    for (const bytes of [new TextEncoder().encode('{'), Uint8Array.of(0x22, 0xff, 0x22)]) {
      expect(() => parseJsonBody(bytes)).toThrow(expect.objectContaining({ code: 'invalid_json' }));
    }
  });

  it('refuses an object that repeats a key, which parsers resolve differently', () => {
    const body = new TextEncoder().encode('{"method":"tools/call","params":{},"method":"ping"}');
    expect(() => parseJsonBody(body)).toThrow(
      expect.objectContaining({
        code: 'invalid_json',
        message: expect.stringContaining('"method"'),
      }),
    );
    expect(parseJsonBody(new TextEncoder().encode('[{"a":1},{"a":2}]'))).toEqual([
      { a: 1 },
      { a: 2 },
    ]);
  });
});
