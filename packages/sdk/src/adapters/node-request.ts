/**
 * How the Node-based adapters (node, Express, Fastify) and the gateway see a Node request: its
 * headers read from the raw list (`raw-headers.ts`), every `Authorization` line, the client
 * address, and a lazy JSON body that stays readable for the app. Internal to the adapters.
 */
import type { IncomingMessage } from 'node:http';
import type { Route } from '../server/route.js';
import {
  type AdapterOptions,
  AdapterRequest,
  assertBodySize,
  DEFAULT_BODY_LIMIT,
  parseJsonBody,
  resolveClientIp,
} from './common.js';
import { authorizationLines, RawHeaderReader } from './raw-headers.js';

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
  const headers = new RawHeaderReader(req.rawHeaders);
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
    authorizationLines(req.rawHeaders),
    jsonBody,
    parts.reportsOutcome ?? false,
    clientIp,
  );
}
