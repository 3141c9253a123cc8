import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { encodeBase64Url } from './base64url.js';
import {
  decodeChargeRequest,
  encodeChargeRequest,
  type LightningChargeRequest,
} from './charge-request.js';

const HASH = '7cef93f2c51aa65208bec1447fc38fc58d9bce1375a532edb0dcd290a2c330ae';

function encodeText(json: string): string {
  return encodeBase64Url(new TextEncoder().encode(json));
}

function code(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('encodeChargeRequest', () => {
  it('writes JCS JSON: sorted members, amount as a decimal string, hash lower-cased', () => {
    const request = encodeChargeRequest({
      amountSat: 100n,
      invoice: 'lnbc1u1p',
      paymentHash: HASH.toUpperCase(),
      network: 'mainnet',
      description: 'Q&A <b>',
    });
    expect(request).toBe(
      encodeText(
        `{"amount":"100","currency":"sat","description":"Q&A <b>","methodDetails":{"invoice":"lnbc1u1p","network":"mainnet","paymentHash":"${HASH}"}}`,
      ),
    );
  });

  it('refuses a non-positive amount and a bad payment hash', () => {
    expect(code(() => encodeChargeRequest({ amountSat: 0n, invoice: 'lnbc1' }))).toBe(
      'invalid_amount',
    );
    expect(
      code(() => encodeChargeRequest({ amountSat: 1n, invoice: 'lnbc1', paymentHash: 'bc230847' })),
    ).toBe('invalid_hex');
  });

  const request = fc.record(
    {
      amountSat: fc.bigInt({ min: 1n, max: 2n ** 70n }),
      invoice: fc.string({ minLength: 1 }),
      description: fc.string(),
      paymentHash: fc
        .uint8Array({ minLength: 32, maxLength: 32 })
        .map((b) => Buffer.from(b).toString('hex')),
      network: fc.constantFrom('mainnet', 'testnet', 'signet', 'regtest'),
    },
    { requiredKeys: ['amountSat', 'invoice'] },
  );

  it('round-trips through decodeChargeRequest (property)', () => {
    fc.assert(
      fc.property(request, (value: LightningChargeRequest) => {
        expect(decodeChargeRequest(encodeChargeRequest(value))).toEqual(value);
      }),
    );
  });
});

describe('decodeChargeRequest', () => {
  const valid = { amount: '21', currency: 'sat', methodDetails: { invoice: 'lnbc1' } };

  it('ignores members it does not know', () => {
    const json = {
      ...valid,
      recipient: 'x',
      externalId: 7,
      methodDetails: { invoice: 'lnbc1', extra: [] },
    };
    expect(decodeChargeRequest(encodeText(JSON.stringify(json)))).toEqual({
      amountSat: 21n,
      invoice: 'lnbc1',
    });
  });

  it('rejects bad encodings and shapes with typed errors', () => {
    const cases: [unknown, string][] = [
      [{ ...valid, amount: '0' }, 'invalid_amount'],
      [{ ...valid, amount: '021' }, 'invalid_amount'],
      [{ ...valid, amount: '-1' }, 'invalid_amount'],
      [{ ...valid, amount: '1.5' }, 'invalid_amount'],
      [{ ...valid, amount: 21 }, 'invalid_amount'],
      [{ ...valid, currency: 'usd' }, 'invalid_json'],
      [{ ...valid, methodDetails: undefined }, 'invalid_json'],
      [{ ...valid, methodDetails: [] }, 'invalid_json'],
      [{ ...valid, methodDetails: { invoice: '' } }, 'invalid_json'],
      [{ ...valid, methodDetails: { invoice: 1 } }, 'invalid_json'],
      [{ ...valid, methodDetails: { invoice: 'lnbc1', paymentHash: 'bc230847' } }, 'invalid_hex'],
      [{ ...valid, methodDetails: { invoice: 'lnbc1', network: 1 } }, 'invalid_json'],
      [{ ...valid, description: null }, 'invalid_json'],
      [[valid], 'invalid_json'],
    ];
    for (const [json, expected] of cases) {
      expect([json, code(() => decodeChargeRequest(encodeText(JSON.stringify(json))))]).toEqual([
        json,
        expected,
      ]);
    }
    expect(code(() => decodeChargeRequest('not base64!'))).toBe('invalid_base64');
    expect(code(() => decodeChargeRequest(encodeText('{"amount":"1"')))).toBe('invalid_json');
  });
});
