/**
 * The gateway's path for an MCP `tools/call` that speaks x402 over MCP: one carrying
 * `params._meta["x402/payment"]` (any mode), or any priced call of a service with
 * `mcp.paymentRequired: tool-result`.
 *
 * The payment is handed to the engine decoded (`PaywallRequest.payment`), so the engine's x402
 * offer verifies it against the tool's price (the service route's price function prices the
 * call), claims its nonce and settles it when the charge is committed: once the tool answered.
 * The upstream answer (JSON or SSE) is read whole: when the tool's result is not `isError`,
 * the payment is settled and the SettleResponse added to the result's `_meta`; otherwise (and when
 * the upstream failed) nothing is settled and the answer passes unchanged. A failed settlement
 * replaces the tool output with the payment-required result that carries it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writePaywallResponse } from '@tollway/sdk/node';
import type { PaywallDecision, PaywallRequest } from '@tollway/sdk/server';
import { createMcpPaymentRequiredResult, withMcpPaymentResponse } from '@tollway/sdk/x402';
import type { Pool } from 'undici';
import { isRecord } from './is-record.js';
import {
  type FoundResponse,
  findResponse,
  MCP_MAX_ANSWER_BYTES,
  type McpToolCall,
  paymentRequiredAnswer,
  paymentRequiredOf,
  stripPayment,
  x402SettlementOf,
} from './mcp-x402.js';
import type { GatewayMetrics } from './metrics.js';
import { type BufferedAnswer, exchangeBuffered, forward, writeProblem } from './proxy.js';
import type { Service } from './services.js';

/** The offers of a payment-required tool result. */
const X402_ONLY = ['x402'] as const;

/** One MCP tool call on the x402-over-MCP path. */
export interface ToolCallExchange {
  req: IncomingMessage;
  res: ServerResponse;
  service: Service;
  pool: Pool;
  /** The engine's view of the request, as the gateway built it (the body already parsed). */
  request: PaywallRequest;
  /** The parsed JSON-RPC body and the call it holds. */
  body: Record<string, unknown>;
  call: McpToolCall;
  /** The host the request was matched on. */
  host: string | undefined;
  trustProxy: boolean | number;
  metrics: GatewayMetrics;
  startedAt: number;
}

function writeAnswer(
  res: ServerResponse,
  answer: Extract<BufferedAnswer, { ok: true }>,
  extra: ReadonlyArray<[string, string]>,
  body: string | Buffer,
): void {
  const headers: Record<string, string | string[]> = { ...answer.headers };
  for (const [name, value] of extra) {
    const lower = name.toLowerCase();
    const present = headers[lower];
    headers[lower] = present === undefined ? value : [present, value].flat();
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(answer.status, headers);
  res.end(body);
}

/**
 * Serves one tool call (see the module comment). Resolves when the answer is written.
 *
 * @example
 * ```ts
 * const call = readToolCall(body);
 * if (call !== undefined) return serveToolCall({ req, res, service, pool, request, body, call, trustProxy, metrics, startedAt });
 * ```
 */
export async function serveToolCall(exchange: ToolCallExchange): Promise<void> {
  const { res, service, call, metrics } = exchange;
  const toolResult = service.config.mcp?.paymentRequired === 'tool-result';
  // A payment-required tool result carries x402 offers only: its 402 mints no Lightning invoice.
  // A payment in `_meta` reaches the engine decoded; it settles once the tool answered.
  const request: PaywallRequest = {
    ...exchange.request,
    ...(toolResult ? { offers: X402_ONLY } : {}),
    ...(call.payment === undefined
      ? {}
      : { payment: { kind: 'x402', payload: call.payment }, reportsOutcome: true }),
  };
  const decision: PaywallDecision = await service.paywall.handle(request, service.route);
  metrics.decision(service.name, decision);
  if (decision.kind === 'respond') {
    const required = toolResult ? paymentRequiredOf(decision.response, call.name) : undefined;
    return writePaywallResponse(
      res,
      required === undefined
        ? decision.response
        : paymentRequiredAnswer(call.id, required, decision.response),
    );
  }
  const forwarded = {
    req: exchange.req,
    res,
    service,
    pool: exchange.pool,
    payment: decision.payment,
    responseHeaders: decision.headers,
    charge: decision.charge,
    host: exchange.host,
    trustProxy: exchange.trustProxy,
    metrics,
    startedAt: exchange.startedAt,
  };
  if (call.payment === undefined) return forward(forwarded);
  const { charge } = decision;
  const answer = await exchangeBuffered(
    forwarded,
    stripPayment(exchange.body),
    MCP_MAX_ANSWER_BYTES,
  );
  const read = res.destroyed ? undefined : readToolAnswer(service, answer, call);
  if (read === undefined || !read.ok) {
    charge?.release();
    if (read !== undefined) writeProblem(res, read.status, read.code, read.detail);
    return;
  }
  const { found, result } = read;
  const ok = answer as Extract<BufferedAnswer, { ok: true }>;
  // An HTTP error, a JSON-RPC error or an isError result: the tool failed and is not paid for.
  if (found === undefined || !isRecord(result) || result.isError === true) {
    charge?.release();
    return writeAnswer(res, ok, [], ok.body);
  }
  // Settled before the tool ran (`x402.settle: upfront`): the decision says how.
  let settlement = x402SettlementOf(decision.settlement);
  let extra: Array<[string, string]> = [];
  if (charge !== undefined) {
    const final = await charge.commit(ok.status);
    if (final.kind === 'respond') {
      const failed = x402SettlementOf(final.response.settlement);
      const required = paymentRequiredOf(final.response, call.name);
      if (failed === undefined || required === undefined) {
        return writePaywallResponse(res, final.response);
      }
      const failure = createMcpPaymentRequiredResult(required, failed);
      return writeAnswer(res, ok, [], found.replace({ ...found.message, result: failure }));
    }
    extra = final.headers;
    settlement = x402SettlementOf(final.settlement);
  }
  if (settlement === undefined) return writeAnswer(res, ok, extra, ok.body);
  const paid = withMcpPaymentResponse(result, settlement);
  return writeAnswer(res, ok, extra, found.replace({ ...found.message, result: paid }));
}

/** The tool's response in an upstream answer, or why the answer cannot be passed on as paid. */
type ToolAnswer =
  | { ok: true; found: FoundResponse | undefined; result: unknown }
  | {
      ok: false;
      status: number;
      code: 'upstream_timeout' | 'upstream_unavailable';
      detail: string;
    };

/**
 * Reads the tool's response out of the upstream answer: a failure (no answer, too large,
 * compressed, not a JSON-RPC response) is not passed on, and the payment is not settled.
 */
function readToolAnswer(service: Service, answer: BufferedAnswer, call: McpToolCall): ToolAnswer {
  const unsettled = 'the payment was not settled';
  if (!answer.ok) {
    if (answer.code === 'upstream_timeout') {
      const detail = `The upstream of ${service.name} did not answer in time; ${unsettled}.`;
      return { ok: false, status: 504, code: answer.code, detail };
    }
    const detail =
      answer.code === 'upstream_too_large'
        ? `The tool's answer is larger than ${MCP_MAX_ANSWER_BYTES} bytes; ${unsettled}.`
        : `The upstream of ${service.name} cannot be reached; ${unsettled}.`;
    return { ok: false, status: 502, code: 'upstream_unavailable', detail };
  }
  const encoded = answer.headers['content-encoding'];
  if (encoded !== undefined && encoded !== 'identity') {
    // Asked for `identity`; a compressed answer cannot be read, so it is not passed on unpaid.
    const detail = `The upstream of ${service.name} answered compressed; ${unsettled}.`;
    return { ok: false, status: 502, code: 'upstream_unavailable', detail };
  }
  if (answer.status >= 300) return { ok: true, found: undefined, result: undefined };
  const contentType = answer.headers['content-type'];
  const found = findResponse(
    typeof contentType === 'string' ? contentType : undefined,
    answer.body.toString('utf8'),
    call.id,
  );
  if (found === undefined) {
    // Not a tool response this gateway can read: not passed on unpaid.
    const detail = `The upstream of ${service.name} did not answer the tool call with a JSON-RPC response; ${unsettled}.`;
    return { ok: false, status: 502, code: 'upstream_unavailable', detail };
  }
  return { ok: true, found, result: found.message.result };
}
