import { describe, expect, it } from 'vitest';
import * as x402 from './index.js';

describe('@tollway/sdk/x402', () => {
  it('exports exactly these values (types aside)', () => {
    expect(Object.keys(x402).sort()).toEqual([
      'X402_HEADERS',
      'X402_MAX_BODY_LENGTH',
      'X402_MAX_HEADER_LENGTH',
      'X402_MCP_KEYS',
      'createEvmWallet',
      'createFacilitatorClient',
      'createFacilitatorHandler',
      'createMcpPaymentRequiredResult',
      'createSelfHostedFacilitator',
      'formatPaymentRequiredHeader',
      'formatPaymentRequiredV1Body',
      'formatPaymentResponseHeader',
      'formatPaymentSignatureHeader',
      'formatXPaymentHeader',
      'formatXPaymentResponseHeader',
      'isX402Network',
      'mcpToolUrl',
      'networkFromV1',
      'networkToV1',
      'parseExactEvmPayload',
      'parsePaymentRequiredHeader',
      'parsePaymentRequiredV1Body',
      'parsePaymentResponseHeader',
      'parsePaymentSignatureHeader',
      'parseXPaymentHeader',
      'parseXPaymentResponseHeader',
      'readMcpPayment',
      'readMcpPaymentRequired',
      'readMcpPaymentResponse',
      'withMcpPaymentResponse',
    ]);
  });
});
