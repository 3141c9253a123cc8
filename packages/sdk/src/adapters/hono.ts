/**
 * `@tollway/sdk/hono`: the paywall as Hono 4 middleware, on any runtime Hono runs on. It
 * translates the request, asks the engine, and either answers or runs the next handler with
 * `c.get('payment')` set.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
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
 * Adds headers to the handler's response in place, which keeps the runtime's fast path for
 * ordinary responses; a response with immutable headers (from `fetch`, `Response.redirect`) is
 * copied first, as Hono's `c.header()` does.
 */
function addHeaders(c: Context, headers: ReadonlyArray<[string, string]>): void {
  try {
    for (const [name, value] of headers) c.res.headers.append(name, value);
  } catch {
    for (const [name, value] of headers) c.header(name, value, { append: true });
  }
}

/**
 * The request as the engine sees it, its client address read on first use (see
 * {@link AdapterRequest}); a body reader only for a route that prices by body.
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
  return new AdapterRequest(
    c.req.method,
    requestTarget(c.req.url),
    c.req.raw.headers,
    undefined,
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
    addHeaders(c, headers);
    return undefined;
  });
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
  // The handler's Response is made; a streamed body has not been read yet.
  const final = await charge.commit(c.res.status, c.res.headers);
  if (final.kind === 'respond') {
    // Cleared first: Hono's setter would otherwise copy the handler's headers onto the 402.
    c.res = undefined;
    c.res = toResponse(final.response);
    return undefined;
  }
  addHeaders(c, [...headers, ...final.headers]);
  if (charge.meter !== undefined) {
    const metered = meteredResponse(c.res, charge.meter, options.onError);
    // Cleared first, as above: the metered Response already carries every header.
    c.res = undefined;
    c.res = metered;
  }
  return undefined;
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
