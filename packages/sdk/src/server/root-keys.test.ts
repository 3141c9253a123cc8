import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../internal/bytes.js';
import { hmacSha256 } from '../internal/crypto.js';
import { createMasterSecret, createRootKeys } from './root-keys.js';

const identifier = new Uint8Array(66).fill(7);

describe('createRootKeys', () => {
  it('derives root keys as HMAC(master secret, identifier), current secret first', () => {
    const current = createMasterSecret();
    const previous = new Uint8Array(40).fill(9);
    const keys = createRootKeys([current, previous]);
    expect(keys.size).toBe(2);
    expect(bytesToHex(keys.rootKey(identifier))).toBe(
      bytesToHex(hmacSha256(Buffer.from(current, 'hex'), identifier)),
    );
    expect(bytesToHex(keys.rootKey(identifier, 1))).toBe(
      bytesToHex(hmacSha256(previous, identifier)),
    );
    expect(bytesToHex(keys.challengeKey())).not.toBe(bytesToHex(keys.challengeKey(1)));
    expect(bytesToHex(keys.challengeKey())).not.toBe(bytesToHex(keys.rootKey(identifier)));
  });

  it('accepts hex of any case and keeps its own copy of byte secrets', () => {
    const bytes = new Uint8Array(32).fill(1);
    const keys = createRootKeys([bytes]);
    const before = bytesToHex(keys.rootKey(identifier));
    bytes.fill(2);
    expect(bytesToHex(keys.rootKey(identifier))).toBe(before);
    expect(bytesToHex(createRootKeys(['AB'.repeat(32)]).rootKey(identifier))).toBe(
      bytesToHex(createRootKeys(['ab'.repeat(32)]).rootKey(identifier)),
    );
  });

  it('refuses missing, short or non-hex secrets', () => {
    for (const secrets of [
      [],
      ['ab'.repeat(31)],
      ['zz'.repeat(32)],
      [new Uint8Array(31)],
      ['abc'],
    ]) {
      expect(() => createRootKeys(secrets)).toThrowError(
        expect.objectContaining({ code: 'invalid_config' }),
      );
    }
  });
});

describe('createMasterSecret', () => {
  it('makes 32 random bytes of hex', () => {
    const secret = createMasterSecret();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(createMasterSecret()).not.toBe(secret);
  });
});
