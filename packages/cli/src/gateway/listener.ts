/**
 * The public listener: HTTP/1.1 always; HTTP/2 over TLS when the config names a certificate (ALPN
 * offers `h2` and `http/1.1` on one port), and cleartext HTTP/2 with prior knowledge (`h2c`, what
 * gRPC clients with insecure credentials speak) beside HTTP/1.1 when `h2c` is on. A cleartext
 * connection is told apart by its first four bytes: only HTTP/2's connection preface starts with
 * `PRI ` (RFC 9113 §3.4). Every HTTP/1.1 connection keeps the limits of http-server.ts; HTTP/2
 * sessions are counted among the connections and take at most `MAX_STREAMS` requests at once.
 * Requests of both versions reach one handler: Node's HTTP/2 compatibility objects expose the
 * subset of `IncomingMessage` and `ServerResponse` the gateway reads (`rawHeaders`, `url`,
 * `method`, `socket`, `writeHead`, `end`, `close`), and a gRPC call is told by
 * {@link http2StreamOf}. Reference: docs/reference/config.md#tls-and-http2.
 */
import { Server as HttpServer, type IncomingMessage, type RequestListener } from 'node:http';
import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2Session,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  answerClientErrors,
  type ConnectionLimits,
  createHttpServer,
  DEADLINE_CHECK_MS,
} from './http-server.js';

/** Requests one HTTP/2 connection may have open at once (Go's HTTP/2 server allows 250). */
const MAX_STREAMS = 250;

/** The certificate of a TLS listener, PEM. */
export interface ListenerTls {
  cert: string;
  key: string;
}

/** What a listener serves. */
export interface ListenerOptions {
  limits: ConnectionLimits;
  /** Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this certificate. */
  tls?: ListenerTls | undefined;
  /** Without TLS: also take HTTP/2 with prior knowledge. */
  h2c?: boolean;
  /** Every request, HTTP/1.1 or HTTP/2. */
  request: RequestListener;
  /** An HTTP/1.1 `Upgrade` request (a WebSocket). */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** A listener; see the module comment. */
export interface Listener {
  /** The server to `listen` on and `close`. */
  readonly server: NetServer;
  /** `http` or `https`. */
  readonly scheme: 'http' | 'https';
  /** Closes idle HTTP/1.1 connections and asks HTTP/2 sessions to finish (GOAWAY). */
  closeIdle(): void;
  /** Cuts every connection. */
  closeAll(): void;
}

/**
 * The HTTP/2 stream of a request that came over HTTP/2, else undefined.
 *
 * @example
 * ```ts
 * const stream = http2StreamOf(req);
 * if (stream !== undefined) stream.respond({ ':status': 200 }, { endStream: true });
 * ```
 */
export function http2StreamOf(req: IncomingMessage): ServerHttp2Stream | undefined {
  if (req.httpVersionMajor !== 2) return undefined;
  return (req as unknown as Http2ServerRequest).stream;
}

/** The HTTP/2 sessions of a server, for draining. */
function trackSessions(server: NetServer): Set<Http2Session> {
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return sessions;
}

function closeSessions(sessions: Set<Http2Session>, cut: boolean): void {
  for (const session of sessions) {
    if (cut) session.destroy();
    else if (!session.closed) session.close();
  }
}

/**
 * A TLS listener: Node's HTTP/2 server with HTTP/1.1 allowed by ALPN, the HTTP/1.1 limits set as
 * on http-server.ts (Node applies them to the HTTP/1.1 connections of this server too).
 */
function createTlsListener(options: ListenerOptions, tls: ListenerTls): Listener {
  const { limits } = options;
  const secure: SecureServerOptions = {
    cert: tls.cert,
    key: tls.key,
    allowHTTP1: true,
    settings: { maxConcurrentStreams: MAX_STREAMS },
  };
  const server = createSecureServer(secure, options.request as never);
  Object.assign(server, {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionsCheckingInterval: DEADLINE_CHECK_MS,
  });
  server.maxConnections = limits.max;
  answerClientErrors(server);
  if (options.upgrade !== undefined) server.on('upgrade', options.upgrade);
  const sessions = trackSessions(server);
  // The HTTP/1.1 connections of this server are tracked by Node as an http.Server's are; its
  // own methods close them (an Http2SecureServer does not inherit them).
  const http1 = HttpServer.prototype as unknown as {
    closeIdleConnections(this: unknown): void;
    closeAllConnections(this: unknown): void;
  };
  return {
    server,
    scheme: 'https',
    closeIdle() {
      http1.closeIdleConnections.call(server);
      closeSessions(sessions, false);
    },
    closeAll() {
      http1.closeAllConnections.call(server);
      closeSessions(sessions, true);
    },
  };
}

/** The first word of the HTTP/2 connection preface. */
const PREFACE_START = Buffer.from('PRI ', 'latin1');

/**
 * Hands each connection of `server` to its own HTTP/1.1 handling, or to `h2` when it opens with
 * the HTTP/2 preface. The bytes read to tell are put back first.
 */
function sniffPreface(server: HttpServer, h2: Http2Server): void {
  const [http1] = server.listeners('connection') as Array<(socket: Socket) => void>;
  if (http1 === undefined) throw new Error('node:http registers its connection listener');
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const peek = (): void => {
      const chunk: Buffer | null = socket.read();
      if (chunk === null) return;
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const known = Math.min(seen.length, PREFACE_START.length);
      const preface = seen.subarray(0, known).equals(PREFACE_START.subarray(0, known));
      // `P`, `PR`, `PRI`: a preface or a method such as PUT; wait for the next bytes.
      if (preface && known < PREFACE_START.length) return;
      socket.off('readable', peek);
      socket.unshift(seen);
      if (preface) h2.emit('connection', socket);
      else http1.call(server, socket);
    };
    socket.on('readable', peek);
  });
}

/** A cleartext listener: the hardened HTTP/1.1 server, with h2c beside it when asked. */
function createPlainListener(options: ListenerOptions): Listener {
  const server = createHttpServer(options.limits, options.request);
  if (options.upgrade !== undefined) server.on('upgrade', options.upgrade);
  if (options.h2c !== true) {
    return {
      server,
      scheme: 'http',
      closeIdle: () => server.closeIdleConnections(),
      closeAll: () => server.closeAllConnections(),
    };
  }
  const h2 = createHttp2Server(
    { settings: { maxConcurrentStreams: MAX_STREAMS } },
    options.request as never,
  );
  const sessions = trackSessions(h2);
  sniffPreface(server, h2);
  return {
    server,
    scheme: 'http',
    closeIdle() {
      server.closeIdleConnections();
      closeSessions(sessions, false);
    },
    closeAll() {
      server.closeAllConnections();
      closeSessions(sessions, true);
    },
  };
}

/**
 * Creates the public listener (see the module comment).
 *
 * @example
 * ```ts
 * const listener = createListener({ limits: DEFAULT_CONNECTION_LIMITS, h2c: true, request: handler });
 * listener.server.listen(8402);
 * ```
 */
export function createListener(options: ListenerOptions): Listener {
  return options.tls === undefined
    ? createPlainListener(options)
    : createTlsListener(options, options.tls);
}
