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
});
