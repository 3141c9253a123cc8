import { decodePaymentRequiredHeader, encodePaymentRequiredHeader } from '@x402/core/http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAYMENT_REQUIRED_HEADER } from '../../test/x402-vectors.js';
import { isTollwayError } from '../errors.js';
import { formatPaymentRequiredHeader, parsePaymentRequiredHeader } from './payment-required.js';
import type { X402PaymentRequired, X402PaymentRequirements } from './types.js';
import { X402_MAX_HEADER_LENGTH } from './wire.js';

const code = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
};
const encode = (value: unknown) => btoa(JSON.stringify(value));

const requirements: X402PaymentRequirements = {
  scheme: 'exact',
  network: 'eip155:8453',
  asset: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
  amount: 10_000n,
  payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
  maxTimeoutSeconds: 60,
  extra: { name: 'USD Coin', version: '2' },
};
const required: X402PaymentRequired = {
  x402Version: 2,
  resource: { url: 'https://api.example.com/forecast' },
  accepts: [requirements],
};

describe('PAYMENT-REQUIRED', () => {
  it('reads the header @x402/express 2.27 sent, and writes it back byte for byte', () => {
    const parsed = parsePaymentRequiredHeader(PAYMENT_REQUIRED_HEADER);
    expect(parsed).toEqual({
      x402Version: 2,
      error: 'Payment required',
      resource: { url: 'http://127.0.0.1:4555/paid', description: 'local test', mimeType: '' },
      accepts: [
        {
          scheme: 'exact',
          network: 'eip155:31337',
          amount: 10_000n,
          asset: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
          payTo: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
          maxTimeoutSeconds: 60,
          extra: { name: 'USD Coin', version: '2' },
        },
      ],
    });
    expect(formatPaymentRequiredHeader(parsed)).toBe(PAYMENT_REQUIRED_HEADER);
  });

  it('agrees with @x402/core in both directions', () => {
    const ours = formatPaymentRequiredHeader({ ...required, extensions: { bazaar: { info: {} } } });
    expect(decodePaymentRequiredHeader(ours)).toEqual({
      x402Version: 2,
      resource: required.resource,
      accepts: [{ ...requirements, amount: '10000' }],
      extensions: { bazaar: { info: {} } },
    });
    const theirs = encodePaymentRequiredHeader({
      x402Version: 2,
      error: 'Payment required',
      resource: { url: 'https://a.example/x', description: 'x', mimeType: 'text/plain' },
      accepts: [{ ...requirements, amount: '123456789012345678901234567890' }],
    });
    expect(parsePaymentRequiredHeader(theirs).accepts[0]?.amount).toBe(
      123456789012345678901234567890n,
    );
  });

  it('reads optional members sent as null as absent, and a missing extra as {}', () => {
    const { extra: _extra, ...withoutExtra } = { ...requirements, amount: '1' };
    const parsed = parsePaymentRequiredHeader(
      encode({
        x402Version: 2,
        error: null,
        resource: { url: 'u', description: null },
        accepts: [withoutExtra],
        extensions: null,
      }),
    );
    expect(parsed).toEqual({
      x402Version: 2,
      resource: { url: 'u' },
      accepts: [{ ...requirements, amount: 1n, extra: {} }],
    });
  });

  it('accepts an empty accepts list (an auth-only challenge)', () => {
    expect(
      parsePaymentRequiredHeader(formatPaymentRequiredHeader({ ...required, accepts: [] })).accepts,
    ).toEqual([]);
  });

  it.each([
    ['version 1', { x402Version: 1 }],
    ['a leading zero', { amount: '010' }],
    ['a negative amount', { amount: '-1' }],
    ['a fractional amount', { amount: '1.5' }],
    ['an amount as a number', { amount: 10000 }],
    ['an amount over uint256', { amount: (2n ** 256n).toString() }],
    ['a network that is not CAIP-2', { network: 'base' }],
    ['a fractional timeout', { maxTimeoutSeconds: 1.5 }],
    ['no payTo', { payTo: '' }],
  ])('refuses %s', (_name, change) => {
    const wire = { ...requirements, amount: '10000', ...change };
    const version = 'x402Version' in change ? change.x402Version : 2;
    const value = encode({ x402Version: version, resource: { url: 'u' }, accepts: [wire] });
    expect(code(() => parsePaymentRequiredHeader(value))).toBe('invalid_x402_payload');
  });

  it('refuses more than 64 accepts and over-long values', () => {
    const many = encode({
      x402Version: 2,
      resource: { url: 'u' },
      accepts: Array(65).fill({ ...requirements, amount: '1' }),
    });
    expect(code(() => parsePaymentRequiredHeader(many))).toBe('invalid_x402_payload');
    expect(code(() => parsePaymentRequiredHeader('e'.repeat(X402_MAX_HEADER_LENGTH + 1)))).toBe(
      'invalid_x402_payload',
    );
  });

  it('refuses to write what it would not read', () => {
    expect(
      code(() =>
        formatPaymentRequiredHeader({ ...required, accepts: [{ ...requirements, amount: -1n }] }),
      ),
    ).toBe('invalid_amount');
    expect(
      code(() =>
        formatPaymentRequiredHeader({
          ...required,
          accepts: [{ ...requirements, network: 'base' as 'a:b' }],
        }),
      ),
    ).toBe('invalid_x402_payload');
    expect(
      code(() =>
        formatPaymentRequiredHeader({
          ...required,
          accepts: [{ ...requirements, extra: { n: 1n } }],
        }),
      ),
    ).toBe('invalid_x402_payload');
    expect(
      code(() =>
        formatPaymentRequiredHeader({
          ...required,
          resource: { url: 'u'.repeat(X402_MAX_HEADER_LENGTH) },
        }),
      ),
    ).toBe('invalid_x402_payload');
  });

  it('round-trips any well-formed challenge (property)', () => {
    const requirementsArb = fc.record({
      scheme: fc.string({ minLength: 1, maxLength: 10 }),
      network: fc.constantFrom(
        'eip155:1',
        'eip155:31337',
        'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp',
      ),
      asset: fc.string({ minLength: 1, maxLength: 42 }),
      amount: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
      payTo: fc.string({ minLength: 1, maxLength: 42 }),
      maxTimeoutSeconds: fc.integer({ min: 1, max: 86_400 }),
      extra: fc.dictionary(
        fc.string({ maxLength: 8 }),
        fc.oneof(fc.string(), fc.integer(), fc.boolean()),
        {
          maxKeys: 3,
        },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(requirementsArb, { maxLength: 4 }),
        fc.option(fc.string(), { nil: undefined }),
        fc.string({ minLength: 1, maxLength: 40 }),
        (accepts, error, url) => {
          const value: X402PaymentRequired = {
            x402Version: 2,
            resource: { url },
            accepts: accepts as X402PaymentRequirements[],
            ...(error === undefined ? {} : { error }),
          };
          expect(parsePaymentRequiredHeader(formatPaymentRequiredHeader(value))).toEqual(value);
        },
      ),
      { numRuns: 200 },
    );
  });
});
