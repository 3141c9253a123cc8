import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PaymentChallenge } from './challenge.js';
import { createChallengeId, verifyChallengeId } from './challenge-id.js';

// The id vectors are replayed in test/mpp-vectors.test.ts.
const secret = new TextEncoder().encode('a server secret');
const base = {
  realm: 'api.example.com',
  method: 'lightning',
  intent: 'charge',
  request: 'eyJhIjoxfQ',
  expires: '2026-03-15T12:05:00Z',
  digest: 'sha-256=:abc=:',
  opaque: 'eyJiIjoyfQ',
};

describe('createChallengeId / verifyChallengeId', () => {
  it('is base64url of HMAC-SHA256 over the seven pipe-joined slots', () => {
    const expected = createHmac('sha256', secret)
      .update('api.example.com|lightning|charge|eyJhIjoxfQ||sha-256=:abc=:|')
      .digest('base64url');
    const { realm, method, intent, request, digest } = base;
    expect(createChallengeId(secret, { realm, method, intent, request, digest })).toBe(expected);
  });

  it('does not cover description', () => {
    const id = createChallengeId(secret, base);
    expect(verifyChallengeId(secret, { ...base, id, description: 'anything' }).ok).toBe(true);
  });

  it('changes with every covered parameter and with the secret (property)', () => {
    const field = fc.constantFrom(
      'realm',
      'method',
      'intent',
      'request',
      'expires',
      'digest',
      'opaque',
    );
    fc.assert(
      fc.property(field, fc.string({ minLength: 1, maxLength: 20 }), (name, suffix) => {
        const challenge: PaymentChallenge = { ...base, id: createChallengeId(secret, base) };
        expect(verifyChallengeId(secret, challenge)).toEqual({ ok: true, value: challenge });
        const tampered = { ...challenge, [name]: `${challenge[name]}${suffix}` };
        expect(verifyChallengeId(secret, tampered)).toMatchObject({
          ok: false,
          code: 'challenge_id_mismatch',
        });
        expect(verifyChallengeId(new TextEncoder().encode('another secret'), challenge).ok).toBe(
          false,
        );
      }),
    );
  });

  it('rejects ids of another length or case', () => {
    const id = createChallengeId(secret, base);
    for (const wrong of ['', id.slice(1), `${id}A`, id.toUpperCase(), `${id}=`]) {
      expect(verifyChallengeId(secret, { ...base, id: wrong }).ok).toBe(false);
    }
  });
});
