/**
 * `@tollway/sdk/node`: the paywall for `node:http` request handlers. It translates an
 * `IncomingMessage` into a {@link PaywallRequest}, asks the engine, and either writes its answer or
 * runs the handler with `req.payment` set, reporting the outcome of paid requests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPromiseLike } from '../internal/promise.js';
import type { Route } from '../server/route.js';
import type { PaymentContext, PaywallDecision, PaywallRequest } from '../server/types.js';
import {
  type AdapterOptions,
  assertAdapterOptions,
  decide,
  type PaywallHandler,
} from './common.js';
import { type NodeRequestParts, readJsonBody, toPaywallRequest } from './node-request.js';
import { reportOutcome, writePaywallResponse } from './node-response.js';

export type { AdapterOptions, PaywallHandler } from './common.js';
export { readJsonBody, writePaywallResponse };

/** A request that passed the paywall: `payment` says how it was paid for. */
export type PaidRequest = IncomingMessage & { payment: PaymentContext };

/** A `node:http` handler behind the paywall. */
export type PaidHandler = (req: PaidRequest, res: ServerResponse) => void | Promise<void>;

/** Options of {@link createPaywallRequest}. */
export interface PaywallRequestOptions extends AdapterOptions {
  /**
   * Set when the caller reports the outcome through the pass decision's `charge` (commit with
   * the status, or release when there is no answer); see `PaywallRequest.reportsOutcome`.
   */
  reportsOutcome?: boolean;
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
  options: PaywallRequestOptions = {},
): PaywallRequest {
  const parts = options.reportsOutcome === true ? { reportsOutcome: true } : {};
  const request = toPaywallRequest(req, undefined, options, parts);
  // A plain object with the address read: callers may copy it (`{ ...request, offers }`).
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    authorization: request.authorization,
    clientIp: request.clientIp,
    jsonBody: request.jsonBody,
    offers: undefined,
    payment: undefined,
    reportsOutcome: request.reportsOutcome,
  };
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
  const parts: NodeRequestParts = { reportsOutcome: true };
  const report = options.onError ?? console.error;
  const translate = (req: IncomingMessage) => toPaywallRequest(req, route, options, parts);
  return (req, res) => {
    const decision = decide(paywall, route, translate, req, options.onError);
    // Answered without a promise when the engine decided without one (the usual paid request).
    if (isPromiseLike(decision)) {
      return Promise.resolve(decision).then((decided) =>
        answer(decided, req, res, handler, report),
      );
    }
    return answer(decision, req, res, handler, report);
  };
}

function answer(
  decision: PaywallDecision,
  req: IncomingMessage,
  res: ServerResponse,
  handler: PaidHandler,
  report: (error: unknown) => void,
): void | Promise<void> {
  if (decision.kind === 'respond') {
    writePaywallResponse(res, decision.response);
    return;
  }
  for (const [name, value] of decision.headers) res.appendHeader(name, value);
  const paid = req as PaidRequest;
  paid.payment = decision.payment;
  if (decision.charge !== undefined) reportOutcome(res, decision.charge, report);
  return handler(paid, res);
}
