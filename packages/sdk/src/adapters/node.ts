/**
 * `@tollway/sdk/node`: the paywall for `node:http` request handlers. It translates an
 * `IncomingMessage` into a {@link PaywallRequest}, asks the engine, and either writes its answer or
 * runs the handler with `req.payment` set. The Express and Fastify adapters build on the same
 * translation.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../server/route.js';
import type {
  HeaderReader,
  PaymentContext,
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

/**
 * A zero-copy header view over Node's parsed headers (names already lower-case; repeated values
 * joined with `, ` as a Web `Headers` would).
 */
function nodeHeaderReader(parsed: IncomingHttpHeaders): HeaderReader {
  const get = (name: string): string | null => {
    const value = parsed[name.toLowerCase()];
    if (value === undefined) return null;
    return typeof value === 'string' ? value : value.join(', ');
  };
  return { get, has: (name) => get(name) !== null };
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
  const headers = nodeHeaderReader(req.headers);
  // Node keeps only the first `Authorization` line in `req.headers`; the engine must see them all
  // to refuse conflicting credentials.
  const authorization: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.length === 13 && name.toLowerCase() === 'authorization')
      authorization.push(raw[i + 1] ?? '');
  }
  let body: Promise<unknown> | undefined;
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers,
    ...(authorization.length > 0 ? { authorization } : {}),
    clientIp: resolveClientIp(
      req.socket.remoteAddress,
      options.trustProxy ? headers.get('x-forwarded-for') : null,
      options.trustProxy,
    ),
    jsonBody: () => {
      body ??= readJsonBody(req, options.bodyLimit ?? DEFAULT_BODY_LIMIT);
      return body;
    },
  };
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
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  assertAdapterOptions(options);
  return async (req, res) => {
    const decision = await decide(
      paywall,
      route,
      () => createPaywallRequest(req, options),
      options.onError,
    );
    if (decision.kind === 'respond') {
      writePaywallResponse(res, decision.response);
      return;
    }
    for (const [name, value] of decision.headers) res.appendHeader(name, value);
    await handler(Object.assign(req, { payment: decision.payment }), res);
  };
}
