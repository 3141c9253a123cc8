import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { createPreimage, encodeInvoice } from './bolt11.js';
import { decodeCreatedInvoice } from './created-invoice.js';

const { paymentHash } = createPreimage();
const paymentRequest = encodeInvoice({
  network: 'regtest',
  amountMsat: 21_000n,
  paymentHash,
  description: 'forecast',
  privateKey: '11'.repeat(32),
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

describe('decodeCreatedInvoice', () => {
  it('returns the invoice the backend created for the hash and amount asked', () => {
    const created = decodeCreatedInvoice('LND', { paymentRequest, paymentHash }, 21_000n);
    expect(created).toEqual({
      paymentRequest,
      paymentHash,
      amountMsat: 21_000n,
      expiresAt: expect.any(Number),
    });
  });

  it('blames the backend for garbage, another hash or another amount', () => {
    const other = createPreimage().paymentHash;
    expect(
      codeOf(() =>
        decodeCreatedInvoice('LND', { paymentRequest: 'lnbcrt1x', paymentHash }, 21_000n),
      ),
    ).toBe('backend_error');
    expect(
      codeOf(() => decodeCreatedInvoice('LND', { paymentRequest, paymentHash: other }, 21_000n)),
    ).toBe('backend_error');
    expect(codeOf(() => decodeCreatedInvoice('LND', { paymentRequest, paymentHash }, 0n))).toBe(
      'backend_error',
    );
  });

  it('reports an invoice for another network as wrong_network', () => {
    expect(
      codeOf(() =>
        decodeCreatedInvoice('LNbits', { paymentRequest, paymentHash }, 21_000n, 'mainnet'),
      ),
    ).toBe('wrong_network');
  });
});
