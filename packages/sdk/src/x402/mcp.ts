/**
 * x402 over MCP (the x402 Foundation's `transports-v2/mcp.md`): a paid tool answers an unpaid
 * `tools/call` with a tool result (`isError: true`) whose `structuredContent` is the v2
 * PaymentRequired and whose first text content is the same JSON; the client retries with the v2
 * PaymentPayload in `params._meta["x402/payment"]`; the paid result carries the SettleResponse in
 * `_meta["x402/payment-response"]`.
 *
 * Hand-written: `@x402/mcp` is not available on the registry this project installs from. Readers
 * also accept the earlier draft, which wrapped the PaymentRequired as
 * `{"x402/error": {code: 402, message, data}}` in the first text content.
 */
import { isTollwayError } from '../errors.js';
import { isRecord } from '../internal/is-record.js';
import { formatPaymentRequiredHeader, parsePaymentRequiredHeader } from './payment-required.js';
import { settleResponseSchema, settleResponseToWire } from './payment-response.js';
import { paymentPayloadSchema } from './payment-signature.js';
import type { X402PaymentPayload, X402PaymentRequired, X402SettleResponse } from './types.js';
import { decodeBase64Json, encodeBase64Json, invalidPayload, parseWith } from './wire.js';

/**
 * The `_meta` keys and the legacy wrapper key of x402 over MCP.
 *
 * @example
 * ```ts
 * const params = { name: 'get_forecast', arguments: {}, _meta: { [X402_MCP_KEYS.payment]: payment } };
 * ```
 */
export const X402_MCP_KEYS = {
  /** In `params._meta` of a `tools/call`: the v2 PaymentPayload. */
  payment: 'x402/payment',
  /** In `_meta` of a paid tool result (or `structuredContent` of a failed one): the SettleResponse. */
  paymentResponse: 'x402/payment-response',
  /** The earlier draft's wrapper of a PaymentRequired: `{code: 402, message, data}`. */
  error: 'x402/error',
} as const;

/** An MCP tool result (`CallToolResult`) as far as x402 reads and writes it. */
export interface McpToolResult {
  content: Array<{ type: 'text'; text: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  _meta?: Record<string, unknown>;
  [member: string]: unknown;
}

/** The resource URL x402 over MCP names a tool by: `mcp://tool/<name>`. */
export function mcpToolUrl(name: string): string {
  return `mcp://tool/${name}`;
}

/** The wire JSON of a PaymentRequired, validated by the header codec (which also checks sizes). */
function paymentRequiredToWire(required: X402PaymentRequired): Record<string, unknown> {
  return decodeBase64Json(formatPaymentRequiredHeader(required), 'PaymentRequired') as Record<
    string,
    unknown
  >;
}

/** A v2 PaymentRequired from its wire JSON, through the header codec; throws `invalid_x402_payload`. */
function paymentRequiredFromWire(value: unknown): X402PaymentRequired {
  return parsePaymentRequiredHeader(encodeBase64Json(value, 'PaymentRequired'));
}

/**
 * The tool result that asks for payment: `isError: true`, the PaymentRequired as
 * `structuredContent` and as the JSON text of the first content. With `settlement` (a failed
 * SettleResponse), `structuredContent` also carries it under `x402/payment-response`. Throws
 * `invalid_x402_payload` for a PaymentRequired that would not parse back.
 *
 * @example
 * ```ts
 * const result = createMcpPaymentRequiredResult({
 *   x402Version: 2,
 *   error: 'Payment required',
 *   resource: { url: mcpToolUrl('get_forecast'), description: 'Forecast', mimeType: 'application/json' },
 *   accepts: [requirements],
 * });
 * return { jsonrpc: '2.0', id, result };
 * ```
 */
export function createMcpPaymentRequiredResult(
  required: X402PaymentRequired,
  settlement?: X402SettleResponse,
): McpToolResult {
  const wire = paymentRequiredToWire(required);
  const structured =
    settlement === undefined
      ? wire
      : { ...wire, [X402_MCP_KEYS.paymentResponse]: settleResponseToWire(settlement) };
  return {
    content: [{ type: 'text', text: JSON.stringify(structured) }],
    structuredContent: structured,
    isError: true,
  };
}

/** `value` read as a PaymentRequired, or undefined. */
function readRequired(value: unknown): X402PaymentRequired | undefined {
  if (!isRecord(value) || value.x402Version === undefined) return undefined;
  const { [X402_MCP_KEYS.paymentResponse]: _settlement, ...required } = value;
  try {
    return paymentRequiredFromWire(required);
  } catch (error) {
    if (isTollwayError(error)) return undefined;
    throw error;
  }
}

/** The PaymentRequired inside an `x402/error` wrapper, or undefined. */
function readWrapped(value: unknown): X402PaymentRequired | undefined {
  if (!isRecord(value)) return undefined;
  const wrapper = value[X402_MCP_KEYS.error];
  return isRecord(wrapper) ? readRequired(wrapper.data) : undefined;
}

/**
 * The PaymentRequired a tool result asks for, or undefined for an ordinary result (or junk).
 * Reads, in order: `structuredContent` when it has `x402Version`; `structuredContent["x402/error"].data`;
 * the first content's text parsed as a PaymentRequired or as the `x402/error` wrapper. Only
 * results with `isError: true` ask for payment. Never throws.
 *
 * @example
 * ```ts
 * const required = readMcpPaymentRequired(await client.callTool({ name: 'get_forecast' }));
 * if (required) console.log(required.accepts[0]?.amount); // 10000n
 * ```
 */
export function readMcpPaymentRequired(result: unknown): X402PaymentRequired | undefined {
  if (!isRecord(result) || result.isError !== true) return undefined;
  const structured = result.structuredContent;
  if (isRecord(structured)) {
    const found =
      structured.x402Version !== undefined ? readRequired(structured) : readWrapped(structured);
    if (found !== undefined) return found;
  }
  const content = result.content;
  const first = Array.isArray(content) ? (content[0] as unknown) : undefined;
  if (!isRecord(first) || first.type !== 'text' || typeof first.text !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(first.text);
  } catch {
    return undefined;
  }
  return readRequired(parsed) ?? readWrapped(parsed);
}

/**
 * The payment in the `params` of a `tools/call` (`params._meta["x402/payment"]`), or undefined
 * when there is none. Throws `invalid_x402_payload` when it is not a v2 PaymentPayload.
 *
 * @example
 * ```ts
 * const payment = readMcpPayment(message.params);
 * if (payment) console.log(payment.accepted.amount); // 10000n
 * ```
 */
export function readMcpPayment(params: unknown): X402PaymentPayload | undefined {
  if (!isRecord(params) || !isRecord(params._meta)) return undefined;
  if (!Object.hasOwn(params._meta, X402_MCP_KEYS.payment)) return undefined;
  return parseWith(paymentPayloadSchema, params._meta[X402_MCP_KEYS.payment], 'x402/payment');
}

/**
 * The SettleResponse of a tool result: `_meta["x402/payment-response"]` (paid), else
 * `structuredContent["x402/payment-response"]` (settlement failed); undefined when there is none.
 * Throws `invalid_x402_payload` when one is present but malformed.
 *
 * @example
 * ```ts
 * const receipt = readMcpPaymentResponse(result);
 * if (receipt?.success) console.log('paid in', receipt.transaction);
 * ```
 */
export function readMcpPaymentResponse(result: unknown): X402SettleResponse | undefined {
  if (!isRecord(result)) return undefined;
  const key = X402_MCP_KEYS.paymentResponse;
  for (const holder of [result._meta, result.structuredContent]) {
    if (isRecord(holder) && Object.hasOwn(holder, key)) {
      return parseWith(settleResponseSchema, holder[key], key);
    }
  }
  return undefined;
}

/**
 * `result` with the SettleResponse added to its `_meta` under `x402/payment-response` (other
 * `_meta` members kept). Throws `invalid_x402_payload` when `result` is not an object.
 *
 * @example
 * ```ts
 * const paid = withMcpPaymentResponse(result, { success: true, transaction, network, payer });
 * ```
 */
export function withMcpPaymentResponse(
  result: unknown,
  response: X402SettleResponse,
): Record<string, unknown> {
  if (!isRecord(result)) throw invalidPayload('a tool result is a JSON object');
  const meta = isRecord(result._meta) ? result._meta : {};
  return {
    ...result,
    _meta: { ...meta, [X402_MCP_KEYS.paymentResponse]: settleResponseToWire(response) },
  };
}
