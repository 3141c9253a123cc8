/**
 * `@tollway/sdk/node`: the paywall for `node:http` request handlers. It translates an
 * `IncomingMessage` into a {@link PaywallRequest}, asks the engine, and either writes its answer or
 * runs the handler with `req.payment` set. The Express and Fastify adapters build on the same
 * translation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPromiseLike } from '../internal/promise.js';
import type { Route } from '../server/route.js';
import type {
  HeaderReader,
  PaymentContext,
  PaywallDecision,
  PaywallFinal,
  PaywallRequest,
  PaywallResponse,
} from '../server/types.js';
import {
  type AdapterOptions,
  assertAdapterOptions,
  assertBodySize,
  DEFAULT_BODY_LIMIT,
  decide,
  type PaywallHandler,
  parseJsonBody,
  resolveClientIp,
} from './common.js';

export type { AdapterOptions, PaywallHandler } from './common.js';

/** A request that passed the paywall: `payment` says how it was paid for. */
export type PaidRequest = IncomingMessage & { payment: PaymentContext };

/** A `node:http` handler behind the paywall. */
export type PaidHandler = (req: PaidRequest, res: ServerResponse) => void | Promise<void>;

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
 * framework reports them, a JSON body reader, and whether it finalizes. Internal to the adapters.
 *
 * @internal
 */
export interface NodeRequestParts {
  url?: string;
  clientIp?: string;
  /** The adapter's body reader; undefined: Node's, for routes that price by body. */
  jsonBody?: (() => Promise<unknown>) | undefined;
  finalizes?: boolean;
}

/**
 * {@link createPaywallRequest} with parts supplied by the adapter. The body reader is only made
 * for routes that price by body. Internal to the adapters.
 *
 * @internal
 */
export function toPaywallRequest(
  req: IncomingMessage,
  route: Route | undefined,
  options: AdapterOptions,
  parts: NodeRequestParts = {},
): PaywallRequest {
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
  // Every field is set, absent ones to undefined: one object shape for every request keeps the
  // engine's property accesses monomorphic.
  const request: PaywallRequest = {
    method: req.method ?? 'GET',
    url: parts.url ?? req.url ?? '/',
    headers,
    authorization,
    clientIp:
      parts.clientIp ??
      resolveClientIp(
        req.socket.remoteAddress,
        options.trustProxy ? headers.get('x-forwarded-for') : null,
        options.trustProxy,
      ),
    jsonBody,
    offers: undefined,
    finalizes: parts.finalizes ?? false,
  };
  return request;
}

/**
 * Translates a Node request: every header (including repeated `Authorization` lines, which
 * `req.headers` drops), the client address (see `trustProxy`), and a lazy JSON body.
 *
 * @example
 * ```ts
 * const decision = await paywall.handle(createPaywallRequest(req, { trustProxy: 1 }), route);
 * ```
 */
export function createPaywallRequest(
  req: IncomingMessage,
  options: AdapterOptions = {},
): PaywallRequest {
  return toPaywallRequest(req, undefined, options);
}

/**
 * Writes a paywall answer (a 402, 401, 403, 429, 400, 503 or 500) as it is.
 *
 * @example
 * ```ts
 * if (decision.kind === 'respond') return writePaywallResponse(res, decision.response);
 * ```
 */
export function writePaywallResponse(res: ServerResponse, response: PaywallResponse): void {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) res.appendHeader(name, value);
  res.end(response.body);
}

/** The callback among the trailing arguments of `write` / `end`, if any. */
function callbackOf(...args: unknown[]): (() => void) | undefined {
  const found = args.find((arg) => typeof arg === 'function');
  return found as (() => void) | undefined;
}

/**
 * Runs `handler` with its answer held back (status, headers and body buffered), then calls
 * `finalize` with the status (an x402 payment settles there) and sends the answer with the headers
 * it gives, or the paywall's answer instead when settlement failed. `handler` may return before the
 * answer is written (Express's `next()`, a Fastify hook): this waits for `res.end()`. Internal to
 * the adapters (Express and Fastify answer through a Node `ServerResponse` too).
 *
 * @internal
 */
export async function answerThenFinalize(
  res: ServerResponse,
  handler: () => void | Promise<void>,
  finalize: (status: number) => Promise<PaywallFinal>,
): Promise<void> {
  const chunks: Buffer[] = [];
  const { write, end, writeHead } = res;
  let finished: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const hold = (chunk: unknown, encoding: unknown): void => {
    if (typeof chunk === 'string') {
      const charset = typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8';
      chunks.push(Buffer.from(chunk, charset));
    } else if (chunk instanceof Uint8Array) {
      chunks.push(Buffer.from(chunk));
    }
  };
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    res.statusCode = status;
    const headers = rest.find((arg) => typeof arg === 'object' && arg !== null);
    const pairs = Array.isArray(headers) ? headers : Object.entries(headers ?? {});
    for (const [name, value] of pairs as Array<[string, string | number | string[]]>) {
      res.setHeader(name, value);
    }
    return res;
  }) as typeof res.writeHead;
  res.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
    hold(chunk, encoding);
    callbackOf(encoding, callback)?.();
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown, encoding?: unknown, callback?: unknown) => {
    hold(chunk, encoding);
    callbackOf(chunk, encoding, callback)?.();
    finished();
    return res;
  }) as typeof res.end;
  try {
    await handler();
    await ended;
  } finally {
    res.write = write;
    res.end = end;
    res.writeHead = writeHead;
  }
  const final = await finalize(res.statusCode);
  if (final.kind === 'respond') {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    writePaywallResponse(res, final.response);
    return;
  }
  for (const [name, value] of final.headers) res.appendHeader(name, value);
  res.end(Buffer.concat(chunks));
}

/**
 * Puts a `node:http` handler behind the paywall: unpaid requests get the engine's answer (a 402
 * with the ways to pay, or why a credential was refused); paid and free ones reach `handler` with
 * `req.payment`, and the engine's headers (such as `Payment-Receipt`) on the response. Errors the
 * handler throws are its own, as without the paywall.
 *
 * @example
 * ```ts
 * const paywall = createPaywall({ lightning, secret });
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
 * createServer(withPaywall(paywall, forecast, (req, res) => {
 *   res.end(JSON.stringify({ paidWith: req.payment.protocol }));
 * })).listen(3000);
 * ```
 */
export function withPaywall(
  paywall: PaywallHandler,
  route: Route,
  handler: PaidHandler,
  options: AdapterOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void | Promise<void> {
  assertAdapterOptions(options);
  const parts: NodeRequestParts = { finalizes: true };
  const translate = (req: IncomingMessage) => toPaywallRequest(req, route, options, parts);
  return (req, res) => {
    const decision = decide(paywall, route, translate, req, options.onError);
    // Answered without a promise when the engine decided without one (the usual paid request).
    if (isPromiseLike(decision)) {
      return Promise.resolve(decision).then((decided) => answer(decided, req, res, handler));
    }
    return answer(decision, req, res, handler);
  };
}

function answer(
  decision: PaywallDecision,
  req: IncomingMessage,
  res: ServerResponse,
  handler: PaidHandler,
): void | Promise<void> {
  if (decision.kind === 'respond') {
    writePaywallResponse(res, decision.response);
    return;
  }
  for (const [name, value] of decision.headers) res.appendHeader(name, value);
  const paid = req as PaidRequest;
  paid.payment = decision.payment;
  if (decision.finalize === undefined) return handler(paid, res);
  return answerThenFinalize(res, () => handler(paid, res), decision.finalize);
}
