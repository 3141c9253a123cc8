import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeBase64Url } from './base64url.js';
import {
  formatPaymentChallenge,
  type PaymentChallenge,
  parsePaymentChallenges,
} from './challenge.js';
import { createChallengeId } from './challenge-id.js';
import { createPaymentChallenge, verifyPaymentCredential } from './charge.js';
import { decodeChargeRequest } from './charge-request.js';
import {
  formatPaymentCredential,
  type PaymentCredential,
  parsePaymentCredential,
} from './credential.js';

// A real testnet invoice with its preimage and payment hash (test/fixtures/l402-vectors.json).
const { invoicePreimageTriple: triple } = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const secret = new TextEncoder().encode('tollway-test-secret');
const now = new Date('2026-03-15T12:00:00.750Z');
const expires = new Date('2026-03-15T12:15:00.999Z');

function mint(): PaymentChallenge {
  return createPaymentChallenge({
    secret,
    realm: 'api.example.com',
    invoice: triple.invoice,
    paymentHash: triple.paymentHashHex.toUpperCase(),
    amountSat: 1000n,
    network: 'testnet',
    description: 'Weather report',
    expires,
  });
}

/** What a client sends back: the challenge as it read it from the header, plus the preimage. */
function answer(preimage: string, challenge = mint()): PaymentCredential {
  const [received] = parsePaymentChallenges(formatPaymentChallenge(challenge));
  const header = formatPaymentCredential({
    challenge: received as PaymentChallenge,
    payload: { preimage },
  });
  return parsePaymentCredential(header) as PaymentCredential;
}

describe('createPaymentChallenge', () => {
  it('mints a lightning charge challenge whose id is the HMAC of its parameters', () => {
    const challenge = mint();
    expect(challenge).toMatchObject({
      realm: 'api.example.com',
      method: 'lightning',
      intent: 'charge',
      expires: '2026-03-15T12:15:00Z',
    });
    const input = `api.example.com|lightning|charge|${challenge.request}|2026-03-15T12:15:00Z||`;
    expect(challenge.id).toBe(createHmac('sha256', secret).update(input).digest('base64url'));
    expect(decodeChargeRequest(challenge.request)).toEqual({
      amountSat: 1000n,
      description: 'Weather report',
      invoice: triple.invoice,
      paymentHash: triple.paymentHashHex,
      network: 'testnet',
    });
  });

  it('binds an opaque parameter into the id', () => {
    const opaque = encodeBase64Url(new TextEncoder().encode('{"service":"forecast"}'));
    const challenge = createPaymentChallenge({
      secret,
      realm: 'api.example.com',
      invoice: triple.invoice,
      paymentHash: triple.paymentHashHex,
      amountSat: 1000n,
      network: 'testnet',
      expires,
      opaque,
    });
    expect(challenge.opaque).toBe(opaque);
    const input = `api.example.com|lightning|charge|${challenge.request}|2026-03-15T12:15:00Z||${opaque}`;
    expect(challenge.id).toBe(createHmac('sha256', secret).update(input).digest('base64url'));
  });

  it('refuses an invalid date or one RFC 3339 cannot write in four digits', () => {
    for (const expires of [
      new Date(Number.NaN),
      new Date('+010000-01-01T00:00:00Z'),
      new Date(-1e14),
    ]) {
      expect(() => createPaymentChallenge({ ...mintParams(), expires })).toThrowError(
        expect.objectContaining({ code: 'invalid_challenge' }),
      );
    }
  });
});

function mintParams() {
  return {
    secret,
    realm: 'r',
    invoice: triple.invoice,
    paymentHash: triple.paymentHashHex,
    amountSat: 1n,
    network: 'testnet' as const,
    expires,
  };
}

describe('verifyPaymentCredential', () => {
  it('accepts the preimage of the invoice, in either hex case', () => {
    for (const preimage of [triple.preimageHex, triple.preimageHex.toUpperCase()]) {
      const result = verifyPaymentCredential(answer(preimage), { secret, now });
      expect(result).toEqual({
        ok: true,
        value: {
          challenge: mint(),
          paymentHash: triple.paymentHashHex,
          preimage: triple.preimageHex,
          amountSat: 1000n,
          invoice: triple.invoice,
        },
      });
    }
  });

  it('reports each failure with its code', () => {
    const good = answer(triple.preimageHex);
    const other = new TextEncoder().encode('another secret');
    const cases: [PaymentCredential, Date, Uint8Array, string][] = [
      [
        { ...good, challenge: { ...good.challenge, intent: 'session' } },
        now,
        secret,
        'invalid_credential',
      ],
      [
        { ...good, challenge: { ...good.challenge, method: 'tempo' } },
        now,
        secret,
        'invalid_credential',
      ],
      [good, now, other, 'challenge_id_mismatch'],
      [
        { ...good, challenge: { ...good.challenge, realm: 'evil.example' } },
        now,
        secret,
        'challenge_id_mismatch',
      ],
      [
        { ...good, challenge: { ...good.challenge, expires: '2030-01-01T00:00:00Z' } },
        now,
        secret,
        'challenge_id_mismatch',
      ],
      [good, new Date('2026-03-15T12:15:00Z'), secret, 'challenge_expired'],
      [good, new Date('2027-01-01T00:00:00Z'), secret, 'challenge_expired'],
      [answer(''), now, secret, 'invalid_preimage'],
      [answer(triple.preimageHex.slice(2)), now, secret, 'invalid_preimage'],
      [answer(`${triple.preimageHex.slice(2)}zz`), now, secret, 'invalid_preimage'],
      [{ ...good, payload: {} }, now, secret, 'invalid_preimage'],
      [answer('00'.repeat(32)), now, secret, 'preimage_mismatch'],
      [answer(triple.paymentHashHex), now, secret, 'preimage_mismatch'],
    ];
    for (const [credential, at, key, expected] of cases) {
      expect(verifyPaymentCredential(credential, { secret: key, now: at })).toMatchObject({
        ok: false,
        code: expected,
      });
    }
  });

  it('accepts a challenge without expires, and reports bad requests the server itself signed', () => {
    const sign = (fields: Omit<PaymentChallenge, 'id'>): PaymentChallenge => ({
      id: createChallengeId(secret, fields),
      ...fields,
    });
    const base = { realm: 'r', method: 'lightning', intent: 'charge' };
    const request = (json: string) => encodeBase64Url(new TextEncoder().encode(json));
    const withHash = request(
      `{"amount":"1","currency":"sat","methodDetails":{"invoice":"lnbc1","paymentHash":"${triple.paymentHashHex}"}}`,
    );
    const noExpiry = sign({ ...base, request: withHash });
    expect(
      verifyPaymentCredential(
        { challenge: noExpiry, payload: { preimage: triple.preimageHex } },
        { secret },
      ).ok,
    ).toBe(true);
    // An offset is honoured: 12:10+00:30 is 11:40Z, before `now`.
    const offset = sign({ ...base, request: withHash, expires: '2026-03-15T12:10:00.5+00:30' });
    expect(
      verifyPaymentCredential(
        { challenge: offset, payload: { preimage: triple.preimageHex } },
        { secret, now },
      ),
    ).toMatchObject({
      code: 'challenge_expired',
    });
    const cases: [PaymentChallenge, string][] = [
      [sign({ ...base, request: withHash, expires: 'tomorrow' }), 'invalid_challenge'],
      [sign({ ...base, request: withHash, expires: '2026-02-30T00:00:00Z' }), 'invalid_challenge'],
      [sign({ ...base, request: withHash, expires: '2026-03-15T24:00:00Z' }), 'invalid_challenge'],
      [
        sign({ ...base, request: withHash, expires: '2026-03-15T12:00:00+24:00' }),
        'invalid_challenge',
      ],
      [
        sign({
          ...base,
          request: request('{"amount":"1","currency":"sat","methodDetails":{"invoice":"lnbc1"}}'),
        }),
        'invalid_challenge',
      ],
      [
        sign({
          ...base,
          request: request('{"amount":"x","currency":"sat","methodDetails":{"invoice":"lnbc1"}}'),
        }),
        'invalid_amount',
      ],
      [sign({ ...base, request: 'a+b' }), 'invalid_base64'],
    ];
    for (const [challenge, expected] of cases) {
      const result = verifyPaymentCredential(
        { challenge, payload: { preimage: triple.preimageHex } },
        { secret, now },
      );
      expect(result).toMatchObject({ ok: false, code: expected });
    }
  });
});
