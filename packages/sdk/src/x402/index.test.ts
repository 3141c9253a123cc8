import { describe, expect, it } from 'vitest';
import * as x402 from './index.js';

describe('@tollway/sdk/x402', () => {
  it('exports exactly these values (types aside)', () => {
    expect(Object.keys(x402).sort()).toEqual([
      'X402_HEADERS',
      'X402_MAX_BODY_LENGTH',
      'X402_MAX_HEADER_LENGTH',
      'createEvmWallet',
      'createFacilitatorClient',
      'createFacilitatorHandler',
      'createSelfHostedFacilitator',
      'formatPaymentRequiredHeader',
      'formatPaymentRequiredV1Body',
      'formatPaymentResponseHeader',
      'formatPaymentSignatureHeader',
      'formatXPaymentHeader',
      'formatXPaymentResponseHeader',
      'isX402Network',
      'networkFromV1',
      'networkToV1',
      'parseExactEvmPayload',
      'parsePaymentRequiredHeader',
      'parsePaymentRequiredV1Body',
      'parsePaymentResponseHeader',
      'parsePaymentSignatureHeader',
      'parseXPaymentHeader',
      'parseXPaymentResponseHeader',
    ]);
  });
});
