import { describe, expect, it } from 'vitest';
import { createFreebies } from './freebies.js';

describe('createFreebies', () => {
  it('gives each network its requests per period, from its first request', () => {
    let clock = 1_000;
    const freebies = createFreebies({ requests: 2, per: '1h' }, () => clock);
    expect([freebies.take('a'), freebies.take('a'), freebies.take('a')]).toEqual([
      true,
      true,
      false,
    ]);
    expect(freebies.take('b')).toBe(true);
    clock += 3_599_999;
    expect(freebies.take('a')).toBe(false);
    clock += 1;
    expect(freebies.take('a')).toBe(true);
  });

  it('refuses malformed options', () => {
    expect(() => createFreebies({ requests: 1.5, per: '1h' }, Date.now)).toThrowError(
      expect.objectContaining({ code: 'invalid_config' }),
    );
  });
});
