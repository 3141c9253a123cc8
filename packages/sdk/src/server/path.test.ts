import { describe, expect, it } from 'vitest';
import { hasDotSegment, pathWithin } from './path.js';

describe('pathWithin', () => {
  it('matches on segment boundaries', () => {
    expect(pathWithin('/v1', '/v1')).toBe(true);
    expect(pathWithin('/v1/x', '/v1')).toBe(true);
    expect(pathWithin('/v10', '/v1')).toBe(false);
    expect(pathWithin('/v1', '/v1/')).toBe(false);
    expect(pathWithin('/v1/x', '/v1/')).toBe(true);
  });

  it('never matches a path with dot segments', () => {
    expect(hasDotSegment('/v1/../admin')).toBe(true);
    expect(hasDotSegment('/v1/%2E%2e/admin')).toBe(true);
    expect(hasDotSegment('/v1/.well-known')).toBe(false);
    expect(pathWithin('/v1/./x', '/v1')).toBe(false);
  });

  it('never matches a path that another reading puts a dot segment in', () => {
    for (const path of [
      '/v1/..%2Fadmin',
      '/v1/%252e%252e/admin',
      '/v1/..;/admin',
      '/v1/.%3B/admin',
      '/v1/..\\admin',
      '/v1/%2e',
    ]) {
      expect([path, hasDotSegment(path), pathWithin(path, '/v1')]).toEqual([path, true, false]);
    }
    for (const path of ['/v1/a.b', '/v1/...', '/v1/%2e%2e%2e', '/v1/100%25', '/v1/.x;y']) {
      expect([path, hasDotSegment(path)]).toEqual([path, false]);
    }
  });
});
