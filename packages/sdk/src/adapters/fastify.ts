/**
 * `@tollway/sdk/fastify`: the paywall as a Fastify 5 `preHandler` hook, and a plugin that declares
 * `request.payment`. The hook translates the request (as the `node:http` adapter does), asks the
 * engine, and either replies or lets the route handler run with `request.payment` set.
 */
import type {
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  preHandlerHookHandler,
} from 'fastify';
import { isPromiseLike } from '../internal/promise.js';
import type { Route } from '../server/route.js';
import type { PaymentContext, PaywallDecision, PaywallRequest } from '../server/types.js';
import {
  type AdapterOptions,
  assertAdapterOptions,
  decide,
  type PaywallHandler,
} from './common.js';
import { toPaywallRequest } from './node-request.js';
import { reportOutcome } from './node-response.js';

export type { AdapterOptions, PaywallHandler } from './common.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** How the request was paid for; set by {@link requirePayment}. */
    payment?: PaymentContext;
  }
}

/**
 * Options of {@link requirePayment}. The client address is `request.ip`, so Fastify's own
 * `trustProxy` server option decides whether `X-Forwarded-For` counts; bodies are Fastify's
 * parsed `request.body` (its `bodyLimit` applies).
 */
export type FastifyPaywallOptions = Pick<AdapterOptions, 'onError'>;

async function declarePayment(fastify: Parameters<FastifyPluginAsync>[0]): Promise<void> {
  if (!fastify.hasRequestDecorator('payment')) fastify.decorateRequest('payment', undefined);
}

/**
 * Declares `request.payment` on every request of the app (register it once, before the routes).
 * It is not encapsulated: it applies to the instance it is registered on.
 *
 * @example
 * ```ts
 * await app.register(paywallPlugin);
 * ```
 */
export const paywallPlugin: FastifyPluginAsync = Object.assign(declarePayment, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@tollway/sdk/fastify',
});

/** Adds headers, keeping every value of a repeated name (Fastify's `header()` replaces). */
function addHeaders(reply: FastifyReply, headers: ReadonlyArray<[string, string]>): void {
  for (const [name, value] of headers) {
    const existing = reply.getHeader(name);
    if (existing === undefined) reply.header(name, value);
    else if (Array.isArray(existing)) reply.header(name, [...existing, value]);
    else reply.header(name, [String(existing), value]);
  }
}

/**
 * A `preHandler` hook that lets a request through only when it is paid for (or free): otherwise it
 * replies with the engine's response (a 402 offering ways to pay, or why a credential was
 * refused). Paid requests reach the handler with `request.payment` and the engine's headers (such
 * as `Payment-Receipt`) on the reply. A payment that settles after the handler (x402) does so
 * when the reply's status is set, before its body leaves: the settlement's headers join it, or a
 * failed settlement replaces it with a 402 (a handler replying 4xx or 5xx is not charged). Should the paywall fail (a bug),
 * replies 500 with a problem body and logs through `request.log`.
 *
 * @example
 * ```ts
 * await app.register(paywallPlugin);
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
 * app.get('/forecast', { preHandler: requirePayment(paywall, forecast) }, async (request) => ({
 *   paidWith: request.payment?.protocol,
 * }));
 * ```
 */
export function requirePayment(
  paywall: PaywallHandler,
  route: Route,
  options: FastifyPaywallOptions = {},
): preHandlerHookHandler {
  assertAdapterOptions(options);
  const translate = (request: FastifyRequest): PaywallRequest =>
    toPaywallRequest(
      request.raw,
      route,
      {},
      {
        reportsOutcome: true,
        url: request.url,
        clientIp: () => request.ip,
        jsonBody: route.readsBody ? () => Promise.resolve(request.body) : undefined,
      },
    );
  // Callback style, so a request the engine decides at once goes on without a promise.
  const report = options.onError ?? logError;
  return function paywallPreHandler(request, reply, done) {
    const decision = decide(paywall, route, translate, request, report);
    if (isPromiseLike(decision)) {
      Promise.resolve(decision)
        .then((decided) => answer(decided, request, reply, done, report))
        .catch((error: unknown) => done(error instanceof Error ? error : new Error(String(error))));
    } else {
      answer(decision, request, reply, done, report);
    }
  };
}

function logError(error: unknown, request: FastifyRequest): void {
  request.log.error({ err: error }, 'the paywall failed');
}

function answer(
  decision: PaywallDecision,
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
  report: (error: unknown, request: FastifyRequest) => void,
): void {
  if (decision.kind === 'respond') {
    const { status, headers, body } = decision.response;
    addHeaders(reply, headers);
    // A Buffer is sent as it is; Fastify would append a charset to a string's content type. A
    // hook that replies does not call `done`.
    reply.code(status).send(Buffer.from(body));
    return;
  }
  addHeaders(reply, decision.headers);
  request.payment = decision.payment;
  if (decision.charge !== undefined) {
    // Fastify writes the handler's reply (after its onSend hooks) to the Node response: its
    // status decides the charge there.
    reportOutcome(reply.raw, decision.charge, (error) => report(error, request));
  }
  done();
}
