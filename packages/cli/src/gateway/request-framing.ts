/**
 * Header framing the gateway refuses although Node's parser lets it through, because another
 * server could read the same bytes differently: an HTTP/1.1 request without exactly one Host
 * (RFC 9112 §3.2), and a Transfer-Encoding other than a lone `chunked` (RFC 9112 §6.3: a request
 * whose final coding is not chunked has no knowable length; the gateway forwards no other coding).
 * An HTTP/2 request names its host in `:authority` (RFC 9113 §8.3.1) and frames its body itself;
 * HTTP/2's CONNECT is refused as HTTP/1.1's is.
 */
import type { IncomingMessage } from 'node:http';
import { http2StreamOf } from './listener.js';

/** The request's Host header and whether a body follows, or why the request is refused. */
export type Framing =
  | { ok: true; host: string | undefined; hasBody: boolean }
  | { ok: false; detail: string };

/**
 * Reads the Host header and whether a body follows, and checks the framing headers, in one pass
 * over the raw headers.
 *
 * @example
 * ```ts
 * const framing = readFraming(req);
 * if (!framing.ok) return sendProblem(res, { code: 'malformed_request', detail: framing.detail });
 * ```
 */
export function readFraming(req: IncomingMessage): Framing {
  const stream = http2StreamOf(req);
  if (stream !== undefined) return readHttp2Framing(req, !stream.endAfterHeaders);
  const raw = req.rawHeaders;
  let host: string | undefined;
  let hosts = 0;
  let coding: string | undefined;
  let length = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts += 1;
      host = raw[i + 1];
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      coding = coding === undefined ? (raw[i + 1] ?? '') : `${coding}, ${raw[i + 1]}`;
    } else if (name.length === 14 && name.toLowerCase() === 'content-length') {
      length = raw[i + 1] !== '0';
    }
  }
  if (hosts > 1) return { ok: false, detail: 'The request has more than one Host header.' };
  if (hosts === 0 && req.httpVersion === '1.1') {
    return { ok: false, detail: 'An HTTP/1.1 request needs a Host header.' };
  }
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
    return {
      ok: false,
      detail:
        'A Transfer-Encoding other than chunked is not served; send chunked or a Content-Length.',
    };
  }
  return { ok: true, host, hasBody: coding !== undefined || length };
}

function readHttp2Framing(req: IncomingMessage, hasBody: boolean): Framing {
  if (req.method === 'CONNECT') {
    return {
      ok: false,
      detail: 'CONNECT is not served: the gateway is a reverse proxy, not a forward proxy.',
    };
  }
  const authority = req.headers[':authority'];
  const host = typeof authority === 'string' ? authority : req.headers.host;
  return { ok: true, host, hasBody };
}
