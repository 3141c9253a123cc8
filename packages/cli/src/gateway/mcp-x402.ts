/**
 * x402 over MCP in the gateway (the x402 Foundation's `transports-v2/mcp.md`), the parts that do
 * not touch sockets: finding the `tools/call` of a POST and its `_meta["x402/payment"]`, turning
 * the engine's x402 offer into a payment-required tool result, and finding and rewriting the
 * tool's JSON-RPC response in an upstream answer (JSON or SSE). The JSON-RPC reading is the SDK's
 * (`readMcpToolCall`, `findMcpResponse`), the same the paying client uses.
 */
import type { PaywallResponse } from '@tollway/sdk/server';
import {
  createMcpPaymentRequiredResult,
  findMcpResponse,
  type JsonRpcId,
  type McpResponseMatch,
  mcpToolUrl,
  readMcpToolCall,
  X402_MCP_KEYS,
  type X402PaymentRequired,
  type X402SettleResponse,
} from '@tollway/sdk/x402';

/** The most bytes of an upstream answer read to settle an MCP tool call paid with x402. */
export const MCP_MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** A single `tools/call` request read from a POST body. */
export interface McpToolCall {
  id: JsonRpcId;
  name: string;
  /** `params._meta["x402/payment"]` as sent (unchecked), when present. */
  payment?: unknown;
}

/**
 * The `tools/call` a parsed POST body holds, or undefined when it is anything else (a batch, a
 * notification, another method, a call without a tool name).
 *
 * @example
 * ```ts
 * readToolCall({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_forecast' } });
 * // { id: 1, name: 'get_forecast' }
 * ```
 */
export function readToolCall(body: unknown): McpToolCall | undefined {
  const call = readMcpToolCall(body);
  const name = call?.params.name;
  if (call === undefined || typeof name !== 'string') return undefined;
  const meta = call.params._meta;
  const paid =
    typeof meta === 'object' && meta !== null && Object.hasOwn(meta, X402_MCP_KEYS.payment);
  if (!paid) return { id: call.id, name };
  return { id: call.id, name, payment: Reflect.get(meta, X402_MCP_KEYS.payment) };
}

/**
 * The body to forward upstream: `body` without `params._meta["x402/payment"]` (and without
 * `_meta` when nothing else was in it), as UTF-8 JSON.
 */
export function stripPayment(body: Record<string, unknown>): Uint8Array {
  const params = body.params as Record<string, unknown>;
  const { [X402_MCP_KEYS.payment]: _payment, ...meta } = params._meta as Record<string, unknown>;
  const { _meta: _old, ...rest } = params;
  const stripped = Object.keys(meta).length === 0 ? rest : { ...rest, _meta: meta };
  return new TextEncoder().encode(JSON.stringify({ ...body, params: stripped }));
}

/** What a settlement reported, when it was an x402 settlement. */
export function x402SettlementOf(
  report: { kind: string; data: unknown } | undefined,
): X402SettleResponse | undefined {
  // The engine's x402 offer reports its SettleResponse as the data of its settlements.
  return report?.kind === 'x402' ? (report.data as X402SettleResponse) : undefined;
}

/**
 * The x402 offer of an engine answer for tool `name`, with the resource named `mcp://tool/<name>`
 * and `error` saying why; undefined when the answer has no x402 offer.
 */
export function paymentRequiredOf(
  response: PaywallResponse,
  name: string,
): X402PaymentRequired | undefined {
  // The engine's x402 offer gives its PaymentRequired as its structured offer.
  const offered = response.offers?.x402 as X402PaymentRequired | undefined;
  if (offered === undefined) return undefined;
  const error = response.problem?.code === 'payment_required' ? offered.error : problemOf(response);
  return {
    ...offered,
    ...(error === undefined ? {} : { error }),
    resource: {
      url: mcpToolUrl(name),
      description: offered.resource.description ?? name,
      mimeType: 'application/json',
    },
  };
}

/** Why an engine answer refused a request: `<code>: <detail>` of its problem. */
export function problemOf(response: PaywallResponse): string {
  const { problem } = response;
  if (problem === undefined) return `HTTP ${response.status}`;
  return `${problem.code}: ${problem.detail}`;
}

/**
 * The JSON-RPC response (HTTP 200, `application/json`) holding the payment-required tool result,
 * with `settlement` (a failed one) inside it when given. CORS headers of `response` are kept.
 */
export function paymentRequiredAnswer(
  id: JsonRpcId,
  required: X402PaymentRequired,
  response: PaywallResponse,
  settlement?: X402SettleResponse,
): PaywallResponse {
  const result = createMcpPaymentRequiredResult(required, settlement);
  const cors = response.headers.filter(([name]) =>
    name.toLowerCase().startsWith('access-control-'),
  );
  return {
    status: 200,
    headers: [
      ['Content-Type', 'application/json'],
      ['Cache-Control', 'no-store'],
      ...cors.map(([name, value]): [string, string] => [name, value]),
    ],
    body: JSON.stringify({ jsonrpc: '2.0', id, result }),
  };
}

/** Where the tool's response sits in an upstream answer, and how to put a new one in its place. */
export type FoundResponse = McpResponseMatch;

/**
 * The JSON-RPC response to `id` in an upstream answer of type `contentType` (`application/json`
 * or `text/event-stream`), or undefined when there is none (another type, a compressed body, no
 * such message).
 *
 * @example
 * ```ts
 * const found = findResponse('text/event-stream', 'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n', 1);
 * found?.message.result; // {}
 * ```
 */
export function findResponse(
  contentType: string | undefined,
  text: string,
  id: JsonRpcId,
): FoundResponse | undefined {
  return findMcpResponse(contentType, text, id);
}
