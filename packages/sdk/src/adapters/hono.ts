/**
 * `@tollway/sdk/hono`: the paywall as Hono 4 middleware (`requirePayment`) or wrapped around one
 * handler (`withPaywall`), on any runtime Hono runs on. It translates the request, asks the engine,
 * and either answers or runs the handler with `c.get('payment')` set.
 */
import type { Context, Handler, MiddlewareHandler, Next } from 'hono';
import type { GetConnInfo } from 'hono/conninfo';
import { isPromiseLike } from '../internal/promise.js';
import type { Route } from '../server/route.js';
import { formatReceiptComment, isEventStream, streamTail } from '../server/stream-receipt.js';
import type {
  ChargeMeter,
  PaymentContext,
  PaywallCharge,
  PaywallDecision,
  PaywallResponse,
} from '../server/types.js';
import {
  type AdapterOptions,
  AdapterRequest,
  assertAdapterOptions,
  assertBodySize,
  DEFAULT_BODY_LIMIT,
  decide,
  type PaywallHandler,
  parseJsonBody,
  resolveClientIp,
} from './common.js';
import { authorizationLines, RawHeaderReader } from './raw-headers.js';

export type { AdapterOptions, PaywallHandler } from './common.js';

/** Options of {@link requirePayment}. */
export interface HonoPaywallOptions extends AdapterOptions {
  /**
   * Reads the client address from the runtime, as Hono's own IP middleware does: `getConnInfo`
   * from `@hono/node-server/conninfo`, `hono/bun`, `hono/deno`, `hono/cloudflare-workers`, …
   */
  getConnInfo: GetConnInfo;
}

/** The variables the middleware sets: type your app `new Hono<PaywallEnv>()` to read them. */
export interface PaywallEnv {
  Variables: { payment: PaymentContext };
}

/** Reads the body (at most `limit` bytes), then gives the request a copy the app can read again. */
async function readJson(c: Context, limit: number): Promise<unknown> {
  assertBodySize(Number(c.req.header('content-length') ?? 0), limit);
  const raw = c.req.raw;
  if (raw.body === null) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = raw.body.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.length;
    if (size > limit) await reader.cancel();
    assertBodySize(size, limit);
    chunks.push(read.value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  c.req.raw = new Request(raw, { body });
  return parseJsonBody(body);
}

/**
 * `response` with `headers` added, in place where it can be, which keeps the runtime's fast path
 * for ordinary responses; a response with immutable headers (from `fetch`, `Response.redirect`)
 * is copied first, as Hono's `c.header()` does.
 */
function withHeaders(response: Response, headers: ReadonlyArray<[string, string]>): Response {
  try {
    for (const [name, value] of headers) response.headers.append(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    for (const [name, value] of headers) copy.headers.append(name, value);
    return copy;
  }
}

/** Makes `response` the context's answer, unless it already is. */
function replaceResponse(c: Context, response: Response): void {
  if (response === c.res) return;
  // Cleared first: Hono's setter would otherwise copy the old answer's headers onto the new one.
  c.res = undefined;
  c.res = response;
}

/** What `@hono/node-server` binds to `c.env`: the Node request as it arrived. */
interface NodeBindings {
  incoming?: { rawHeaders?: unknown };
}

/**
 * The request as the engine sees it, its client address read on first use (see
 * {@link AdapterRequest}); a body reader only for a route that prices by body. On
 * `@hono/node-server` the headers are read from the Node request's raw list (`c.env.incoming`), as
 * the node, Express and Fastify adapters read them: the Web `Headers` node-server offers reads
 * through `req.headers`, which Node builds on first access, a build the paid request alone paid for
 * (a plain handler reads no header; architecture note, eighth round). So, as with those adapters,
 * the paywall sees the headers as they arrived, not as a middleware before it may have rewritten
 * them.
 */
function toPaywallRequest(c: Context, route: Route, options: HonoPaywallOptions): AdapterRequest {
  let jsonBody: (() => Promise<unknown>) | undefined;
  if (route.readsBody) {
    let body: Promise<unknown> | undefined;
    jsonBody = () => {
      body ??= readJson(c, options.bodyLimit ?? DEFAULT_BODY_LIMIT);
      return body;
    };
  }
  const raw = (c.env as NodeBindings | undefined)?.incoming?.rawHeaders;
  const fromNode = Array.isArray(raw);
  return new AdapterRequest(
    c.req.method,
    requestTarget(c.req.url),
    fromNode ? new RawHeaderReader(raw) : c.req.raw.headers,
    fromNode ? authorizationLines(raw) : undefined,
    jsonBody,
    true,
    () =>
      resolveClientIp(
        options.getConnInfo(c).remote.address,
        options.trustProxy ? c.req.header('x-forwarded-for') : undefined,
        options.trustProxy,
      ),
  );
}

/**
 * The path and query of a request's URL, which runtimes give already parsed and normalised
 * (`Request.url`): cut from the text rather than parsed again with `new URL`, which cost a paid
 * request about a tenth of Hono's own time.
 */
function requestTarget(url: string): string {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start < 0) return '/';
  const hash = url.indexOf('#', start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

/**
 * Hono middleware that lets a request through only when it is paid for (or free): otherwise it
 * answers with the engine's response (a 402 offering ways to pay, or why a credential was
 * refused). Paid requests reach the next handler with `c.get('payment')`, and the engine's headers
 * (such as `Payment-Receipt`) are added to its response. A payment that settles after the handler
 * (x402) does so once the handler made its Response, before a streamed body is read: the
 * settlement's headers join its response, or a failed settlement replaces it with a 402 (a
 * handler answering 4xx or 5xx is not charged). Routes
 * priced by body read it (up to `bodyLimit`) and leave it readable (`c.req.json()`). A Web
 * `Response` joins repeated headers, so a 402's challenges arrive in one comma-separated
 * `WWW-Authenticate` line (valid HTTP, which L402 and MPP clients parse).
 *
 * @example
 * ```ts
 * import { getConnInfo } from '@hono/node-server/conninfo';
 * const app = new Hono<PaywallEnv>();
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
 * app.get('/forecast', requirePayment(paywall, forecast, { getConnInfo }), (c) =>
 *   c.json({ paidWith: c.get('payment').protocol }),
 * );
 * ```
 */
export function requirePayment(
  paywall: PaywallHandler,
  route: Route,
  options: HonoPaywallOptions,
): MiddlewareHandler<PaywallEnv> {
  assertAdapterOptions(options);
  const translate = (c: Context<PaywallEnv>) => toPaywallRequest(c, route, options);
  // Not an async function: a decision the engine had at once goes on without a promise hop.
  return (c, next) => {
    const decision = decide(paywall, route, translate, c, options.onError);
    if (isPromiseLike(decision)) {
      return Promise.resolve(decision).then((decided) => proceed(c, next, decided, options));
    }
    return proceed(c, next, decision, options);
  };
}

/** Answers for the engine, or runs the handler and reports its outcome. */
function proceed(
  c: Context<PaywallEnv>,
  next: Next,
  decision: PaywallDecision,
  options: HonoPaywallOptions,
  // biome-ignore lint/suspicious/noConfusingVoidType: Hono's next() resolves to void, and its promise is returned as it is
): Promise<Response | undefined | void> {
  if (decision.kind === 'respond') return Promise.resolve(toResponse(decision.response));
  c.set('payment', decision.payment);
  const { charge, headers } = decision;
  if (charge !== undefined) return settleAfter(c, next, headers, charge, options);
  // Nothing to add (a paid answer to an agent outside a browser): the handler's own promise,
  // and its response left as the handler made it.
  if (headers.length === 0) return next();
  return next().then(() => {
    replaceResponse(c, withHeaders(c.res, headers));
    return undefined;
  });
}

/**
 * The paywall and one handler as a single Hono handler: what {@link requirePayment} does, for a
 * route whose handler comes right after it. Hono runs a route with one handler as a plain call,
 * where a middleware and a handler go through its `compose` (an async function per step), so this
 * form answers a paid request without a promise when the handler makes its Response at once. The
 * handler reads `c.get('payment')`; the engine's headers join its Response, and a payment that
 * settles after the handler (x402) or meters its answer does so as with `requirePayment`.
 *
 * @example
 * ```ts
 * import { getConnInfo } from '@hono/node-server/conninfo';
 * const app = new Hono<PaywallEnv>();
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
 * const answer = (c: Context<PaywallEnv>) => c.json({ paidWith: c.get('payment').protocol });
 * app.get('/forecast', withPaywall(paywall, forecast, answer, { getConnInfo }));
 * ```
 */
export function withPaywall(
  paywall: PaywallHandler,
  route: Route,
  handler: Handler<PaywallEnv>,
  options: HonoPaywallOptions,
): Handler<PaywallEnv> {
  assertAdapterOptions(options);
  const translate = (c: Context<PaywallEnv>) => toPaywallRequest(c, route, options);
  return (c, next) => {
    const decision = decide(paywall, route, translate, c, options.onError);
    if (isPromiseLike(decision)) {
      return Promise.resolve(decision).then((decided) =>
        answer(c, next, handler, decided, options),
      );
    }
    return answer(c, next, handler, decision, options);
  };
}

/** The engine's answer, or the handler's Response with the engine's headers. */
function answer(
  c: Context<PaywallEnv>,
  next: Next,
  handler: Handler<PaywallEnv>,
  decision: PaywallDecision,
  options: HonoPaywallOptions,
): Response | Promise<Response> {
  if (decision.kind === 'respond') return toResponse(decision.response);
  c.set('payment', decision.payment);
  const { charge, headers } = decision;
  if (charge !== undefined) return settleHandler(c, next, handler, headers, charge, options);
  // Hono's Handler type admits its TypedResponse, which is a Response at run time.
  const response = handler(c, next) as Response | Promise<Response>;
  if (headers.length === 0) return response;
  return isPromiseLike(response)
    ? Promise.resolve(response).then((made) => withHeaders(made, headers))
    : withHeaders(response, headers);
}

/** Runs the handler, then settles as {@link settle} does (or releases the charge when it failed). */
async function settleHandler(
  c: Context<PaywallEnv>,
  next: Next,
  handler: Handler<PaywallEnv>,
  headers: ReadonlyArray<[string, string]>,
  charge: PaywallCharge,
  options: HonoPaywallOptions,
): Promise<Response> {
  let response: Response | undefined;
  try {
    response = (await handler(c, next)) as Response | undefined;
    if (response === undefined) throw new TypeError('the paid handler returned no Response');
  } catch (error) {
    charge.release();
    throw error;
  }
  return settle(response, headers, charge, options);
}

function toResponse({ status, headers, body }: PaywallResponse): Response {
  return new Response(body === '' ? null : body, { status, headers });
}

/** Runs the handler, then commits the charge with its status (or releases it when it threw). */
async function settleAfter(
  c: Context<PaywallEnv>,
  next: Next,
  headers: ReadonlyArray<[string, string]>,
  charge: PaywallCharge,
  options: HonoPaywallOptions,
): Promise<undefined> {
  try {
    await next();
  } catch (error) {
    charge.release();
    throw error;
  }
  replaceResponse(c, await settle(c.res, headers, charge, options));
  return undefined;
}

/**
 * Commits the charge with the handler's `response` (made, a streamed body not read yet): the
 * response with the engine's headers, metered when the charge reads the answer, or a 402 when the
 * settlement failed.
 */
async function settle(
  response: Response,
  headers: ReadonlyArray<[string, string]>,
  charge: PaywallCharge,
  options: HonoPaywallOptions,
): Promise<Response> {
  const final = await charge.commit(response.status, response.headers);
  if (final.kind === 'respond') return toResponse(final.response);
  const answered = withHeaders(response, [...headers, ...final.headers]);
  return charge.meter === undefined
    ? answered
    : meteredResponse(answered, charge.meter, options.onError);
}

/**
 * `response` with its body fed to `meter` as it is read, and the meter ended when the body ends
 * (complete; an event stream then ends with the receipt as comment lines, stream-receipt.ts) or
 * is cancelled (the client went away). A chunk the meter makes wait (a session that needs a
 * top-up) is read on once it may go; one the meter refuses ends the body.
 */
function meteredResponse(
  response: Response,
  meter: ChargeMeter,
  onError: ((error: unknown) => void) | undefined,
): Response {
  const failed = onError ?? console.error;
  const end = (complete: boolean) => {
    meter.end(complete).catch(failed);
  };
  if (response.body === null) {
    end(true);
    return response;
  }
  const eventStream = isEventStream(response.headers.get('content-type'));
  /** The last bytes sent, to tell whether the stream ended an event. */
  let tail: Uint8Array = new Uint8Array(0);
  const enqueue = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array) => {
    if (eventStream) tail = streamTail(tail, bytes);
    controller.enqueue(bytes);
  };
  const close = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    if (!eventStream) {
      end(true);
      controller.close();
      return;
    }
    const receipt = await meter.end(true).catch((error: unknown) => {
      failed(error);
      return [];
    });
    const comment = formatReceiptComment(receipt, tail);
    if (comment !== undefined) controller.enqueue(new TextEncoder().encode(comment));
    controller.close();
  };
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          await close(controller);
          return;
        }
        // A session's answer may wait for a top-up, or end without this chunk.
        const wait = meter.write(value, (bytes) => enqueue(controller, bytes));
        if (wait !== undefined && !(await wait)) {
          await close(controller);
          await reader.cancel();
          return;
        }
        enqueue(controller, value);
      } catch (error) {
        end(false);
        controller.error(error);
      }
    },
    cancel(reason) {
      end(false);
      return reader.cancel(reason);
    },
  });
  return new Response(body, response);
}
