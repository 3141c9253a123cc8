import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findDuplicateKey } from './json-keys.js';

/** Writes `key` as a JSON string with its first character \u-escaped. */
function escapedKey(key: string): string {
  const first = key.codePointAt(0);
  if (first === undefined || first > 0xffff) return JSON.stringify(key);
  return `"\\u${first.toString(16).padStart(4, '0')}${JSON.stringify(key.slice(1)).slice(1)}`;
}

describe('findDuplicateKey', () => {
  it('finds keys repeated in one object, whatever their escapes', () => {
    expect(findDuplicateKey('{"method":"tools/call","method":"ping"}')).toBe('method');
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateKey('{"":1,"":2}')).toBe('');
    expect(findDuplicateKey('{"k":"\\\\","k":2}')).toBe('k');
    expect(findDuplicateKey('[{"x":"a\\"","x":1}]')).toBe('x');
    expect(findDuplicateKey('{"p":{"n":1,"n":2}}')).toBe('n');
  });

  it('lets equal keys in different objects and strings that look like keys pass', () => {
    expect(findDuplicateKey('{"a":{"a":1},"b":[{"a":1},{"a":2}]}')).toBeUndefined();
    expect(findDuplicateKey('{"a":"\\",\\"a\\":","b":["a","a"]}')).toBeUndefined();
    expect(findDuplicateKey('[1,"x",{"y":[{"y":{}}]}]')).toBeUndefined();
    expect(findDuplicateKey('"text"')).toBeUndefined();
  });

  it('finds nothing in what JSON.stringify writes', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(findDuplicateKey(JSON.stringify(value))).toBeUndefined();
      }),
    );
  });

  it('finds a key repeated at any depth, written with or without escapes', () => {
    const object = fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 });
    fc.assert(
      fc.property(
        object,
        fc.array(fc.constantFrom('array', 'object'), { maxLength: 4 }),
        fc.boolean(),
        fc.jsonValue(),
        (entries, path, escaped, value) => {
          const key = Object.keys(entries)[0] ?? '';
          const repeated = escaped ? escapedKey(key) : JSON.stringify(key);
          let text = `${JSON.stringify(entries).slice(0, -1)},${repeated}:${JSON.stringify(value)}}`;
          for (const wrapper of path) text = wrapper === 'array' ? `[1,${text}]` : `{"w":${text}}`;
          JSON.parse(text);
          expect(findDuplicateKey(text)).toBe(key);
        },
      ),
    );
  });
});
