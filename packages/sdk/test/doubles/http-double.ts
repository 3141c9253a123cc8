/**
 * The HTTP plumbing shared by the REST backend doubles: a real server on 127.0.0.1 (port 0) that
 * records every request, can be told to misbehave, and hands each request to the double's handler.
 * A handler keeps running when the client hangs up, as a real node finishes a payment its caller
 * stopped waiting for.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultMode } from '../lightning/backend-suite.js';

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
