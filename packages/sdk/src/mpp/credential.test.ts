import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { encodeBase64Url } from './base64url.js';
import {
  formatPaymentCredential,
  type PaymentCredential,
  parsePaymentCredential,
} from './credential.js';

// The Aperture credential vectors are replayed in test/mpp-vectors.test.ts.
const challenge = { id: 'i', realm: 'r', method: 'lightning', intent: 'charge', request: 'cQ' };
const credential: PaymentCredential = { challenge, payload: { preimage: 'ab'.repeat(32) } };

function header(json: string): string {
  return `Payment ${encodeBase64Url(new TextEncoder().encode(json))}`;
}

function code(run: () => unknown): string {
  try {
    return run() === undefined ? 'none' : 'ok';
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('formatPaymentCredential', () => {
  it('writes the challenge in echo order, then source, then the payload, without padding', () => {
    const text = formatPaymentCredential({
      challenge: { ...challenge, digest: 'd', opaque: 'o', description: '', expires: 'e' },
      source: 'did:key:z',
      payload: { preimage: 'ff' },
    });
    expect(text).toBe(
      header(
        '{"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge","request":"cQ","expires":"e","opaque":"o","digest":"d"},"source":"did:key:z","payload":{"preimage":"ff"}}',
      ),
    );
    expect(text).not.toContain('=');
  });

  const text = fc.string({ minLength: 1, maxLength: 20 });
  const credentials = fc.record(
    {
      challenge: fc.record(
        {
          id: text,
          realm: text,
          method: text,
          intent: text,
          request: text,
          expires: text,
          description: text,
          opaque: text,
          digest: text,
        },
        { requiredKeys: ['id', 'realm', 'method', 'intent', 'request'] },
      ),
      source: text,
      payload: fc.record(
        {
          action: fc.constantFrom('open', 'bearer', 'topUp', 'close') as fc.Arbitrary<'open'>,
          preimage: text,
          sessionId: text,
          returnInvoice: text,
          topUpPreimage: text,
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['challenge', 'payload'] },
  );

  it('round-trips through parsePaymentCredential, keeping payload order (property)', () => {
    fc.assert(
      fc.property(credentials, (value: PaymentCredential) => {
        const formatted = formatPaymentCredential(value);
        const parsed = parsePaymentCredential(formatted);
        expect(parsed).toEqual(value);
        expect(formatPaymentCredential(parsed as PaymentCredential)).toBe(formatted);
      }),
    );
  });
});

describe('parsePaymentCredential', () => {
  const one = formatPaymentCredential(credential);

  it('returns undefined when there is no Payment credential', () => {
    expect(parsePaymentCredential(undefined)).toBeUndefined();
    expect(parsePaymentCredential([])).toBeUndefined();
    expect(parsePaymentCredential('Bearer x')).toBeUndefined();
    expect(parsePaymentCredential(['L402 a:b', 'Basic x'])).toBeUndefined();
  });

  it('finds the Payment credential among others, in any scheme case', () => {
    expect(parsePaymentCredential(`Bearer x, ${one.replace('Payment', 'PAYMENT')}`)).toEqual(
      credential,
    );
  });

  it('accepts repeats (padded or not) and rejects different credentials', () => {
    const padded = one.padEnd(8 + Math.ceil((one.length - 8) / 4) * 4, '=');
    expect(parsePaymentCredential([one, padded])).toEqual(credential);
    const other = formatPaymentCredential({ ...credential, source: 'did:x' });
    expect(code(() => parsePaymentCredential([one, other]))).toBe('conflicting_credentials');
    expect(code(() => parsePaymentCredential(`${one}, ${other}`))).toBe('conflicting_credentials');
  });

  it('ignores unknown payload members, keeps __proto__ out, and rejects bad ones', () => {
    const c = JSON.stringify(challenge);
    expect(
      parsePaymentCredential(
        header(`{"challenge":${c},"payload":{"__proto__":"x","zz":1,"preimage":"p"}}`),
      ),
    ).toEqual({
      challenge,
      payload: { preimage: 'p' },
    });
    const bad = [
      `{"challenge":${c},"payload":{"preimage":1}}`,
      `{"challenge":${c},"payload":{"action":"steal"}}`,
      `{"challenge":${c},"payload":[]}`,
      `{"challenge":${c},"payload":{},"source":7}`,
      `{"challenge":${c},"payload":{"preimage":"a","preimage":"b"}}`,
      `{"challenge":${JSON.stringify({ ...challenge, realm: '' })},"payload":{}}`,
      `{"challenge":${JSON.stringify({ ...challenge, expires: 1 })},"payload":{}}`,
      `{"challenge":"x","payload":{}}`,
      '[]',
    ];
    for (const json of bad)
      expect([json, code(() => parsePaymentCredential(header(json)))]).toEqual([
        json,
        'invalid_credential',
      ]);
  });

  it('rejects a malformed token with invalid_credential', () => {
    for (const value of [
      'Payment',
      'Payment ',
      'Payment a b',
      'Payment a+b/',
      'Payment e30=x',
      'payment ,e30',
    ]) {
      expect([value, code(() => parsePaymentCredential(value))]).toEqual([
        value,
        'invalid_credential',
      ]);
    }
  });
});
