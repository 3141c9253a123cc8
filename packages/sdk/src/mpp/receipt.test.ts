import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { encodeBase64Url } from './base64url.js';
import { formatPaymentReceipt, type PaymentReceipt, parsePaymentReceipt } from './receipt.js';

// The Aperture receipt vectors are replayed in test/mpp-vectors.test.ts.
const receipt: PaymentReceipt = {
  status: 'success',
  method: 'lightning',
  timestamp: '2026-03-10T21:00:00Z',
  reference: 'ab'.repeat(32),
};

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

describe('formatPaymentReceipt', () => {
  it('leaves out an empty challengeId and a zero refund', () => {
    expect(formatPaymentReceipt({ ...receipt, challengeId: '' })).toBe(
      encodeText(
        `{"status":"success","method":"lightning","timestamp":"2026-03-10T21:00:00Z","reference":"${receipt.reference}"}`,
      ),
    );
    expect(formatPaymentReceipt({ ...receipt, refundSats: 0n, refundStatus: 'skipped' })).toBe(
      encodeText(
        `{"method":"lightning","reference":"${receipt.reference}","status":"success","timestamp":"2026-03-10T21:00:00Z","refundStatus":"skipped"}`,
      ),
    );
  });

  it('refuses a refund outside int64 or below zero', () => {
    expect(code(() => formatPaymentReceipt({ ...receipt, refundSats: -1n }))).toBe(
      'invalid_amount',
    );
    expect(code(() => formatPaymentReceipt({ ...receipt, refundSats: 2n ** 63n }))).toBe(
      'invalid_amount',
    );
  });

  const receipts = fc.record(
    {
      status: fc.string(),
      method: fc.string(),
      timestamp: fc.string(),
      reference: fc.string(),
      challengeId: fc.string({ minLength: 1 }),
      refundSats: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }),
      refundStatus: fc.string({ minLength: 1 }),
    },
    { requiredKeys: ['status', 'method', 'timestamp', 'reference'] },
  );

  it('round-trips through parsePaymentReceipt (property)', () => {
    fc.assert(
      fc.property(receipts, (value: PaymentReceipt) => {
        const formatted = formatPaymentReceipt(value);
        expect(parsePaymentReceipt(formatted)).toEqual(value);
      }),
    );
  });
});

describe('parsePaymentReceipt', () => {
  it('ignores unknown members and trims surrounding space', () => {
    const text = encodeText(
      `{"status":"success","method":"m","timestamp":"t","reference":"r","extra":[1],"challengeId":""}`,
    );
    expect(parsePaymentReceipt(` ${text} `)).toEqual({
      status: 'success',
      method: 'm',
      timestamp: 't',
      reference: 'r',
    });
  });

  it('rejects bad receipts with invalid_receipt', () => {
    const bad = [
      '{"method":"m","timestamp":"t","reference":"r"}',
      '{"status":"s","method":"m","timestamp":"t","reference":1}',
      '{"status":"s","method":"m","timestamp":"t","reference":"r","refundSats":-1}',
      '{"status":"s","method":"m","timestamp":"t","reference":"r","refundSats":1.5}',
      '{"status":"s","method":"m","timestamp":"t","reference":"r","refundSats":9223372036854775808}',
      '{"status":"s","method":"m","timestamp":"t","reference":"r","refundSats":"1"}',
      '{"status":"s","method":"m","timestamp":"t","reference":"r","challengeId":null}',
      '[]',
      '{',
    ];
    for (const json of bad)
      expect([json, code(() => parsePaymentReceipt(encodeText(json)))]).toEqual([
        json,
        'invalid_receipt',
      ]);
    expect(code(() => parsePaymentReceipt('a+b/'))).toBe('invalid_receipt');
    expect(code(() => parsePaymentReceipt(''))).toBe('invalid_receipt');
  });
});
