import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_JSON } from '../../test/x402-vectors.js';
import { isTollwayError } from '../errors.js';
import {
  createMcpPaymentRequiredResult,
  mcpToolUrl,
  readMcpPayment,
  readMcpPaymentRequired,
  readMcpPaymentResponse,
  withMcpPaymentResponse,
  X402_MCP_KEYS,
} from './mcp.js';
import { parsePaymentRequiredHeader } from './payment-required.js';

/** The PaymentRequired an MCP server sends for `get_forecast`, in wire JSON. */
const requiredJson = {
  ...(JSON.parse(atob(PAYMENT_REQUIRED_HEADER)) as Record<string, unknown>),
  resource: {
    url: 'mcp://tool/get_forecast',
    description: 'The forecast',
    mimeType: 'application/json',
  },
};
const required = parsePaymentRequiredHeader(btoa(JSON.stringify(requiredJson)));
const settled = {
  success: true,
  transaction: '0x428878ee74fc36e1e0671f8aef64a83e03b0740ae7e62398cf6792aeb52b1731',
  network: 'eip155:31337',
  payer: '0xe431cA76aFFaEe665084E981331f6baada998331',
} as const;

describe('x402 over MCP', () => {
  it('names the meta keys and tool URLs as the specification does', () => {
    expect(X402_MCP_KEYS).toEqual({
      payment: 'x402/payment',
      paymentResponse: 'x402/payment-response',
      error: 'x402/error',
    });
    expect(mcpToolUrl('get_forecast')).toBe('mcp://tool/get_forecast');
  });

  it('writes the payment-required result: isError, structuredContent and the same JSON as text', () => {
    const result = createMcpPaymentRequiredResult(required);
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toEqual(requiredJson);
    expect(result.content).toHaveLength(1);
    expect(JSON.parse(result.content[0]?.text ?? '')).toEqual(requiredJson);
    expect(readMcpPaymentRequired(result)).toEqual(required);
  });

  it('adds a failed settlement to structuredContent', () => {
    const failed = {
      success: false,
      errorReason: 'invalid_transaction_state',
      transaction: '',
      network: 'eip155:31337',
    } as const;
    const result = createMcpPaymentRequiredResult(required, failed);
    expect(result.structuredContent).toEqual({ ...requiredJson, 'x402/payment-response': failed });
    expect(readMcpPaymentRequired(result)).toEqual(required);
    expect(readMcpPaymentResponse(result)).toEqual(failed);
  });

  it('reads every form a server may send, in the order of the specification', () => {
    const wrapper = {
      'x402/error': { code: 402, message: 'Payment required', data: requiredJson },
    };
    const text = (value: unknown) => [{ type: 'text', text: JSON.stringify(value) }];
    const forms = [
      { isError: true, structuredContent: requiredJson, content: [] },
      { isError: true, structuredContent: wrapper, content: [] },
      { isError: true, content: text(requiredJson) },
      { isError: true, content: text(wrapper) },
      // structuredContent that is not a PaymentRequired falls back to the text.
      { isError: true, structuredContent: { other: 1 }, content: text(requiredJson) },
    ];
    for (const form of forms) expect(readMcpPaymentRequired(form)).toEqual(required);
  });

  it('reads nothing from ordinary results and junk', () => {
    const junk: unknown[] = [
      undefined,
      null,
      'text',
      [],
      { content: [{ type: 'text', text: 'sunny' }] },
      { isError: false, structuredContent: requiredJson, content: [] },
      { isError: true, content: [{ type: 'text', text: 'the tool failed' }] },
      { isError: true, content: [{ type: 'text', text: '{"x402Version":2}' }] },
      { isError: true, content: [{ type: 'image', data: '', mimeType: 'image/png' }] },
      { isError: true, structuredContent: { ...requiredJson, accepts: 'none' }, content: [] },
      { isError: true, structuredContent: { 'x402/error': { data: 1 } }, content: [] },
    ];
    for (const value of junk) expect(readMcpPaymentRequired(value)).toBeUndefined();
  });

  it('reads the payment of a tools/call, and refuses a malformed one with a typed error', () => {
    const params = { name: 'get_forecast', _meta: { 'x402/payment': PAYMENT_SIGNATURE_JSON } };
    const payment = readMcpPayment(params);
    expect(payment?.accepted.amount).toBe(10_000n);
    expect(payment?.payload).toEqual(PAYMENT_SIGNATURE_JSON.payload);
    expect(readMcpPayment({ name: 'get_forecast' })).toBeUndefined();
    expect(readMcpPayment({ name: 'get_forecast', _meta: { progressToken: 1 } })).toBeUndefined();
    for (const bad of [null, 'x', { ...PAYMENT_SIGNATURE_JSON, x402Version: 1 }, {}]) {
      expect(() => readMcpPayment({ _meta: { 'x402/payment': bad } })).toThrow(
        expect.objectContaining({ code: 'invalid_x402_payload' }),
      );
    }
  });

  it('adds and reads the settlement of a paid result, keeping other _meta', () => {
    const result = { content: [{ type: 'text', text: 'sunny' }], _meta: { trace: 'abc' } };
    const paid = withMcpPaymentResponse(result, settled);
    expect(paid).toEqual({ ...result, _meta: { trace: 'abc', 'x402/payment-response': settled } });
    expect(readMcpPaymentResponse(paid)).toEqual(settled);
    expect(readMcpPaymentResponse(result)).toBeUndefined();
    expect(() =>
      readMcpPaymentResponse({ _meta: { 'x402/payment-response': { success: 'yes' } } }),
    ).toThrow(expect.objectContaining({ code: 'invalid_x402_payload' }));
    expect(() => withMcpPaymentResponse('text', settled)).toThrow(
      expect.objectContaining({ code: 'invalid_x402_payload' }),
    );
  });

  it('never crashes on junk: undefined, or a typed error where the reader may refuse', () => {
    const typedOrValue = (read: () => unknown): void => {
      try {
        read();
      } catch (error) {
        if (!isTollwayError(error, 'invalid_x402_payload')) throw error;
      }
    };
    const junk = fc.oneof(
      fc.jsonValue(),
      fc.anything(),
      fc.record({
        isError: fc.constant(true),
        structuredContent: fc.oneof(fc.jsonValue(), fc.constant(requiredJson)),
        content: fc.array(
          fc.record({ type: fc.constant('text'), text: fc.oneof(fc.string(), fc.json()) }),
        ),
      }),
    );
    fc.assert(
      fc.property(junk, (value) => {
        expect(() => readMcpPaymentRequired(value)).not.toThrow();
        typedOrValue(() => readMcpPayment(value));
        typedOrValue(() => readMcpPayment({ _meta: { 'x402/payment': value } }));
        typedOrValue(() => readMcpPaymentResponse(value));
        typedOrValue(() => readMcpPaymentResponse({ _meta: { 'x402/payment-response': value } }));
      }),
      { numRuns: 2000 },
    );
  });
});
