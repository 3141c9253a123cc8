/**
 * The gateway's `node:http` listeners, hardened: connections must send complete request headers
 * within `headersTimeout` (idle sockets and slowloris are cut), a whole request within
 * `requestTimeout`, and idle keep-alive connections close after `keepAliveTimeout`; at most `max`
 * connections are held per listener. What Node's parser refuses (oversized headers, a malformed
 * request line, ambiguous framing such as Content-Length with Transfer-Encoding, a request that
 * timed out) and CONNECT are answered with a JSON problem body and a stable code, then the
 * connection is closed. Reference: docs/reference/config.md#connections.
 */
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  STATUS_CODES,
} from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProblemResponse, type Problem } from '@tollway/sdk/server';

/** Limits on the connections of one listener; times in ms. */
export interface ConnectionLimits {
  /** The longest wait for complete request headers, from the connection or the previous answer. */
  headersTimeout: number;
  /** The longest wait for a whole request, headers and body; 0: no limit. */
  requestTimeout: number;
  /** How long an idle keep-alive connection is kept. */
  keepAliveTimeout: number;
  /** Connections held at once; more are closed as they arrive. */
  max: number;
}

/** The limits when the config names none. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeout: 10_000,
  requestTimeout: 300_000,
  keepAliveTimeout: 5_000,
  max: 10_000,
};

/** How often Node checks the header and request deadlines of open connections, ms. */
export const DEADLINE_CHECK_MS = 1000;

/** A client error Node reports, as the problem it is answered with. */
function problemOf(error: NodeJS.ErrnoException): Problem {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        code: 'request_headers_too_large',
        detail: 'The request headers are larger than the gateway reads (16 KiB).',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        code: 'request_timeout',
        detail: 'The request did not arrive in time; the connection is closed.',
      };
    default:
      return {
        code: 'malformed_request',
        detail: `The request cannot be read as HTTP/1.1: ${error.message.replace(/^Parse Error: /, '')}.`,
      };
  }
}

/** An answer written on a bare socket; see {@link writeSocketAnswer}. */
export interface SocketAnswer {
  status: number;
  headers: ReadonlyArray<readonly [string, string]>;
  body: string | Uint8Array;
}

/**
 * Writes an answer straight to a socket that Node no longer parses (the request could not be
 * read, or asked to upgrade the connection), with `Connection: close`, then closes it.
 *
 * @example
 * ```ts
 * writeSocketAnswer(socket, { status: 502, headers: [], body: '' });
 * ```
 */
export function writeSocketAnswer(socket: Duplex, answer: SocketAnswer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
  const head = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}`];
  for (const [name, value] of answer.headers) {
    const lower = name.toLowerCase();
    if (lower === 'connection' || lower === 'content-length' || lower === 'transfer-encoding')
      continue;
    head.push(`${name}: ${value}`);
  }
  head.push('connection: close', `content-length: ${body.byteLength}`);
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  socket.end(body, () => socket.destroy());
}

/**
 * Writes a problem (its status from the error catalogue) straight to a socket Node no longer
 * parses, then closes it, `headers` added; see {@link writeSocketAnswer}.
 *
 * @example
 * ```ts
 * server.on('connect', (_req, socket) => writeSocketProblem(socket, { code: 'malformed_request', detail: 'CONNECT is not served.' }));
 * ```
 */
export function writeSocketProblem(
  socket: Duplex,
  problem: Problem,
  headers: ReadonlyArray<[string, string]> = [],
): void {
  const all: Array<[string, string]> = [['Cache-Control', 'no-store'], ...headers];
  writeSocketAnswer(socket, createProblemResponse(problem, all));
}

/**
 * True when the connection is writing an answer already: a raw problem would corrupt it. Node
 * keeps that answer on the socket (`_httpMessage`, read the same way by Node's own default
 * handler of client errors).
 */
function isAnswering(socket: Duplex): boolean {
  const message = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  return message?.headersSent === true;
}

/**
 * Creates a listener with the limits and answers above; `handler` serves every request Node could
 * read.
 *
 * @example
 * ```ts
 * const server = createHttpServer(DEFAULT_CONNECTION_LIMITS, (req, res) => res.end('ok'));
 * server.listen(8402);
 * ```
 */
export function createHttpServer(limits: ConnectionLimits, handler: RequestListener): Server {
  const server = createServer(
    {
      noDelay: true,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      connectionsCheckingInterval: DEADLINE_CHECK_MS,
      // The gateway answers a missing Host itself, with a problem body.
      requireHostHeader: false,
    },
    handler,
  );
  server.maxConnections = limits.max;
  answerClientErrors(server);
  return server;
}

/**
 * Answers what Node's HTTP/1.1 parser refuses, and CONNECT, with a problem body on `server` (an
 * `http.Server`, or the TLS listener's HTTP/2 server, which parses HTTP/1.1 alike).
 *
 * @example
 * ```ts
 * answerClientErrors(createSecureServer({ cert, key, allowHTTP1: true }));
 * ```
 */
export function answerClientErrors(server: NetServer): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || isAnswering(socket)) {
      socket.destroy();
      return;
    }
    writeSocketProblem(socket, problemOf(error));
  });
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    writeSocketProblem(socket, {
      code: 'malformed_request',
      detail: 'CONNECT is not served: the gateway is a reverse proxy, not a forward proxy.',
    });
  });
}
