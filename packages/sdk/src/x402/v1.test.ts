import { describe, expect, it } from 'vitest';
import { PAYMENT_REQUIRED_V1_BODY, PAYMENT_SIGNATURE_JSON } from '../../test/x402-vectors.js';
import { isTollwayError } from '../errors.js';
import {
  formatPaymentRequiredV1Body,
  formatXPaymentHeader,
  formatXPaymentResponseHeader,
  parsePaymentRequiredV1Body,
  parseXPaymentHeader,
  parseXPaymentResponseHeader,
} from './v1.js';
import { networkFromV1, networkToV1 } from './v1-networks.js';

const code = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
};

describe('x402 v1', () => {
  it('reads the 402 body of the v1 specification, network as CAIP-2, amount as bigint', () => {
    const required = parsePaymentRequiredV1Body(PAYMENT_REQUIRED_V1_BODY);
    expect(required.error).toBe('X-PAYMENT header is required');
    expect(required.accepts[0]).toEqual({
      scheme: 'exact',
      network: 'eip155:84532',
      maxAmountRequired: 10_000n,
      asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
      payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
      resource: 'https://api.example.com/premium-data',
      description: 'Access to premium market data',
      mimeType: 'application/json',
      maxTimeoutSeconds: 60,
      extra: { name: 'USDC', version: '2' },
    });
  });

  it('writes the body back with v1 names and reads it again to the same value', () => {
    const required = parsePaymentRequiredV1Body(PAYMENT_REQUIRED_V1_BODY);
    const body = formatPaymentRequiredV1Body(required);
    expect(JSON.parse(body).accepts[0]).toMatchObject({
      network: 'base-sepolia',
      maxAmountRequired: '10000',
    });
    expect(parsePaymentRequiredV1Body(body)).toEqual(required);
  });

  it('ignores the other members of a Tollway 402 body, and defaults what v1 servers omit', () => {
    const wire = JSON.parse(PAYMENT_REQUIRED_V1_BODY);
    const { description: _d, mimeType: _m, extra: _e, ...bare } = wire.accepts[0];
    const body = JSON.stringify({
      ...wire,
      type: 'https://paymentauth.org/problems/payment-required',
      offers: [],
      accepts: [bare],
    });
    expect(parsePaymentRequiredV1Body(body).accepts[0]).toMatchObject({
      description: '',
      mimeType: '',
      extra: {},
    });
  });

  it('cannot name a local chain, and does not know made-up names', () => {
    const required = parsePaymentRequiredV1Body(PAYMENT_REQUIRED_V1_BODY);
    const local = {
      ...required,
      accepts: required.accepts.map((a) => ({ ...a, network: 'eip155:31337' as const })),
    };
    expect(code(() => formatPaymentRequiredV1Body(local))).toBe('unsupported_network');
    expect(
      code(() =>
        parsePaymentRequiredV1Body(PAYMENT_REQUIRED_V1_BODY.replace('base-sepolia', 'made-up')),
      ),
    ).toBe('unsupported_network');
    expect(code(() => parsePaymentRequiredV1Body('{"x402Version":1,'))).toBe(
      'invalid_x402_payload',
    );
    expect(
      code(() => parsePaymentRequiredV1Body(JSON.stringify({ x402Version: 2, accepts: [] }))),
    ).toBe('invalid_x402_payload');
  });

  it('round-trips X-PAYMENT and X-PAYMENT-RESPONSE with v1 network names on the wire', () => {
    const payment = {
      x402Version: 1 as const,
      scheme: 'exact',
      network: 'eip155:8453' as const,
      payload: PAYMENT_SIGNATURE_JSON.payload,
    };
    const header = formatXPaymentHeader(payment);
    expect(JSON.parse(atob(header)).network).toBe('base');
    expect(parseXPaymentHeader(header)).toEqual(payment);
    const receipt = {
      success: true,
      transaction: '0xab',
      network: 'eip155:84532' as const,
      payer: '0x1',
    };
    const receiptHeader = formatXPaymentResponseHeader(receipt);
    expect(JSON.parse(atob(receiptHeader)).network).toBe('base-sepolia');
    expect(parseXPaymentResponseHeader(receiptHeader)).toEqual(receipt);
    expect(
      code(() =>
        parseXPaymentHeader(btoa(JSON.stringify({ ...payment, network: 'base', x402Version: 2 }))),
      ),
    ).toBe('invalid_x402_payload');
  });

  it('maps every v1 network name to CAIP-2 and back', () => {
    for (const name of [
      'base',
      'base-sepolia',
      'ethereum',
      'polygon-amoy',
      'solana',
      'solana-devnet',
      'flare',
    ]) {
      expect(networkToV1(networkFromV1(name))).toBe(name);
    }
    expect(networkFromV1('solana')).toBe('solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp');
    expect(code(() => networkToV1('eip155:31337'))).toBe('unsupported_network');
  });
});
