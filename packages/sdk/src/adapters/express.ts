/**
 * `@tollway/sdk/express`: the paywall as Express 5 middleware. It translates the request (as the
 * `node:http` adapter does), asks the engine, and either answers or calls `next()` with
 * `req.payment` set.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { isPromiseLike } from '../internal/promise.js';
import type { Route } from '../server/route.js';
import type { PaymentContext, PaywallDecision } from '../server/types.js';
import {
  type AdapterOptions,
  assertAdapterOptions,
  DEFAULT_BODY_LIMIT,
  decide,
  type PaywallHandler,
} from './common.js';
import { readJsonBody, toPaywallRequest } from './node-request.js';
import { reportOutcome, writePaywallResponse } from './node-response.js';

export type { AdapterOptions, PaywallHandler } from './common.js';

declare global {
  namespace Express {
    interface Request {
      /** How the request was paid for; set by the paywall middleware ({@link requirePayment}). */
      payment?: PaymentContext;
    }
  }
}

/**
 * Options of {@link requirePayment}. The client address is `req.ip`, so Express's own
 * `app.set('trust proxy', …)` decides whether `X-Forwarded-For` counts.
 */
export type ExpressPaywallOptions = Omit<AdapterOptions, 'trustProxy'>;

/**
 * Express middleware that lets a request through only when it is paid for (or free): otherwise it
 * answers with the engine's response (a 402 offering ways to pay, or why a credential was
 * refused). Paid requests reach the next handler with `req.payment` and the engine's headers
 * (such as `Payment-Receipt`) on the response. A payment that settles after the handler (x402) does
 * so when the answer's status is set, before its body leaves (a streamed answer streams): the
 * settlement's headers join it, or a failed settlement replaces it with a 402 (a handler answering
 * 4xx or 5xx is not charged). Routes priced by body reuse
 * `req.body` when a body parser ran first; otherwise the body is read (up to `bodyLimit`) and left
 * readable.
 *
 * @example
 * ```ts
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
 * app.get('/forecast', requirePayment(paywall, forecast), (req, res) => {
 *   res.json({ paidWith: req.payment?.protocol });
 * });
 * ```
 */
export function requirePayment(
  paywall: PaywallHandler,
  route: Route,
  options: ExpressPaywallOptions = {},
): RequestHandler {
  assertAdapterOptions(options);
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const translate = (req: Request) =>
    toPaywallRequest(req, route, options, {
      reportsOutcome: true,
      url: req.originalUrl,
      clientIp: () => req.ip ?? '',
      jsonBody: route.readsBody
        ? () => (req.body === undefined ? readJsonBody(req, bodyLimit) : Promise.resolve(req.body))
        : undefined,
    });
  return (req, res, next) => {
    const decision = decide(paywall, route, translate, req, options.onError);
    if (isPromiseLike(decision)) {
      return Promise.resolve(decision).then((decided) => answer(decided, req, res, next, options));
    }
    return answer(decision, req, res, next, options);
  };
}

function answer(
  decision: PaywallDecision,
  req: Request,
  res: Response,
  next: NextFunction,
  options: ExpressPaywallOptions,
): void {
  if (decision.kind === 'respond') {
    writePaywallResponse(res, decision.response);
    return;
  }
  for (const [name, value] of decision.headers) res.append(name, value);
  req.payment = decision.payment;
  // The rest of the chain answers through `res`: its status decides the charge.
  if (decision.charge !== undefined) {
    reportOutcome(res, decision.charge, options.onError ?? console.error);
  }
  next();
}
