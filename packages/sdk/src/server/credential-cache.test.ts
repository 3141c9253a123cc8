import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCredentialCache } from './credential-cache.js';
import type { PresentedCredential } from './offers.js';

/** A stand-in credential: the cache only stores and returns it. */
function presented(name: string): PresentedCredential {
  return { kind: name, verify: () => ({ ok: false, code: 'invalid_credential', message: name }) };
}

describe('createCredentialCache', () => {
  it('answers only for the exact text it was given, also when two texts share their tail', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.string({ minLength: 0, maxLength: 700 }),
        (head, otherHead, tail) => {
          const cache = createCredentialCache();
          const text = `${head}${tail}`;
          const other = `${otherHead}${tail}`;
          const first = presented('first');
          cache.set(text, first);
          expect(cache.get(text)).toBe(first);
          // A copy of the text (another string object) finds it too.
          expect(cache.get(`${head}${tail}`.slice(0))).toBe(first);
          if (other !== text) expect(cache.get(other)).toBeUndefined();
          // Texts of one length and one long tail share a key: each only finds its own entry.
          const twin = `${'x'.repeat(head.length)}${tail}`;
          if (twin !== text) {
            const second = presented('second');
            cache.set(twin, second);
            expect(cache.get(twin)).toBe(second);
            expect([first, undefined]).toContain(cache.get(text));
          }
        },
      ),
    );
  });
});
