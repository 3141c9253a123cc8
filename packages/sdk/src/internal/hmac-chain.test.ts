import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmacSha256Chain, prepareHmacKey } from './hmac-chain.js';

/** The same chain on node:crypto. */
function reference(first: Uint8Array, messages: readonly Uint8Array[]): Uint8Array {
  let key: Uint8Array = first;
  for (const message of messages) key = createHmac('sha256', key).update(message).digest();
  return new Uint8Array(key);
}

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });

describe('hmacSha256Chain', () => {
  it('matches node:crypto for keys and messages of every length around the block sizes', () => {
    for (const keyLength of [0, 1, 23, 32, 63, 64, 65, 100, 200]) {
      for (let length = 0; length <= 200; length++) {
        const first = new Uint8Array(keyLength).map((_, i) => (i * 7 + 3) & 0xff);
        const message = new Uint8Array(length).map((_, i) => (i * 13 + length) & 0xff);
        const second = new Uint8Array(length).map((_, i) => (i * 5 + 1) & 0xff);
        expect(hmacSha256Chain(prepareHmacKey(first)!, [message, second])).toEqual(
          reference(first, [message, second]),
        );
      }
    }
  });

  it('matches node:crypto on random chains (property)', () => {
    fc.assert(
      fc.property(
        bytes(130),
        fc.array(bytes(300), { minLength: 1, maxLength: 8 }),
        (first, messages) => {
          expect(hmacSha256Chain(prepareHmacKey(first)!, messages)).toEqual(
            reference(first, messages),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('gives RFC 4231 test case 2 for a single step', () => {
    const mac = hmacSha256Chain(prepareHmacKey(new TextEncoder().encode('Jefe'))!, [
      new TextEncoder().encode('what do ya want for nothing?'),
    ]);
    expect(Buffer.from(mac).toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('refuses an empty chain', () => {
    expect(() => hmacSha256Chain(prepareHmacKey(new Uint8Array(32))!, [])).toThrow(RangeError);
  });
});
