/**
 * The HTTP plumbing shared by the REST backend doubles: a real server on 127.0.0.1 (port 0) that
 * records every request, can be told to misbehave, and hands each request to the double's handler.
 * A handler keeps running when the client hangs up, as a real node finishes a payment its caller
 * stopped waiting for. The node doubles (LND, clnrest) get the same over HTTPS, with a handler that
 * writes its own answers.
 */
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FaultMode } from '../lightning/backend-suite.js';
import type { FakeNode } from './fake-node.js';
import { createSelfSignedCert } from './tls.js';

/** One request as the double received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the handler answers: JSON (`json`), plain text (`text`), or nothing (204). */
export interface DoubleReply {
  status: number;
  json?: unknown;
  text?: string;
}

/** See {@link startHttpDouble}. */
export interface HttpDouble {
  url: string;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Misbehave on later requests until cleared. `unauthorized` and `wrong_preimage` are the handler's. */
  fault(mode?: FaultMode): void;
  /** The next request gets this reply instead of the handler's. */
  respondNext(reply: DoubleReply): void;
  close(): Promise<void>;
}

/**
 * Starts a double. Faults handled here: `drop` (the socket is destroyed), `unavailable` (a proxy's
 * 503 page), `garbage` (200 with a body that is not JSON).
 *
 * @example
 * ```ts
 * const double = await startHttpDouble(async (req) => ({ status: 200, json: { ok: true } }));
 * ```
 */
export async function startHttpDouble(
  handle: (req: RecordedRequest, fault: FaultMode | undefined) => Promise<DoubleReply>,
): Promise<HttpDouble> {
  const requests: RecordedRequest[] = [];
  const scripted: DoubleReply[] = [];
  let fault: FaultMode | undefined;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://double');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      if (fault === 'drop') {
        req.socket.destroy();
        return;
      }
      if (fault === 'unavailable') {
        send(res, { status: 503, text: '<html><body>503 Service Unavailable</body></html>' });
        return;
      }
      if (fault === 'garbage') {
        send(res, { status: 200, text: '<html><body>It works!</body></html>' });
        return;
      }
      const next = scripted.shift();
      if (next) {
        send(res, next);
        return;
      }
      handle(recorded, fault).then(
        (reply) => send(res, reply),
        (error: unknown) => send(res, { status: 500, text: String(error) }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fault(mode) {
      fault = mode;
    },
    respondNext(reply) {
      scripted.push(reply);
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: http.ServerResponse, reply: DoubleReply): void {
  if (res.destroyed || res.writableEnded) return;
  // The client may hang up while the answer is written (a timed-out payment): that is not our error.
  res.on('error', () => undefined);
  if (reply.json !== undefined) {
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.json));
  } else if (reply.text !== undefined) {
    res.writeHead(reply.status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(reply.text);
  } else {
    res.writeHead(reply.status);
    res.end();
  }
}

/** See {@link startNodeHttpsDouble}. */
export interface NodeHttpsDouble {
  url: string;
  /** The self-signed certificate the double serves (PEM), to pin. */
  certPem: string;
  node: FakeNode;
  /** Misbehave on every following request; `undefined` restores normal service. */
  fault(mode?: FaultMode): void;
  /** Answer the next request with exactly this status and JSON body. */
  respondOnce(status: number, body: string): void;
  close(): Promise<void>;
}

/**
 * Serves a double of a node's REST API over HTTPS, with a fresh self-signed certificate, as LND and
 * clnrest serve theirs. Once a request's body is read, handled here: a `respondOnce` answer, and the
 * `drop` fault (the socket is destroyed); `wrong_preimage` is the node's. Every other request goes to
 * `handle` with its body and the current fault; when it throws, the answer is a 500 with
 * `crashBody(error)`.
 *
 * @example
 * ```ts
 * const server = await startNodeHttpsDouble(node, handle, (error) => ({ code: -1, message: String(error) }));
 * ```
 */
export async function startNodeHttpsDouble(
  node: FakeNode,
  handle: (
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    fault: FaultMode | undefined,
  ) => Promise<void>,
  crashBody: (error: unknown) => unknown,
): Promise<NodeHttpsDouble> {
  const { certPem, keyPem } = createSelfSignedCert();
  let fault: FaultMode | undefined;
  let canned: { status: number; body: string } | undefined;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (canned !== undefined) {
      res.writeHead(canned.status, { 'content-type': 'application/json' });
      res.end(canned.body);
      canned = undefined;
      return;
    }
    if (fault === 'drop') {
      req.socket.destroy();
      return;
    }
    await handle(req, res, Buffer.concat(chunks).toString('utf8'), fault);
  }

  const server = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
    serve(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(crashBody(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    certPem,
    node,
    fault(mode) {
      fault = mode;
      node.wrongPreimage = mode === 'wrong_preimage';
    },
    respondOnce(status, body) {
      canned = { status, body };
    },
    async close() {
      node.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
