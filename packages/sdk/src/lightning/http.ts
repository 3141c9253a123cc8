/**
 * A small JSON-over-HTTP(S) client for the REST Lightning backends (LND, clnrest, LNbits, phoenixd).
 *
 * Built on `node:http`/`node:https` rather than `fetch` because LND needs certificate pinning of a
 * self-signed certificate, which Node 20's global `fetch` cannot do without an extra dispatcher
 * package. Transport failures are mapped to typed errors here, once, so every backend agrees:
 *
 * - connection refused/reset, timeout, dropped mid-response, 5xx → `backend_unavailable`
 * - 401/403 → `unauthorized`
 * - a body that is not JSON (where JSON is expected) → `backend_error`
 *
 * Any other status, and any status the request lists in `acceptStatuses`, is returned to the caller
 * with its parsed body, so the backend maps it (404 → `invoice_not_found`, …).
 */
import http from 'node:http';
import https from 'node:https';
import type { z } from 'zod';
import { TollwayError } from '../errors.js';
import { bytesEqual } from '../internal/bytes.js';
import { certificateDer } from '../internal/crypto.js';

/** A payment hash as REST backends take it in URL paths: 64 lower-case hex characters. */
export const PAYMENT_HASH = /^[0-9a-f]{64}$/;

/** Throws `invalid_hex` unless `paymentHash` is {@link PAYMENT_HASH} (it is put into a URL path). */
export function assertPaymentHash(paymentHash: string): void {
  if (!PAYMENT_HASH.test(paymentHash)) {
    throw new TollwayError('invalid_hex', 'a payment hash is 64 lower-case hex characters');
  }
}

/** Options of {@link createHttpClient}. */
export interface HttpClientOptions {
  /** e.g. `https://127.0.0.1:8080`; a path prefix is kept. */
  baseUrl: string;
  /** Sent with every request (auth headers). */
  headers?: Record<string, string>;
  /** Per-request timeout; default 30 000 ms. */
  timeoutMs?: number;
  /** Pins the server certificate: only this exact certificate (PEM) is accepted; hostname not checked. */
  tls?: { certPem?: string };
  /** Largest response body accepted; default 4 MiB. */
  maxBodyBytes?: number;
}

/** How to reach a node's REST API: the options LND and Core Lightning share. */
export interface NodeRestOptions {
  /** REST endpoint, e.g. `https://127.0.0.1:8080` (LND) or `https://127.0.0.1:3010` (clnrest). */
  url: string;
  /** The REST certificate (PEM), e.g. LND's `tls.cert`. When given, only this exact certificate is accepted. */
  certPem?: string;
  /** Timeout of a plain request; default 30 000 ms. */
  requestTimeoutMs?: number;
}

/** Options of one request. */
export interface HttpRequestOptions {
  /** Sent as `application/json`. */
  json?: unknown;
  /** Sent as `application/x-www-form-urlencoded`. */
  form?: Record<string, string>;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Statuses not mapped to errors, for a backend that explains its errors in the body (LNbits' 520,
   * clnrest's 500, LND's gRPC statuses): `request` returns them, `requestLines` reads their body as lines.
   */
  acceptStatuses?: number[];
}

/** A completed response whose status was not mapped to an error. */
export interface HttpResponse {
  status: number;
  /** Parsed JSON, or `undefined` for an empty body. */
  body: unknown;
  text: string;
}

/** See {@link createHttpClient}. */
export interface HttpClient {
  request(method: string, path: string, options?: HttpRequestOptions): Promise<HttpResponse>;
  /** Streams a newline-delimited JSON response, one parsed value per line. */
  requestLines(method: string, path: string, options?: HttpRequestOptions): AsyncIterable<unknown>;
  close(): Promise<void>;
}

/**
 * Creates a client bound to one base URL.
 *
 * @example
 * ```ts
 * const client = createHttpClient({ baseUrl: 'https://127.0.0.1:8080', headers: { 'Grpc-Metadata-macaroon': hex }, tls: { certPem } });
 * const { body } = await client.request('GET', '/v1/getinfo');
 * ```
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const base = new URL(options.baseUrl);
  const secure = base.protocol === 'https:';
  if (!secure && base.protocol !== 'http:') {
    throw new TollwayError('invalid_connection_string', `unsupported URL scheme ${base.protocol}`);
  }
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const pinned = options.tls?.certPem ? certificateDer(options.tls.certPem) : undefined;
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        ...(pinned
          ? {
              ca: options.tls?.certPem,
              // Pinning replaces hostname checks: the exact certificate must be presented.
              checkServerIdentity: (_host: string, cert: { raw: Buffer }) =>
                bytesEqual(cert.raw, pinned)
                  ? undefined
                  : new Error('server certificate does not match the pinned certificate'),
            }
          : {}),
      })
    : new http.Agent({ keepAlive: true });

  function open(method: string, path: string, opts: HttpRequestOptions) {
    const url = new URL(base.pathname.replace(/\/$/, '') + path, base);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, v);
    }
    let payload: string | undefined;
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (opts.json !== undefined) {
      payload = JSON.stringify(opts.json, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      headers['content-type'] = 'application/json';
    } else if (opts.form !== undefined) {
      payload = new URLSearchParams(opts.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    Object.assign(headers, opts.headers);
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    const timeoutMs = opts.timeoutMs ?? options.timeoutMs ?? 30_000;
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method, headers, agent }, resolve);
      const fail = (error: unknown) => {
        req.destroy();
        reject(asTransportError(error, url));
      };
      req.setTimeout(timeoutMs, () =>
        fail(
          new TollwayError('backend_unavailable', `no answer from ${url.host} in ${timeoutMs} ms`),
        ),
      );
      req.on('error', fail);
      if (opts.signal) {
        if (opts.signal.aborted) fail(opts.signal.reason);
        opts.signal.addEventListener('abort', () => fail(opts.signal?.reason), { once: true });
      }
      req.end(payload);
    });
  }

  async function readBody(res: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res) {
        size += (chunk as Buffer).length;
        if (size > maxBody) {
          res.destroy();
          throw new TollwayError('backend_error', `response body over ${maxBody} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (error) {
      throw asTransportError(error, undefined);
    }
    if (!res.complete)
      throw new TollwayError('backend_unavailable', 'connection dropped mid-response');
    return Buffer.concat(chunks).toString('utf8');
  }

  function checkStatus(status: number, text: string): void {
    if (status === 401 || status === 403) {
      throw new TollwayError('unauthorized', `backend refused our credentials (HTTP ${status})`, {
        details: { status, body: text.slice(0, 200) },
      });
    }
    if (status >= 500) {
      throw new TollwayError('backend_unavailable', `backend answered HTTP ${status}`, {
        details: { status, body: text.slice(0, 200) },
      });
    }
  }

  return {
    async request(method, path, opts = {}) {
      const res = await open(method, path, opts);
      const text = await readBody(res);
      const status = res.statusCode ?? 0;
      if (!opts.acceptStatuses?.includes(status)) checkStatus(status, text);
      // An error answer may be plain text (phoenixd); the caller still gets its status and text.
      const body =
        text === '' ? undefined : status >= 400 ? parseJsonOrUndefined(text) : parseJson(text);
      return { status, body, text };
    },
    async *requestLines(method, path, opts = {}) {
      const res = await open(method, path, opts);
      const status = res.statusCode ?? 0;
      if (status >= 300 && !opts.acceptStatuses?.includes(status)) {
        const text = await readBody(res);
        checkStatus(status, text);
        throw new TollwayError('backend_error', `backend answered HTTP ${status} to a stream`, {
          details: { status, body: text.slice(0, 200) },
        });
      }
      let buffered = '';
      try {
        for await (const chunk of res) {
          buffered += (chunk as Buffer).toString('utf8');
          if (buffered.length > maxBody)
            throw new TollwayError('backend_error', 'stream line too long');
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line !== '') yield parseJson(line);
            newline = buffered.indexOf('\n');
          }
        }
      } catch (error) {
        throw asTransportError(error, undefined);
      } finally {
        res.destroy();
      }
      if (buffered.trim() !== '') yield parseJson(buffered.trim());
    },
    async close() {
      agent.destroy();
    },
  };
}

/**
 * Creates a client for a node's REST API that sends `headers` (the credential) with every request.
 *
 * @example
 * ```ts
 * const client = createNodeRestClient({ url: 'https://127.0.0.1:3010', certPem }, { Rune: rune });
 * ```
 */
export function createNodeRestClient(
  options: NodeRestOptions,
  headers: Record<string, string>,
): HttpClient {
  return createHttpClient({
    baseUrl: options.url,
    headers,
    ...(options.certPem === undefined ? {} : { tls: { certPem: options.certPem } }),
    ...(options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs }),
  });
}

/**
 * Creates the function a backend reads its answers with: a body that does not fit `shape` fails
 * with `backend_error`, naming the backend, what was expected, and zod's issues.
 *
 * @example
 * ```ts
 * const parse = createBodyParser('LND');
 * const info = parse(infoShape, response.body, 'node info');
 * ```
 */
export function createBodyParser(backend: string) {
  return <S extends z.ZodType>(shape: S, body: unknown, what: string): z.output<S> => {
    const result = shape.safeParse(body);
    if (!result.success) {
      throw new TollwayError('backend_error', `${backend} sent an unexpected ${what}`, {
        cause: result.error,
        details: {
          issues: result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
        },
      });
    }
    return result.data;
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new TollwayError('backend_error', 'backend sent a body that is not JSON', {
      cause,
      details: { body: text.slice(0, 200) },
    });
  }
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function asTransportError(error: unknown, url: URL | undefined): TollwayError {
  if (error instanceof TollwayError) return error;
  const where = url ? ` ${url.host}` : '';
  const message = error instanceof Error ? error.message : String(error);
  return new TollwayError('backend_unavailable', `cannot reach the backend${where}: ${message}`, {
    cause: error,
  });
}
