import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { decodeBase64Json, encodeBase64Json, X402_MAX_HEADER_LENGTH } from './wire.js';

const code = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
};

describe('base64 JSON header values', () => {
  it('writes standard padded base64 of UTF-8 JSON', () => {
    expect(encodeBase64Json({ a: 'é?' }, 'x')).toBe(
      btoa(unescape(encodeURIComponent('{"a":"é?"}'))),
    );
    expect(encodeBase64Json({ a: 1 }, 'x')).toBe('eyJhIjoxfQ==');
  });

  it('reads padded and unpadded standard base64', () => {
    expect(decodeBase64Json('eyJhIjoxfQ==', 'x')).toEqual({ a: 1 });
    expect(decodeBase64Json('eyJhIjoxfQ', 'x')).toEqual({ a: 1 });
    expect(decodeBase64Json(encodeBase64Json({ s: '😀 あ' }, 'x'), 'x')).toEqual({ s: '😀 あ' });
  });

  it.each([
    ['URL-safe alphabet', Buffer.from('{"a":"??>"}').toString('base64url')],
    ['whitespace', 'eyJh IjoxfQ=='],
    ['line break', 'eyJhIjox\nfQ=='],
    ['misplaced padding', 'eyJhIjoxfQ=x'],
    ['padding that does not fill a group', 'eyJhIjoxfQ='],
    ['impossible length', 'eyJhI'],
    ['stray low bits', 'eyJhIjoxfR=='],
    ['not UTF-8', btoa('\u00ff\u00fe')],
    ['not JSON', btoa('{"a":')],
    ['empty', ''],
  ])('refuses %s with invalid_x402_payload', (_name, value) => {
    expect(code(() => decodeBase64Json(value, 'x'))).toBe('invalid_x402_payload');
  });

  it('refuses values longer than the limit, in both directions', () => {
    const long = 'A'.repeat(X402_MAX_HEADER_LENGTH + 4);
    expect(code(() => decodeBase64Json(long, 'x'))).toBe('invalid_x402_payload');
    expect(code(() => encodeBase64Json({ s: 'x'.repeat(X402_MAX_HEADER_LENGTH) }, 'x'))).toBe(
      'invalid_x402_payload',
    );
  });

  it('refuses to write what JSON cannot hold', () => {
    expect(code(() => encodeBase64Json({ n: 1n }, 'x'))).toBe('invalid_x402_payload');
  });
});
