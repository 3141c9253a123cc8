/**
 * The gateway's path for an MCP `tools/call` that speaks x402 over MCP: one carrying
 * `params._meta["x402/payment"]` (any mode), or any priced call of a service with
 * `mcp.paymentRequired: tool-result`.
 *
 * The payment is handed to the engine as a `PAYMENT-SIGNATURE` header, so the engine's x402 offer
 * verifies it against the tool's price (the service route's price function prices the call),
 * claims its nonce and settles it; the request says it `finalizes`, so settlement waits for the
 * tool. The upstream answer (JSON or SSE) is read whole: when the tool's result is not `isError`,
 * the payment is settled and the SettleResponse added to the result's `_meta`; otherwise (and when
 * the upstream failed) nothing is settled and the answer passes unchanged. A failed settlement
 * replaces the tool output with the payment-required result that carries it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writePaywallResponse } from '@tollway/sdk/node';
import type { PaywallDecision, PaywallRequest } from '@tollway/sdk/server';
import { createMcpPaymentRequiredResult, withMcpPaymentResponse } from '@tollway/sdk/x402';
import type { Pool } from 'undici';
import {
  encodePaymentHeader,
  findResponse,
  MCP_MAX_ANSWER_BYTES,
  type McpToolCall,
  paymentRequiredAnswer,
  paymentRequiredOf,
  problemOf,
  settlementOf,
  stripPayment,
  withPaymentHeader,
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
  trustProxy: boolean | number;
  metrics: GatewayMetrics;
  startedAt: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
  const { req, res, service, call, metrics } = exchange;
  const toolResult = service.config.mcp?.paymentRequired === 'tool-result';
  // A payment-required tool result carries x402 offers only: its 402 mints no Lightning invoice.
  let request: PaywallRequest = toolResult
    ? { ...exchange.request, offers: X402_ONLY }
    : exchange.request;
  if (call.payment !== undefined) {
    if (request.headers.has('payment-signature') || request.headers.has('x-payment')) {
      return writeProblem(
        res,
        400,
        'conflicting_credentials',
        'The request carries an x402 payment both in a header and in params._meta.',
      );
    }
    request = {
      ...request,
      headers: withPaymentHeader(request.headers, encodePaymentHeader(call.payment)),
      finalizes: true,
    };
  }
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
    req,
    res,
    service,
    pool: exchange.pool,
    payment: decision.payment,
    responseHeaders: decision.headers,
    trustProxy: exchange.trustProxy,
    metrics,
    startedAt: exchange.startedAt,
  };
  if (call.payment === undefined) return forward(forwarded);

  const answer = await exchangeBuffered(
    forwarded,
    stripPayment(exchange.body),
    MCP_MAX_ANSWER_BYTES,
  );
  if (res.destroyed) return;
  if (!answer.ok) {
    const detail =
      answer.code === 'upstream_timeout'
        ? `The upstream of ${service.name} did not answer in time; the payment was not settled.`
        : answer.code === 'upstream_too_large'
          ? `The tool's answer is larger than ${MCP_MAX_ANSWER_BYTES} bytes; the payment was not settled.`
          : `The upstream of ${service.name} cannot be reached; the payment was not settled.`;
    return writeProblem(res, answer.code === 'upstream_timeout' ? 504 : 502, answer.code, detail);
  }
  const encoded = answer.headers['content-encoding'];
  if (encoded !== undefined && encoded !== 'identity') {
    // Asked for `identity`; a compressed answer cannot be read, so it is not passed on unpaid.
    return writeProblem(
      res,
      502,
      'upstream_unavailable',
      `The upstream of ${service.name} answered compressed; the payment was not settled.`,
    );
  }
  const contentType = answer.headers['content-type'];
  const found =
    answer.status < 300
      ? findResponse(
          typeof contentType === 'string' ? contentType : undefined,
          answer.body.toString('utf8'),
          call.id,
        )
      : undefined;
  if (answer.status < 300 && found === undefined) {
    // Not a tool response this gateway can read: not passed on unpaid.
    return writeProblem(
      res,
      502,
      'upstream_unavailable',
      `The upstream of ${service.name} did not answer the tool call with a JSON-RPC response; the payment was not settled.`,
    );
  }
  const result = found?.message.result;
  // An HTTP error, a JSON-RPC error or an isError result: the tool failed and is not paid for.
  if (found === undefined || !isRecord(result) || result.isError === true) {
    return writeAnswer(res, answer, [], answer.body);
  }
  // Settled before the tool ran (`x402.settle: upfront`): the engine's headers say how.
  let settlement = settlementOf(decision.headers);
  let extra: Array<[string, string]> = [];
  if (decision.finalize !== undefined) {
    const final = await decision.finalize(answer.status);
    if (final.kind === 'respond') {
      const failed = settlementOf(final.response.headers);
      const unpaid = await service.paywall.handle(
        { ...exchange.request, offers: X402_ONLY },
        service.route,
      );
      const required =
        unpaid.kind === 'respond' ? paymentRequiredOf(unpaid.response, call.name) : undefined;
      if (failed === undefined || required === undefined) {
        return writePaywallResponse(res, final.response);
      }
      const failure = createMcpPaymentRequiredResult(
        { ...required, error: problemOf(final.response) },
        failed,
      );
      return writeAnswer(res, answer, [], found.replace({ ...found.message, result: failure }));
    }
    extra = final.headers;
    settlement = settlementOf(final.headers);
  }
  if (settlement === undefined) return writeAnswer(res, answer, extra, answer.body);
  const paid = withMcpPaymentResponse(result, settlement);
  return writeAnswer(res, answer, extra, found.replace({ ...found.message, result: paid }));
}
