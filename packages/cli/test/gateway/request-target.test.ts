import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath, readRequestTarget } from '../../src/gateway/request-target.js';

/** Every reading of a path an upstream might make: decoded once or twice, `\` as `/`, `;…` cut. */
function readings(path: string): string[] {
  const once = decodeLoosely(path);
  const twice = decodeLoosely(once);
  return [path, once, twice].flatMap((text) => [
    text,
    text.replaceAll('\\', '/'),
    text.replace(/;[^/]*/g, ''),
  ]);
}

function decodeLoosely(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

const hasDotSegment = (path: string) => path.split('/').some((s) => s === '.' || s === '..');

describe('the canonical request target', () => {
  it('decodes unreserved escapes, upper-cases the others, merges slashes', () => {
    expect(normalizePath('/v1//%7Euser/%61%2a/')).toEqual({ ok: true, path: '/v1/~user/a%2A/' });
    expect(normalizePath('/plain/path.json')).toEqual({ ok: true, path: '/plain/path.json' });
    expect(normalizePath('/a/100%25')).toEqual({ ok: true, path: '/a/100%25' });
  });

  it.each([
    ['/a/../b', '`.` or `..`'],
    ['/a/%2e%2E/b', '`.` or `..`'],
    ['/a/..%2fb', 'encoded slash'],
    ['/a/%5c..', 'encoded slash'],
    ['/a/%252e%252e', 'double-encoded'],
    ['/a/%252%65%252%65', 'double-encoded'],
    ['/a\\b', 'backslash'],
    ['/a;b/c', '`;`'],
    ['/.%3b/c', '`;`'],
    ['/a%00', 'control'],
    ['/a%0d%0a', 'control'],
    ['/a%zz', 'malformed'],
    ['/a%2', 'malformed'],
    ['/a#frag', 'fragment'],
  ])('refuses %s', (path, reason) => {
    const result = normalizePath(path);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).toContain(reason);
  });

  it('reads the absolute form by its authority and refuses the asterisk form', () => {
    expect(readRequestTarget('http://API.example:8080/v1/x?y=%2e')).toEqual({
      ok: true,
      path: '/v1/x',
      query: '?y=%2e',
      authority: 'api.example:8080',
    });
    expect(readRequestTarget('https://api.example?q')).toEqual({
      ok: true,
      path: '/',
      query: '?q',
      authority: 'api.example',
    });
    expect(readRequestTarget('*').ok).toBe(false);
    expect(readRequestTarget('http://user@api.example/').ok).toBe(false);
    expect(readRequestTarget('api.example:443').ok).toBe(false);
  });

  it('gives a path no reading of which has a dot segment, and is its own canonical form', () => {
    const segment = fc.stringMatching(
      /^(?:[a-z.~;\\]|%(?:2[eEfF5]|5[cC]|6[1-9]|7[eE]|3[bB]|25|00))*$/,
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const result = normalizePath(`/${segments.join('/')}`);
        if (!result.ok) return;
        for (const reading of readings(result.path)) expect(hasDotSegment(reading)).toBe(false);
        expect(normalizePath(result.path)).toEqual(result);
      }),
      { numRuns: 20_000 },
    );
  });
});
