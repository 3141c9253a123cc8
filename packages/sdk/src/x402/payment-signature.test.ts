import { decodePaymentSignatureHeader, encodePaymentSignatureHeader } from '@x402/core/http';
import type { PaymentPayload } from '@x402/core/types';
import { describe, expect, it } from 'vitest';
import { PAYMENT_SIGNATURE_JSON } from '../../test/x402-vectors.js';
import { isTollwayError } from '../errors.js';
import { formatPaymentSignatureHeader, parsePaymentSignatureHeader } from './payment-signature.js';

const captured = PAYMENT_SIGNATURE_JSON as PaymentPayload;
const code = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
};

describe('PAYMENT-SIGNATURE', () => {
  it('reads a payment @x402/fetch 2.27 sent, encoded by @x402/core', () => {
    const payment = parsePaymentSignatureHeader(encodePaymentSignatureHeader(captured));
    expect(payment.accepted).toEqual({ ...PAYMENT_SIGNATURE_JSON.accepted, amount: 10_000n });
    expect(payment.payload).toEqual(PAYMENT_SIGNATURE_JSON.payload);
    expect(payment.resource).toEqual(PAYMENT_SIGNATURE_JSON.resource);
  });

  it('writes what @x402/core reads as the same payment', () => {
    const payment = parsePaymentSignatureHeader(encodePaymentSignatureHeader(captured));
    expect(decodePaymentSignatureHeader(formatPaymentSignatureHeader(payment))).toEqual(captured);
  });

  it('keeps extensions, and reads a null resource as absent', () => {
    const header = btoa(
      JSON.stringify({
        ...captured,
        resource: null,
        extensions: { 'payment-identifier': { info: { id: 'pay_1' } } },
      }),
    );
    const payment = parsePaymentSignatureHeader(header);
    expect(payment.resource).toBeUndefined();
    expect(payment.extensions).toEqual({ 'payment-identifier': { info: { id: 'pay_1' } } });
    expect(parsePaymentSignatureHeader(formatPaymentSignatureHeader(payment))).toEqual(payment);
  });

  it.each([
    ['a v1 payment', { x402Version: 1 }],
    ['no accepted requirements', { accepted: undefined }],
    ['a payload that is not an object', { payload: 'sig' }],
    [
      'an accepted amount that is not a decimal string',
      { accepted: { ...captured.accepted, amount: '1e4' } },
    ],
  ])('refuses %s', (_name, change) => {
    expect(
      code(() => parsePaymentSignatureHeader(btoa(JSON.stringify({ ...captured, ...change })))),
    ).toBe('invalid_x402_payload');
  });
});
