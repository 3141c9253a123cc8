import { describe, expect, it } from 'vitest';
import { PAYMENT_SIGNATURE_JSON } from '../../test/x402-vectors.js';
import { isTollwayError } from '../errors.js';
import { parseExactEvmPayload } from './exact-evm.js';

const { payload } = PAYMENT_SIGNATURE_JSON;

describe('parseExactEvmPayload', () => {
  it('reads an EIP-3009 payload with bigint amounts and times', () => {
    expect(parseExactEvmPayload(payload)).toEqual({
      signature: payload.signature,
      authorization: {
        ...payload.authorization,
        value: 10_000n,
        validAfter: 0n,
        validBefore: 1_795_557_423n,
      },
    });
  });

  it.each([
    ['a Permit2 payload', { signature: payload.signature, permit2Authorization: {} }],
    ['a short nonce', { ...payload, authorization: { ...payload.authorization, nonce: '0x01' } }],
    ['a bad address', { ...payload, authorization: { ...payload.authorization, to: '0x3C44' } }],
    ['a 64-byte signature', { ...payload, signature: payload.signature.slice(0, -2) }],
    ['a negative value', { ...payload, authorization: { ...payload.authorization, value: '-1' } }],
  ])('refuses %s', (_name, value) => {
    try {
      parseExactEvmPayload(value);
      expect.fail('parsed');
    } catch (error) {
      expect(isTollwayError(error, 'invalid_x402_payload')).toBe(true);
    }
  });
});
