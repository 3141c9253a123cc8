import { decodePaymentResponseHeader, encodePaymentResponseHeader } from '@x402/core/http';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { formatPaymentResponseHeader, parsePaymentResponseHeader } from './payment-response.js';

const success = {
  success: true,
  transaction: '0x428878ee74fc36e1e0671f8aef64a83e03b0740ae7e62398cf6792aeb52b1731',
  network: 'eip155:31337' as const,
  payer: '0xe431cA76aFFaEe665084E981331f6baada998331',
};

describe('PAYMENT-RESPONSE', () => {
  it('reads what @x402/core writes, success and failure', () => {
    expect(parsePaymentResponseHeader(encodePaymentResponseHeader(success))).toEqual(success);
    const failure = {
      success: false,
      errorReason: 'insufficient_funds',
      transaction: '',
      network: 'eip155:84532' as const,
      payer: '0x857b',
    };
    expect(parsePaymentResponseHeader(encodePaymentResponseHeader(failure))).toEqual(failure);
  });

  it('writes what @x402/core reads, with the settled amount as a decimal string', () => {
    const header = formatPaymentResponseHeader({ ...success, amount: 2_350_000n });
    expect(decodePaymentResponseHeader(header)).toEqual({ ...success, amount: '2350000' });
    expect(parsePaymentResponseHeader(header)).toEqual({ ...success, amount: 2_350_000n });
  });

  it('reads an empty amount (batch settlement) as absent', () => {
    expect(parsePaymentResponseHeader(btoa(JSON.stringify({ ...success, amount: '' })))).toEqual(
      success,
    );
  });

  it('refuses a receipt without a transaction or with a bad network', () => {
    const { transaction: _t, ...noTransaction } = success;
    for (const value of [
      noTransaction,
      { ...success, network: 'base' },
      { ...success, success: 'yes' },
    ]) {
      try {
        parsePaymentResponseHeader(btoa(JSON.stringify(value)));
        expect.fail('parsed');
      } catch (error) {
        expect(isTollwayError(error, 'invalid_x402_payload')).toBe(true);
      }
    }
  });
});
