/**
 * How the Node-based adapters (node, Express, Fastify) and the gateway see a Node request: its
 * headers read from the raw list, every `Authorization` line, the client address, and a lazy JSON
 * body that stays readable for the app. Internal to the adapters.
 */
import type { IncomingMessage } from 'node:http';
import type { Route } from '../server/route.js';
import type { HeaderReader } from '../server/types.js';
import {
  type AdapterOptions,
  AdapterRequest,
  assertBodySize,
  DEFAULT_BODY_LIMIT,
  parseJsonBody,
  resolveClientIp,
} from './common.js';

/**
 * Reads the whole body, at most `limit` bytes, then puts it back into the stream, so the app's
 * handler can still read it. Throws `invalid_json` when the body is larger than `limit`.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('readable', onReadable);
      req.off('error', onError);
    };
    const onError = (error: Error): void => {
      stop();
      reject(error);
    };
    const onReadable = (): void => {
      try {
        for (let chunk: Buffer | null = req.read(); chunk !== null; chunk = req.read()) {
          chunks.push(chunk);
          size += chunk.length;
          assertBodySize(size, limit);
        }
      } catch (error) {
        stop();
        reject(error);
        return;
      }
      // `complete` turns true once the parser has seen the end of the body; unshifting before
      // the 'end' event leaves the whole body readable again for the handler.
      if (!req.complete) return;
      stop();
      const body = Buffer.concat(chunks, size);
      if (size > 0) req.unshift(body);
      resolve(body);
    };
    req.on('readable', onReadable);
    req.on('error', onError);
  });
}

/**
 * Reads a request's JSON body (at most `limit` bytes) and leaves the body readable for the app:
 * `undefined` when empty; `invalid_json` when malformed or too large.
 *
 * @example
 * ```ts
 * const body = await readJsonBody(req, 1_048_576);
 * ```
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  assertBodySize(Number(req.headers['content-length'] ?? 0), limit);
  if (req.readableEnded) return undefined;
  return parseJsonBody(await readBody(req, limit));
}

/** True when header `name` is `lower` (already lower case) but for letter case; allocates nothing. */
function isHeader(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let code = name.charCodeAt(i);
    if (code >= 65 && code <= 90) code += 32;
    if (code !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A header view over Node's raw header list: repeated values joined with `, ` as a Web `Headers`
 * would. Read from `rawHeaders` rather than `req.headers`, which Node builds on first access (a
 * cost the paid path would otherwise be alone to pay), and which keeps only the first value of
 * some headers. A class, so a request costs one small object.
 */
class NodeHeaderReader implements HeaderReader {
  readonly #raw: readonly string[];

  constructor(raw: readonly string[]) {
    this.#raw = raw;
  }

  get(name: string): string | null {
    const raw = this.#raw;
    const lower = name.toLowerCase();
    let value: string | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (!isHeader(raw[i]!, lower)) continue;
      value = value === null ? raw[i + 1]! : `${value}, ${raw[i + 1]}`;
    }
    return value;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }
}

/**
 * What an adapter built on this translation supplies itself: the URL and client address as its
 * framework reports them, a JSON body reader, and whether it reports the outcome.
 */
export interface NodeRequestParts {
  url?: string;
  /** Reads the client address as the framework reports it, on first use; undefined: the socket's. */
  clientIp?: (() => string) | undefined;
  /** The adapter's body reader; undefined: Node's, for routes that price by body. */
  jsonBody?: (() => Promise<unknown>) | undefined;
  reportsOutcome?: boolean;
}

/**
 * A Node request as the engine sees it, with parts supplied by the adapter, its client address
 * read on first use (see {@link AdapterRequest}). The body reader is only made for routes that
 * price by body (or for every route when `route` is undefined).
 */
export function toPaywallRequest(
  req: IncomingMessage,
  route: Route | undefined,
  options: AdapterOptions,
  parts: NodeRequestParts = {},
): AdapterRequest {
  const raw = req.rawHeaders;
  const headers = new NodeHeaderReader(raw);
  // Every Authorization line, kept apart: the engine must see them all to refuse conflicting
  // credentials.
  let authorization: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (isHeader(raw[i]!, 'authorization')) {
      authorization ??= [];
      authorization.push(raw[i + 1]!);
    }
  }
  let jsonBody = parts.jsonBody;
  if (jsonBody === undefined && (route === undefined || route.readsBody)) {
    let body: Promise<unknown> | undefined;
    jsonBody = () => {
      body ??= readJsonBody(req, options.bodyLimit ?? DEFAULT_BODY_LIMIT);
      return body;
    };
  }
  const clientIp =
    parts.clientIp ??
    (() =>
      resolveClientIp(
        req.socket.remoteAddress,
        options.trustProxy ? headers.get('x-forwarded-for') : null,
        options.trustProxy,
      ));
  return new AdapterRequest(
    req.method ?? 'GET',
    parts.url ?? req.url ?? '/',
    headers,
    authorization,
    jsonBody,
    parts.reportsOutcome ?? false,
    clientIp,
  );
}
