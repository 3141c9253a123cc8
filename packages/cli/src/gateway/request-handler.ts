/**
 * What the gateway's listeners do with a request: check its framing and target, serve the admin
 * surface and the discovery documents, match a service, ask its paywall engine, then answer (a
 * 402, a 401, a 429, …) or forward to the upstream — over HTTP/1.1, HTTP/2 for gRPC, or as a
 * WebSocket after an upgrade. A failure the handlers throw is logged and answered with a 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { createPaywallRequest, writePaywallResponse } from '@tollway/sdk/node';
import type { PaywallDecision, PaywallRequest, Problem } from '@tollway/sdk/server';
import { version } from '../version.js';
import type { GatewayConfig } from './config.js';
import { discoveryDocument, serveDiscovery } from './discovery.js';
import { serveQuote } from './discovery-quote.js';
import type { State } from './engines.js';
import { forwardGrpc, grpcStreamOf } from './grpc.js';
import { answerGrpc, sendGrpcProblem } from './grpc-status.js';
import { writeSocketAnswer, writeSocketProblem } from './http-server.js';
import type { Http2Upstreams } from './http2-upstreams.js';
import { planLlmForward } from './llm-forward.js';
import type { GatewayLogger } from './logger.js';
import { serveToolCall } from './mcp-call.js';
import { readToolCall } from './mcp-x402.js';
import type { GatewayMetrics } from './metrics.js';
import { sendProblem } from './problem.js';
import { type ForwardRequest, forward, type Upstreams } from './proxy.js';
import { readFraming } from './request-framing.js';
import { readRequestTarget } from './request-target.js';
import type { ServiceRegistry } from './service-registry.js';
import type { Service } from './services.js';
import type { UpstreamTracer } from './tracing.js';
import type { WebSocketProxy } from './websocket.js';

/** Where the admin surface lives on every listener that serves it. */
export const ADMIN_PREFIX = '/_tollway';

/** The admin API handler: `target` is the path under {@link ADMIN_PREFIX}. */
export type AdminHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  target: string,
) => Promise<void>;

/** What the handlers serve with. */
export interface GatewayParts {
  /** The config the gateway started with: where its admin API and metrics are served. */
  config: GatewayConfig;
  registry: ServiceRegistry;
  admin: AdminHandler;
  upstreams: Upstreams;
  http2Upstreams: Http2Upstreams;
  sockets: WebSocketProxy;
  metrics: GatewayMetrics;
  logger: GatewayLogger;
  /** Starts the upstream calls' spans, when `tracing.enabled`. */
  tracer: UpstreamTracer | undefined;
}

/** A request's framing, canonical target and host, or the problem that refuses it. */
type ReadTarget =
  | {
      ok: true;
      framing: Extract<ReturnType<typeof readFraming>, { ok: true }>;
      target: Extract<ReturnType<typeof readRequestTarget>, { ok: true }>;
      host: string | undefined;
    }
  | { ok: false; problem: Problem };

/**
 * Checks a request's framing and target; from then on, the engine and the proxy read the
 * canonical target (`req.url` is set to it).
 */
function readTarget(req: IncomingMessage): ReadTarget {
  const framing = readFraming(req);
  if (!framing.ok)
    return { ok: false, problem: { code: 'malformed_request', detail: framing.detail } };
  const target = readRequestTarget(req.url ?? '/');
  if (!target.ok) return { ok: false, problem: { code: 'invalid_path', detail: target.detail } };
  req.url = `${target.path}${target.query}`;
  return { ok: true, framing, target, host: target.authority ?? framing.host };
}

/** A request of a listener that serves only the admin API. */
export function handleAdminOnly(
  parts: GatewayParts,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const url = req.url ?? '/';
  if (url.startsWith(`${ADMIN_PREFIX}/`))
    void parts.admin(req, res, url.slice(ADMIN_PREFIX.length));
  else sendProblem(res, { code: 'not_found', detail: 'The admin API is under /_tollway/.' });
}

/** A request of a listener that serves only the metrics. */
export function handleMetricsOnly(
  parts: GatewayParts,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics' || path === `${ADMIN_PREFIX}/metrics`)
    void parts.admin(req, res, '/metrics');
  else sendProblem(res, { code: 'not_found', detail: 'Metrics are at /metrics.' });
}

/** An upgrade request (a WebSocket): decided by the engine, then proxied (websocket.ts). */
export async function handleUpgrade(
  parts: GatewayParts,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const read = readTarget(req);
  if (!read.ok) return writeSocketProblem(socket, read.problem);
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return writeSocketProblem(socket, {
      code: 'malformed_request',
      detail: 'Only WebSocket upgrades are served.',
    });
  }
  const current = parts.registry.state;
  const service = read.target.path.startsWith(`${ADMIN_PREFIX}/`)
    ? undefined
    : current.table.match(read.host, read.target.path);
  if (service === undefined) {
    return writeSocketProblem(socket, {
      code: 'not_found',
      detail: 'No service of this gateway matches this host and path.',
    });
  }
  const { trustProxy, bodyLimit, usdPerBtc } = current.config.paywall;
  const request = createPaywallRequest(req, { trustProxy, bodyLimit, reportsOutcome: true });
  const decision = await service.paywall.handle(request, service.route);
  parts.metrics.decision(service.name, decision);
  if (decision.kind === 'respond') return writeSocketAnswer(socket, decision.response);
  await parts.sockets.serve({
    req,
    socket,
    head,
    service,
    decision,
    host: read.host,
    trustProxy,
    metrics: parts.metrics,
    usdPerBtc,
  });
}

/** One request as the main listener handles it, once its target is read. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  startedAt: number;
  host: string | undefined;
  path: string;
  /** The gRPC stream of the request, when it is a gRPC call. */
  grpc: ReturnType<typeof grpcStreamOf>;
  /** Answers with a problem, in the request's protocol. */
  refuse: (problem: Problem) => void;
}

/**
 * A request of the main listener: see the module comment. Not an async function: a request the
 * engine decides at once (a cached credential) reaches the upstream without a promise hop.
 */
export function handleRequest(
  parts: GatewayParts,
  req: IncomingMessage,
  res: ServerResponse,
): void | Promise<void> {
  const startedAt = performance.now();
  const grpc = grpcStreamOf(req);
  const refuse = (problem: Problem): void =>
    grpc === undefined ? sendProblem(res, problem) : sendGrpcProblem(grpc, problem);
  const read = readTarget(req);
  if (!read.ok) return refuse(read.problem);
  const { framing, target, host } = read;
  if (target.path.startsWith(`${ADMIN_PREFIX}/`)) {
    return serveAdminPath(parts, req, res, `${target.path}${target.query}`, refuse);
  }
  const current = parts.registry.state;
  const document = current.config.discovery.enabled ? discoveryDocument(target.path) : undefined;
  if (document !== undefined) {
    const source = { table: current.table, config: current.config, version };
    return serveDiscovery(req, res, document, host, source, () => {
      const { trustProxy, bodyLimit } = current.config.paywall;
      const base = createPaywallRequest(req, { trustProxy, bodyLimit });
      return serveQuote(res, current.table, base);
    });
  }
  const service: Service | undefined = current.table.match(host, target.path);
  if (service === undefined) {
    return refuse({
      code: 'not_found',
      detail: 'No service of this gateway matches this host and path.',
    });
  }
  if (
    framing.hasBody &&
    service.route.readsBody &&
    (req.method === 'GET' || req.method === 'HEAD')
  ) {
    // The engine prices only the bodies of other methods; this one would reach the upstream unpriced.
    return refuse({
      code: 'invalid_request',
      detail: `${req.method} requests to ${service.name} are priced without a body and cannot carry one.`,
    });
  }
  const exchange: Exchange = { req, res, startedAt, host, path: target.path, grpc, refuse };
  return servePaid(parts, current, exchange, service);
}

/** A path under `/_tollway/` on the main listener: served here unless it has its own listener. */
function serveAdminPath(
  parts: GatewayParts,
  req: IncomingMessage,
  res: ServerResponse,
  target: string,
  refuse: (problem: Problem) => void,
): Promise<void> | undefined {
  const { config } = parts;
  const sub = target.slice(ADMIN_PREFIX.length);
  const path = sub.split('?')[0];
  const here =
    path === '/health' ||
    (path === '/metrics'
      ? config.metrics.enabled && config.metrics.listen === undefined
      : config.admin.listen === undefined);
  if (here) return parts.admin(req, res, sub);
  refuse({ code: 'not_found', detail: 'This admin endpoint is served on another listener.' });
  return undefined;
}

/** A request to a service: a paid MCP tool call, or the engine's decision answered or forwarded. */
function servePaid(
  parts: GatewayParts,
  current: State,
  exchange: Exchange,
  service: Service,
): void | Promise<void> {
  const { req } = exchange;
  const { trustProxy, bodyLimit } = current.config.paywall;
  const request = createPaywallRequest(req, { trustProxy, bodyLimit, reportsOutcome: true });
  if (service.config.mcp !== undefined && service.config.auth && req.method === 'POST') {
    return serveMcp(parts, current, exchange, service, request);
  }
  return decideAndAnswer(parts, current, exchange, service, request);
}

/** A POST to an MCP service: a paid tool call, or else as any other request. */
async function serveMcp(
  parts: GatewayParts,
  current: State,
  exchange: Exchange,
  service: Service,
  request: PaywallRequest,
): Promise<void> {
  const { req, res, host, startedAt } = exchange;
  // The engine reads this body to price the call anyway; the read is shared. A body that
  // does not parse is refused by the engine below.
  const body = await request.jsonBody?.().catch(() => undefined);
  const call = readToolCall(body);
  if (
    call !== undefined &&
    (call.payment !== undefined || service.config.mcp?.paymentRequired === 'tool-result')
  ) {
    return serveToolCall({
      req,
      res,
      service,
      pool: parts.upstreams.pool(service),
      request,
      body: body as Record<string, unknown>,
      call,
      host,
      trustProxy: current.config.paywall.trustProxy,
      metrics: parts.metrics,
      startedAt,
    });
  }
  return decideAndAnswer(parts, current, exchange, service, request);
}

/** Asks the engine, then answers; a decision the engine had at once is answered synchronously. */
function decideAndAnswer(
  parts: GatewayParts,
  current: State,
  exchange: Exchange,
  service: Service,
  request: PaywallRequest,
): void | Promise<void> {
  const decision = service.paywall.handle(request, service.route);
  if (decision instanceof Promise) {
    return decision.then((decided) =>
      answerDecision(parts, current, exchange, service, request, decided),
    );
  }
  return answerDecision(parts, current, exchange, service, request, decision);
}

/** Answers the engine's decision: its own response, or the upstream's over the request's protocol. */
function answerDecision(
  parts: GatewayParts,
  current: State,
  exchange: Exchange,
  service: Service,
  request: PaywallRequest,
  decision: PaywallDecision,
): void | Promise<void> {
  const { req, res, host, startedAt, grpc, path } = exchange;
  const { metrics, logger } = parts;
  const { trustProxy } = current.config.paywall;
  metrics.decision(service.name, decision);
  if (decision.kind === 'pass' && decision.payment.shadowMsat !== undefined) {
    logger.info(
      { service: service.name, path, wouldChargeMsat: String(decision.payment.shadowMsat) },
      'shadow mode: passed unpaid',
    );
  }
  if (grpc !== undefined) {
    if (decision.kind === 'respond') return answerGrpc(grpc, decision.response);
    return forwardGrpc({
      req,
      stream: grpc,
      res,
      service,
      upstreams: parts.http2Upstreams,
      payment: decision.payment,
      responseHeaders: decision.headers,
      charge: decision.charge,
      host,
      trustProxy,
      metrics,
      startedAt,
    });
  }
  if (decision.kind === 'respond') return writePaywallResponse(res, decision.response);
  const forwarded = {
    req,
    res,
    service,
    pool: parts.upstreams.pool(service),
    payment: decision.payment,
    responseHeaders: decision.headers,
    charge: decision.charge,
    host,
    trustProxy,
    metrics,
    startedAt,
    tracer: parts.tracer,
    traceContext: decision.traceContext,
  };
  if (service.llm === undefined) return forward(forwarded);
  return forwardLlm(parts, forwarded, request, path, service.llm);
}

/** Forwards an LLM call as its plan says (llm-forward.ts): a priced model's upstream and body. */
async function forwardLlm(
  parts: GatewayParts,
  forwarded: ForwardRequest,
  request: PaywallRequest,
  path: string,
  llm: NonNullable<Service['llm']>,
): Promise<void> {
  const { service, res, metrics, charge } = forwarded;
  const call = await planLlmForward({
    service,
    llm,
    request,
    path,
    metrics,
    onError: (error) => parts.logger.error({ err: error }, 'a metered answer could not be charged'),
  });
  if (!call.ok) return sendProblem(res, call.problem, charge?.release());
  await forward({
    ...forwarded,
    service: call.upstream,
    pool: parts.upstreams.pool(call.upstream),
    body: call.body,
    metered: call.metered,
  });
}

/** `handler`, with a failure it throws logged and answered with a 500 problem. */
export function guarded(
  logger: GatewayLogger,
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const failed = (error: unknown): void => {
      logger.error({ err: error, url: req.url }, 'the gateway failed on a request');
      if (!res.headersSent)
        sendProblem(res, {
          code: 'internal_error',
          detail: 'The gateway failed; it logged why.',
        });
      else res.destroy();
    };
    // A handler answers synchronously when it can: a throw counts as much as a rejection.
    let result: void | Promise<void>;
    try {
      result = handler(req, res);
    } catch (error) {
      failed(error);
      return;
    }
    result?.catch(failed);
  };
}

/** `upgrade`, with a failure it throws logged and answered with a 500 problem on the socket. */
export function guardedUpgrade(
  logger: GatewayLogger,
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    upgrade(req, socket, head).catch((error: unknown) => {
      logger.error({ err: error, url: req.url }, 'the gateway failed on an upgrade');
      writeSocketProblem(socket, {
        code: 'internal_error',
        detail: 'The gateway failed; it logged why.',
      });
    });
  };
}
