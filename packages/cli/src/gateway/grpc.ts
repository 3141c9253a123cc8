/**
 * gRPC through the gateway: a call (HTTP/2, `content-type: application/grpc…`) that passed the
 * paywall is forwarded to its service's upstream over HTTP/2 (http2-upstreams.ts), unary and
 * streaming alike, both directions streaming with back-pressure. Response headers, messages and
 * trailers pass through; the engine's headers (a receipt) join the response headers, a metered
 * receipt the trailers. The client's deadline (`grpc-timeout`) is honoured: the upstream is told
 * what is left of it, and the gateway cancels the call and answers DEADLINE_EXCEEDED when it
 * passes.
 *
 * What is charged: a call is charged once the upstream sends its first response message, or ends
 * with status OK. A call that ends with another status before any message (gRPC's trailers-only
 * errors), that the upstream does not answer (unreachable, reset, too slow), or that the client
 * cancels before any message, is not charged: its reservation is released and the credential
 * works again. Once a message went out, the call stays charged whatever status ends it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { PaymentContext, PaywallCharge } from '@tollway/sdk/server';
import {
  addHeaders,
  answerGrpc,
  encodeGrpcMessage,
  GRPC_STATUS,
  grpcCodeOf,
  sendGrpcProblem,
  sendGrpcStatus,
} from './grpc-status.js';
import type { Http2Upstreams } from './http2-upstreams.js';
import { http2StreamOf } from './listener.js';
import type { GatewayMetrics } from './metrics.js';
import { createUpstreamRequest, DEFAULT_TIMEOUTS } from './proxy.js';
import type { Service } from './services.js';

/** One gRPC call on its way upstream. */
export interface GrpcCall {
  /** The call as a request (its messages are read from it). */
  req: IncomingMessage;
  /** The call's HTTP/2 stream (its answer is written there). */
  stream: ServerHttp2Stream;
  /**
   * The call's response object, which owns the stream's trailers: Node's HTTP/2 compatibility
   * layer sends its trailers once the stream ends, so the call's are handed to it.
   */
  res: ServerResponse;
  service: Service;
  upstreams: Http2Upstreams;
  payment: PaymentContext;
  /** Headers the engine adds to the answer. */
  responseHeaders: ReadonlyArray<[string, string]>;
  charge?: PaywallCharge | undefined;
  host: string | undefined;
  trustProxy: boolean | number;
  metrics: GatewayMetrics;
  startedAt: number;
}

/**
 * The HTTP/2 stream of a gRPC call, or undefined for any other request.
 *
 * @example
 * ```ts
 * const grpc = grpcStreamOf(req);
 * if (grpc !== undefined) sendGrpcProblem(grpc, { code: 'not_found', detail: 'No such service.' });
 * ```
 */
export function grpcStreamOf(req: IncomingMessage): ServerHttp2Stream | undefined {
  const stream = http2StreamOf(req);
  if (stream === undefined) return undefined;
  return req.headers['content-type']?.startsWith('application/grpc') === true ? stream : undefined;
}

/** For {@link addHeaders}: keep every header. */
const NOTHING: ReadonlySet<string> = new Set();

const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * The deadline a `grpc-timeout` value sets, in ms from now: undefined when absent, NaN when
 * malformed (grpc/doc/PROTOCOL-HTTP2.md: at most 8 digits and a unit).
 */
function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = TIMEOUT.exec(Array.isArray(value) ? (value[0] ?? '') : value);
  if (match === null) return Number.NaN;
  return Number(match[1]) * (TIMEOUT_UNIT_MS[match[2] ?? ''] ?? Number.NaN);
}

/** The upstream request's headers: the proxy's, as HTTP/2 fields, with gRPC's own. */
function upstreamHeaders(call: GrpcCall, deadlineMs: number | undefined): OutgoingHttpHeaders {
  const { req, service } = call;
  // The origin is a URL's own (`scheme://host[:port]`): cut, not parsed again for every call.
  const { origin } = service;
  const headers: OutgoingHttpHeaders = {
    ':method': req.method ?? 'POST',
    ':path': service.rewrite(req.url ?? '/'),
    ':scheme': origin.slice(0, origin.indexOf(':')),
    ':authority': origin.slice(origin.indexOf('//') + 2),
  };
  const flat = createUpstreamRequest(call).headers;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = (flat[i] ?? '').toLowerCase();
    const value = flat[i + 1] ?? '';
    if (name === 'host') headers[':authority'] = value;
    else if (name !== 'grpc-timeout') addHeaders(headers, [[name, value]], NOTHING);
  }
  // Dropped as hop-by-hop by the HTTP proxy; gRPC requires it (it says trailers are read).
  headers.te = 'trailers';
  if (deadlineMs !== undefined) {
    headers['grpc-timeout'] = `${Math.max(1, Math.ceil(deadlineMs - performance.now()))}m`;
  }
  return headers;
}

/** Upstream response fields that describe the HTTP/2 message itself, not the call. */
function passedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (name.startsWith(':') || value === undefined) continue;
    out[name] = value;
  }
  return out;
}

function statusOf(headers: IncomingHttpHeaders | undefined): number | undefined {
  const value = headers?.['grpc-status'];
  return value === undefined ? undefined : Number(value);
}

/** Waits until `stream` can take more, or is gone. */
function drained(stream: ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

/**
 * The upstream's response head and its flags; rejects when the stream fails or closes first (a
 * call cancelled here closes without an error). Listeners rather than `events.once` with an
 * AbortSignal, which cost each call an AbortController, a signal and its listeners.
 */
function responseOf(
  up: ClientHttp2Stream,
): Promise<[IncomingHttpHeaders & IncomingHttpStatusHeader, number]> {
  return new Promise((resolve, reject) => {
    const stopListening = (): void => {
      up.off('response', onResponse);
      up.off('error', onError);
      up.off('close', onClose);
    };
    const onResponse = (headers: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => {
      stopListening();
      resolve([headers, flags]);
    };
    const onError = (error: Error): void => {
      stopListening();
      reject(error);
    };
    const onClose = (): void => {
      stopListening();
      reject(new Error('the upstream stream closed before its response'));
    };
    up.on('response', onResponse);
    up.on('error', onError);
    up.on('close', onClose);
  });
}

/** Why a call stopped before its upstream ended it. */
type Stop = 'deadline' | 'client' | 'timeout';

/**
 * Forwards one gRPC call and streams its answer back (see the module comment). Resolves when the
 * call is over, whatever its outcome; never rejects.
 *
 * @example
 * ```ts
 * await forwardGrpc({ req, stream, service, upstreams, payment, responseHeaders: [], host, trustProxy, metrics, startedAt });
 * ```
 */
export async function forwardGrpc(call: GrpcCall): Promise<void> {
  const { req, stream: down, service, charge, metrics } = call;
  const timeoutMs = parseGrpcTimeout(req.headers['grpc-timeout']);
  if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) {
    charge?.release();
    sendGrpcStatus(down, GRPC_STATUS.internal, 'malformed grpc-timeout');
    return;
  }
  const deadlineMs = timeoutMs === undefined ? undefined : call.startedAt + timeoutMs;
  const sentAt = performance.now();
  metrics.overhead(service.name, (sentAt - call.startedAt) / 1000);

  const outcome = createOutcome(call);
  const release = outcome.release;
  let up: ClientHttp2Stream;
  try {
    const hasBody = !down.endAfterHeaders;
    up = call.upstreams
      .session(service)
      .request(upstreamHeaders(call, deadlineMs), { endStream: !hasBody });
    if (hasBody) req.pipe(up);
  } catch {
    metrics.upstreamError(service.name, 'upstream_unavailable');
    sendGrpcProblem(
      down,
      {
        code: 'upstream_unavailable',
        detail: `the upstream of ${service.name} cannot be reached; nothing was charged`,
      },
      release(),
    );
    return;
  }
  let stop: Stop | undefined;
  const cancel = (why: Stop): void => {
    stop ??= why;
    up.close(constants.NGHTTP2_CANCEL);
  };
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  if (deadlineMs !== undefined) {
    timers.push(setTimeout(() => cancel('deadline'), Math.max(0, deadlineMs - performance.now())));
  }
  const responseTimer = setTimeout(
    () => cancel('timeout'),
    service.config.timeouts?.response ?? DEFAULT_TIMEOUTS.response,
  );
  timers.push(responseTimer);
  const onClientGone = (): void => {
    if (!up.closed) cancel('client');
  };
  down.once('close', onClientGone);
  let trailers: IncomingHttpHeaders | undefined;
  up.on('trailers', (received: IncomingHttpHeaders) => {
    trailers = received;
  });

  let opened = false;
  try {
    const [headers, flags] = await responseOf(up);
    clearTimeout(responseTimer);
    metrics.upstream(service.name, (performance.now() - sentAt) / 1000);
    const httpStatus = headers[':status'] ?? 0;
    if (httpStatus !== 200) {
      cancel('timeout');
      sendGrpcStatus(
        down,
        grpcCodeOf(httpStatus >= 500 ? 502 : httpStatus),
        `the upstream answered HTTP ${httpStatus}, not gRPC`,
        release(),
      );
      return;
    }
    if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
      const ok = statusOf(headers) === GRPC_STATUS.ok;
      await answerTrailersOnly(call, headers, ok ? await outcome.commit(up) : release());
      return;
    }
    const messages = up[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await messages.next();
    // The first message, or the end with OK, decides the charge.
    const charged = !first.done || statusOf(trailers) === GRPC_STATUS.ok;
    const extra = charged ? await outcome.commit(up) : release();
    if (extra === undefined) return;
    opened = true;
    down.respond(addHeaders(passedHeaders(headers), [...call.responseHeaders, ...extra]), {
      waitForTrailers: true,
    });
    for (let next = first; !next.done; next = await messages.next()) {
      charge?.meter?.write(next.value);
      if (!down.write(next.value)) await drained(down);
    }
    await endWithTrailers(call, passedHeaders(trailers ?? {}), true);
  } catch {
    if (stop === 'client' || down.destroyed) {
      if (opened) await charge?.meter?.end(false);
      release();
      return;
    }
    const [code, message] =
      stop === 'deadline'
        ? [GRPC_STATUS.deadlineExceeded, 'deadline exceeded']
        : stop === 'timeout'
          ? [GRPC_STATUS.unavailable, `the upstream of ${service.name} did not answer in time`]
          : [GRPC_STATUS.unavailable, `the upstream of ${service.name} failed`];
    if (!opened) {
      metrics.upstreamError(
        service.name,
        stop === undefined ? 'upstream_unavailable' : 'upstream_timeout',
      );
      sendGrpcStatus(down, code, `${message}; nothing was charged`, release());
      return;
    }
    const status = { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
    await endWithTrailers(call, status, false);
  } finally {
    for (const timer of timers) clearTimeout(timer);
    down.off('close', onClientGone);
    // A call that ended both ways closes by itself (its stream is marked closed a little later);
    // a reset would count among the upstream's glitches, and nghttp2 goes away past a thousand.
    if (!up.closed && !(up.readableEnded && up.writableFinished))
      up.close(constants.NGHTTP2_CANCEL);
  }
}

/** The charge of one call, decided once: committed when it answered, else released. */
function createOutcome(call: GrpcCall) {
  let decided = false;
  return {
    /**
     * The call answered: the headers to add, or undefined when the engine answered instead (an
     * x402 settlement failed), which is then sent and the upstream cancelled.
     */
    async commit(up: ClientHttp2Stream): Promise<Array<[string, string]> | undefined> {
      if (decided || call.charge === undefined) return [];
      decided = true;
      const final = await call.charge.commit(200);
      if (final.kind === 'pass') return final.headers;
      up.close(constants.NGHTTP2_CANCEL);
      answerGrpc(call.stream, final.response);
      return undefined;
    },
    /** There is no answer: nothing is charged; the headers that say so. */
    release(): Array<[string, string]> {
      if (decided) return [];
      decided = true;
      return call.charge?.release() ?? [];
    },
  };
}

/**
 * The upstream ended the call in its first HEADERS frame: answered alike, with `extra` (the
 * receipt; undefined when the engine answered instead).
 */
async function answerTrailersOnly(
  call: GrpcCall,
  headers: IncomingHttpHeaders,
  extra: Array<[string, string]> | undefined,
): Promise<void> {
  if (extra === undefined) return;
  if (call.charge?.meter !== undefined) extra.push(...(await call.charge.meter.end(true)));
  const answer = addHeaders(passedHeaders(headers), [...call.responseHeaders, ...extra]);
  if (!call.stream.destroyed)
    call.stream.respond({ ...answer, ':status': 200 }, { endStream: true });
}

/** Ends an answered call with `trailers`, and the meter's receipt when the call was metered. */
async function endWithTrailers(
  call: GrpcCall,
  trailers: OutgoingHttpHeaders,
  complete: boolean,
): Promise<void> {
  const receipt = (await call.charge?.meter?.end(complete)) ?? [];
  const down = call.stream;
  if (down.destroyed || down.closed) return;
  const all = addHeaders(trailers, receipt);
  if (all['grpc-status'] === undefined) {
    all['grpc-status'] = String(GRPC_STATUS.internal);
    all['grpc-message'] = encodeGrpcMessage('the upstream sent no status');
  }
  call.res.addTrailers(all as Record<string, string>);
  down.end();
}
