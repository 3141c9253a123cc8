/**
 * The streaming reverse proxy: forwards a request that passed the paywall to its service's
 * upstream through a keep-alive undici pool, and streams the answer back chunk by chunk (SSE and
 * chunked responses arrive live; large bodies stream both ways). Hop-by-hop headers are dropped,
 * headers only the gateway or a trusted proxy may set are dropped, the client's credentials are
 * not forwarded; `X-Forwarded-*` and `Forwarded` are set, and the payment context travels
 * upstream as `X-Tollway-*` headers, where the service tells them (not to an LLM provider by
 * default). Upstream failures become 502 `upstream_unavailable` or 504 `upstream_timeout`
 * problem bodies.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { TollwayError, type TollwayErrorCode } from '@tollway/sdk';
import type { PaymentContext, PaywallCharge } from '@tollway/sdk/server';
import { Pool } from 'undici';
import { formatForwardedElement } from './forwarded.js';
import { http2StreamOf } from './listener.js';
import { type MeteredCall, openMeteredAnswer } from './metered-answer.js';
import type { GatewayMetrics } from './metrics.js';
import { openAnswer } from './outcome.js';
import { sendProblem } from './problem.js';
import type { Service } from './services.js';
import type { UpstreamTracer } from './tracing.js';
import { streamUpstream, type UpstreamStream } from './upstream-stream.js';

/** Default timeouts, ms: connecting, waiting for response headers, and between body chunks. */
export const DEFAULT_TIMEOUTS = { connect: 10_000, response: 60_000, idle: 300_000 } as const;

/** Connections kept per upstream. */
const MAX_CONNECTIONS = 256;

/** Hop-by-hop headers: they describe one connection and are never passed on, either way. */
const HOP_BY_HOP_HEADERS = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
];

/**
 * Request headers never forwarded: hop-by-hop headers (RFC 9110 §7.6.1), `Expect` (answered here),
 * the client's credentials (which only the gateway reads), `X-Forwarded-*` and `Forwarded`, which
 * the gateway sets itself, and headers that ask the upstream to run another method or path than
 * the one the paywall decided on (method overrides, `X-Original-URL`). `X-Tollway-*` from the
 * client, and every name with `_` (which CGI, WSGI, Rack and PHP read as `-`), are dropped
 * separately.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  ...HOP_BY_HOP_HEADERS,
  'expect',
  'host',
  // Payment credentials are the gateway's business; the upstream gets X-Tollway-* instead.
  'authorization',
  'macaroon',
  'grpc-metadata-macaroon',
  'payment-signature',
  'x-payment',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  // The method and path the paywall decided on are the ones the upstream runs.
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-original-method',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
]);

/**
 * Headers in which a proxy tells who the client is or how it connected: kept only from a trusted
 * proxy (`paywall.trustProxy`), else dropped, as the client could write anything in them.
 */
const CLIENT_ADDRESS_HEADERS = new Set([
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'forwarded-for',
  'x-forwarded',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-url-scheme',
  'front-end-https',
]);

/** Response headers never passed back: hop-by-hop ones. */
const DROPPED_RESPONSE_HEADERS = new Set(HOP_BY_HOP_HEADERS);

/** Upstream connection pools, one per origin and TLS setting, reused across reloads. */
export interface Upstreams {
  /** The pool of a service, created on first use. Throws `invalid_config` for an unreadable CA file. */
  pool(service: Service): Pool;
  /** Closes the pools no service in `services` uses any more. */
  retain(services: readonly Service[]): Promise<void>;
  /** Closes every pool (in-flight requests finish first). */
  close(): Promise<void>;
}

function poolKey(service: Service): string {
  const { tls, timeouts } = service.config;
  return JSON.stringify([
    service.origin,
    tls?.insecureSkipVerify === true,
    tls?.caFile,
    timeouts?.connect,
  ]);
}

/**
 * Creates the pools of upstream connections. TLS to upstreams is verified against the system's
 * roots, or a service's `tls.caFile`; `tls.insecureSkipVerify` turns verification off.
 *
 * @example
 * ```ts
 * const upstreams = createUpstreams();
 * const pool = upstreams.pool(service);
 * ```
 */
export function createUpstreams(): Upstreams {
  const pools = new Map<string, Pool>();
  /** The pool of each compiled service, so the hot path skips computing the key. */
  const byService = new WeakMap<Service, Pool>();
  return {
    pool(service) {
      const known = byService.get(service);
      if (known !== undefined && !known.closed) return known;
      const key = poolKey(service);
      let pool = pools.get(key);
      if (pool === undefined) {
        const { tls, timeouts } = service.config;
        let ca: string | undefined;
        if (tls?.caFile !== undefined) {
          try {
            ca = readFileSync(tls.caFile, 'utf8');
          } catch (cause) {
            throw new TollwayError(
              'invalid_config',
              `service ${service.name}: tls.caFile ${tls.caFile} cannot be read`,
              {
                cause,
              },
            );
          }
        }
        pool = new Pool(service.origin, {
          connections: MAX_CONNECTIONS,
          connect: {
            timeout: timeouts?.connect ?? DEFAULT_TIMEOUTS.connect,
            rejectUnauthorized: tls?.insecureSkipVerify !== true,
            ...(ca === undefined ? {} : { ca }),
          },
        });
        pools.set(key, pool);
      }
      byService.set(service, pool);
      return pool;
    },
    async retain(services) {
      const used = new Set(services.map(poolKey));
      const unused = [...pools].filter(([key]) => !used.has(key));
      for (const [key] of unused) pools.delete(key);
      await Promise.all(unused.map(([, pool]) => pool.close()));
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.close()));
    },
  };
}

/** One request on its way upstream. */
export interface ForwardRequest {
  req: IncomingMessage;
  res: ServerResponse;
  service: Service;
  pool: Pool;
  payment: PaymentContext;
  /** Headers the engine adds to the response (a `Payment-Receipt`, CORS). */
  responseHeaders: ReadonlyArray<[string, string]>;
  /**
   * The request's charge, when what is charged depends on the outcome: committed with the
   * upstream's status before the answer leaves, released when there is no answer.
   */
  charge?: PaywallCharge | undefined;
  /** The host the request was matched on: its Host header, or an absolute-form target's authority. */
  host: string | undefined;
  /** As the gateway's `paywall.trustProxy`: whether the client's `X-Forwarded-*` are kept. */
  trustProxy: boolean | number;
  metrics: GatewayMetrics;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** Sent upstream instead of the client's body (the gateway changed it). */
  body?: Uint8Array | undefined;
  /** How a metered answer (the charge has a meter) is read; see metered-answer.ts. */
  metered?: MeteredCall | undefined;
  /** Starts the upstream call's span, when tracing is on. */
  tracer?: UpstreamTracer | undefined;
  /** The engine's trace context of the request (its pass decision's `traceContext`). */
  traceContext?: unknown;
}

/** The `X-Tollway-*` headers that tell the upstream how the request was paid for. */
export function paymentHeaders(payment: PaymentContext): string[] {
  const headers = ['x-tollway-protocol', payment.protocol, 'x-tollway-service', payment.service];
  if (payment.tokenId !== undefined) headers.push('x-tollway-token-id', payment.tokenId);
  if (payment.tier !== undefined) headers.push('x-tollway-tier', String(payment.tier));
  if (payment.amount !== undefined) headers.push('x-tollway-amount', payment.amount.toString());
  if (payment.unit !== undefined) headers.push('x-tollway-unit', payment.unit);
  if (payment.remainingUses !== undefined) {
    headers.push('x-tollway-remaining-uses', String(payment.remainingUses));
  }
  if (payment.remainingBalanceMsat !== undefined) {
    headers.push('x-tollway-remaining-balance-msat', payment.remainingBalanceMsat.toString());
  }
  if (payment.freeReason !== undefined) headers.push('x-tollway-free-reason', payment.freeReason);
  return headers;
}

/** Names listed in a `Connection` header: hop-by-hop for this message. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // The usual value, answered without a regular expression.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  const text = typeof value === 'string' ? value : value.join(',');
  if (/^\s*(?:keep-alive|close)\s*$/i.test(text)) return undefined;
  const tokens = text
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== '' && token !== 'close' && token !== 'keep-alive');
  return tokens.length === 0 ? undefined : new Set(tokens);
}

/** What is sent upstream: the headers, flat (`[name, value, …]`), and whether a body follows. */
interface UpstreamRequest {
  headers: string[];
  hasBody: boolean;
}

/**
 * Builds the upstream request headers in one pass over the raw headers: the client's end-to-end
 * headers, `X-Forwarded-*` (when the service tells the client's address), the service's injected
 * headers, then the payment headers (when it tells them).
 */
export function createUpstreamRequest(
  request: Pick<ForwardRequest, 'req' | 'service' | 'payment' | 'trustProxy' | 'host'>,
): UpstreamRequest {
  const { req, service, payment, trustProxy } = request;
  const raw = req.rawHeaders;
  const host = request.host ?? '';
  let connection: string | undefined;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let forwarded: string | undefined;
  let hasBody = false;
  const trusted = trustProxy !== false && trustProxy !== 0;
  const kept: number[] = [];
  const http2 = http2StreamOf(req);
  if (http2 !== undefined) hasBody = !http2.endAfterHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    if (lower === 'connection')
      connection = connection === undefined ? value : `${connection}, ${value}`;
    else if (lower === 'x-forwarded-for')
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
    else if (lower === 'x-forwarded-proto') forwardedProto ??= value;
    else if (lower === 'x-forwarded-host') forwardedHost ??= value;
    else if (lower === 'forwarded')
      forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
    else if (lower === 'transfer-encoding' || (lower === 'content-length' && value !== '0'))
      hasBody = true;
    if (
      DROPPED_REQUEST_HEADERS.has(lower) ||
      lower.startsWith(':') ||
      lower.startsWith('x-tollway-') ||
      lower.includes('_') ||
      (!trusted && CLIENT_ADDRESS_HEADERS.has(lower)) ||
      service.injectedNames.has(lower)
    ) {
      continue;
    }
    kept.push(i);
  }
  const named = connectionTokens(connection);
  const headers: string[] = [];
  for (const i of kept) {
    const name = raw[i] ?? '';
    if (named?.has(name.toLowerCase())) continue;
    headers.push(name, raw[i + 1] ?? '');
  }
  if (service.forwardsClient) {
    const peer = req.socket.remoteAddress ?? '';
    const encrypted = 'encrypted' in req.socket && req.socket.encrypted === true;
    const scheme = encrypted ? 'https' : 'http';
    const hop = formatForwardedElement({ for: peer, host, proto: scheme });
    headers.push(
      'x-forwarded-for',
      trusted && forwardedFor !== undefined ? `${forwardedFor}, ${peer}` : peer,
      'x-forwarded-proto',
      (trusted ? forwardedProto : undefined) ?? scheme,
      'x-forwarded-host',
      (trusted ? forwardedHost : undefined) ?? host,
      'forwarded',
      trusted && forwarded !== undefined ? `${forwarded}, ${hop}` : hop,
    );
  }
  if (service.config.preserveHost && host !== '') headers.push('host', host);
  headers.push(...service.injectedHeaders);
  if (service.forwardsPayment) headers.push(...paymentHeaders(payment));
  return { headers, hasBody };
}

/** The response headers passed back, with the engine's headers (`extra`, then `more`) added. */
function downstreamHeaders(
  upstream: IncomingHttpHeaders,
  extra: ReadonlyArray<[string, string]>,
  more: ReadonlyArray<[string, string]> = [],
): Record<string, string | string[]> {
  const named = connectionTokens(upstream.connection);
  const headers: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || DROPPED_RESPONSE_HEADERS.has(name) || named?.has(name)) continue;
    headers[name] = value;
  }
  for (const added of [extra, more]) {
    for (const [name, value] of added) {
      const lower = name.toLowerCase();
      const present = headers[lower];
      headers[lower] = present === undefined ? value : [present, value].flat();
    }
  }
  return headers;
}

/**
 * {@link sendProblem} with the status first, as the MCP call path (`mcp-call.ts`) calls it.
 *
 * @example
 * ```ts
 * writeProblem(res, 502, 'upstream_unavailable', 'The upstream cannot be reached.');
 * ```
 */
export function writeProblem(
  res: ServerResponse,
  status: number,
  code: TollwayErrorCode,
  detail: string,
): void {
  sendProblem(res, { status, code, detail });
}

/** A metered answer read for the charge alone (no LLM call plan): nothing dropped, nothing told. */
const UNREAD_CALL: MeteredCall = {
  dropsUsageChunk: false,
  onCharged: () => {},
  onError: () => {},
};

const TIMEOUT_ERRORS = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Forwards one request upstream and streams the response back. Resolves when the exchange is over,
 * whatever its outcome; never rejects. When the client goes away, the upstream request is aborted.
 *
 * @example
 * ```ts
 * await forward({ req, res, service, pool: upstreams.pool(service), payment, responseHeaders: [], trustProxy: false, metrics, startedAt });
 * ```
 */
export function forward(request: ForwardRequest): Promise<void> {
  const { req, res, service, pool, metrics } = request;
  const timeouts = service.config.timeouts;
  let sent: UpstreamStream | undefined;
  let cancelled = false;
  // Set once the upstream's status arrived (the charge committed), and when the paywall's answer
  // replaced the upstream's (a failed settlement).
  let answered = false;
  let replaced = false;
  const onClose = (): void => {
    if (res.writableFinished) return;
    cancelled = true;
    sent?.cancel();
  };
  res.once('close', onClose);
  const sentAt = performance.now();
  metrics.overhead(service.name, (sentAt - request.startedAt) / 1000);
  const upstream = createUpstreamRequest(request);
  const { charge } = request;
  const meter = charge?.meter;
  // A metered answer is read by the gateway: it is asked for uncompressed.
  const reframed = request.body !== undefined || meter !== undefined;
  const path = service.rewrite(req.url ?? '/');
  const method = req.method ?? 'GET';
  const span = request.tracer?.start(request.traceContext, {
    method,
    origin: service.origin,
    path: path.split('?')[0] ?? path,
    service: service.name,
  });
  return new Promise((resolve) => {
    sent = streamUpstream(
      pool,
      {
        path,
        method: method as 'GET',
        headers: reframed
          ? bufferedHeaders(upstream.headers, request.body?.byteLength)
          : upstream.headers,
        body: request.body ?? (upstream.hasBody ? req : null),
        headersTimeout: timeouts?.response ?? DEFAULT_TIMEOUTS.response,
        bodyTimeout: timeouts?.idle ?? DEFAULT_TIMEOUTS.idle,
      },
      (statusCode, headers) => {
        metrics.upstream(service.name, (performance.now() - sentAt) / 1000);
        answered = true;
        span?.answered(statusCode);
        const headersWith = (extra: ReadonlyArray<[string, string]>) =>
          downstreamHeaders(headers, request.responseHeaders, extra);
        const onReplaced = () => {
          replaced = true;
        };
        if (charge !== undefined && meter !== undefined) {
          return openMeteredAnswer({
            res,
            charge: { ...charge, meter },
            status: statusCode,
            headers,
            headersWith,
            onReplaced,
            chargeBelow: service.route.chargeBelow,
            call: request.metered ?? UNREAD_CALL,
          });
        }
        return openAnswer(res, charge, statusCode, headersWith, onReplaced);
      },
      (error) => {
        res.off('close', onClose);
        // No answer reached the client: nothing is charged, and the credential works again (a
        // charge committed when the upstream's status arrived is released too, if its head was
        // held back: a metered JSON answer).
        const released = answered && res.headersSent ? [] : (charge?.release() ?? []);
        if (error !== null && cancelled) span?.end('client_closed');
        else if (error === null || replaced) span?.end();
        if (error !== null && !cancelled && !replaced) {
          const code =
            'code' in error && TIMEOUT_ERRORS.has(String(error.code))
              ? 'upstream_timeout'
              : 'upstream_unavailable';
          span?.end(code);
          metrics.upstreamError(service.name, code);
          if (res.headersSent) {
            res.destroy(error);
          } else {
            const detail =
              code === 'upstream_timeout'
                ? `The upstream of ${service.name} did not answer in time; nothing was charged.`
                : `The upstream of ${service.name} cannot be reached; nothing was charged.`;
            sendProblem(res, { code, detail }, released);
          }
        }
        resolve();
      },
    );
  });
}

/** An upstream answer read whole, or why there is none. */
export type BufferedAnswer =
  | {
      ok: true;
      status: number;
      /** The headers passed back, without `content-length` (the body may be rewritten). */
      headers: Record<string, string | string[]>;
      body: Buffer;
    }
  | { ok: false; code: 'upstream_timeout' | 'upstream_unavailable' | 'upstream_too_large' };

/**
 * The flat upstream headers of a request whose answer is read here: asked for uncompressed
 * (whatever the client accepts), so that the gateway can read it, and, when the gateway sends a
 * body of `length` bytes of its own, the body's framing replaced by a `content-length`.
 */
function bufferedHeaders(headers: readonly string[], length: number | undefined): string[] {
  const framed: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const lower = (headers[i] ?? '').toLowerCase();
    if (length !== undefined && (lower === 'content-length' || lower === 'transfer-encoding')) {
      continue;
    }
    if (lower === 'accept-encoding') continue;
    framed.push(headers[i] ?? '', headers[i + 1] ?? '');
  }
  if (length !== undefined) framed.push('content-length', String(length));
  framed.push('accept-encoding', 'identity');
  return framed;
}

/**
 * Sends one request upstream with `body` instead of the client's body and reads the whole answer,
 * at most `limit` bytes, so that the gateway can look into it before answering (an MCP tool call
 * paid with x402, settled only when the tool succeeded). Never rejects; failures are values
 * (`upstream_too_large` past `limit`). Nothing is written to `res`.
 *
 * @example
 * ```ts
 * const answer = await exchangeBuffered(request, body, 8 * 1024 * 1024);
 * if (answer.ok) res.writeHead(answer.status, answer.headers).end(answer.body);
 * ```
 */
export async function exchangeBuffered(
  request: ForwardRequest,
  body: Uint8Array,
  limit: number,
): Promise<BufferedAnswer> {
  const { req, res, service, pool, metrics } = request;
  const timeouts = service.config.timeouts;
  const cancel = new EventEmitter();
  const onClose = (): void => {
    if (!res.writableFinished) cancel.emit('abort');
  };
  res.once('close', onClose);
  const sentAt = performance.now();
  metrics.overhead(service.name, (sentAt - request.startedAt) / 1000);
  const upstream = createUpstreamRequest(request);
  try {
    const answer = await pool.request({
      path: service.rewrite(req.url ?? '/'),
      method: (req.method ?? 'POST') as 'POST',
      headers: bufferedHeaders(upstream.headers, body.byteLength),
      body,
      signal: cancel,
      headersTimeout: timeouts?.response ?? DEFAULT_TIMEOUTS.response,
      bodyTimeout: timeouts?.idle ?? DEFAULT_TIMEOUTS.idle,
    });
    metrics.upstream(service.name, (performance.now() - sentAt) / 1000);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of answer.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        answer.body.destroy();
        metrics.upstreamError(service.name, 'upstream_too_large');
        return { ok: false, code: 'upstream_too_large' };
      }
      chunks.push(chunk as Buffer);
    }
    const headers = downstreamHeaders(answer.headers, request.responseHeaders);
    delete headers['content-length'];
    return { ok: true, status: answer.statusCode, headers, body: Buffer.concat(chunks, size) };
  } catch (error) {
    const code =
      error instanceof Error && 'code' in error && TIMEOUT_ERRORS.has(String(error.code))
        ? 'upstream_timeout'
        : 'upstream_unavailable';
    metrics.upstreamError(service.name, code);
    return { ok: false, code };
  } finally {
    res.off('close', onClose);
  }
}
