/**
 * The decision for one request: a CORS preflight, a free or allow-listed path, a credential (seen
 * before, or read by the offer kinds), a freebie, or a 402 with fresh offers.
 */
import { isPromiseLike } from '../internal/promise.js';
import { errorType } from '../internal/tracing.js';
import { passFree, respond } from './answers.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import { credentialText } from './credential-cache.js';
import { createExchange, type Exchange } from './exchange.js';
import { type CredentialSource, type PresentedCredential, readCredential } from './offers.js';
import { paid, refusedCredential } from './paid.js';
import { pathWithin } from './path.js';
import type { Route } from './route.js';
import type { PaywallDecision, PaywallRequest } from './types.js';

/**
 * Decides `request` for `route` on a started paywall (see the module comment), in its spans when
 * tracing is on.
 */
export function decide(
  context: PaywallContext,
  request: PaywallRequest,
  route: Route,
): PaywallDecision | Promise<PaywallDecision> {
  const exchange = createExchange(context, request, route, context.tracing);
  const { trace } = exchange;
  if (trace === undefined) return decideExchange(context, exchange);
  let decision: PaywallDecision | Promise<PaywallDecision>;
  try {
    decision = decideExchange(context, exchange);
  } catch (error) {
    trace.failed(errorType(error));
    throw error;
  }
  if (!isPromiseLike(decision)) return trace.decided(decision);
  return Promise.resolve(decision).then(
    (decided) => trace.decided(decided),
    (error: unknown) => {
      trace.failed(errorType(error));
      throw error;
    },
  );
}

function decideExchange(
  context: PaywallContext,
  exchange: Exchange,
): PaywallDecision | Promise<PaywallDecision> {
  const { request, route } = exchange;
  const preflight = context.cors.preflight(request, exchange.method);
  if (preflight !== undefined) return { kind: 'respond', response: preflight };
  if (route.free || allowlisted(context, exchange.path)) {
    return (
      networkLimited(context, exchange) ??
      passFree(context, exchange, route.free ? 'free_route' : 'allowlist')
    );
  }
  const text = credentialText(request, context.credentialHeaders);
  if (text !== '' || request.payment !== undefined) {
    const cached = text === '' ? undefined : context.credentials.get(text);
    if (cached !== undefined && request.payment === undefined) {
      return paid(context, exchange, cached, undefined);
    }
    let presented: PresentedCredential | undefined;
    try {
      presented = readCredential(context.kinds, credentialSource(request));
    } catch (error) {
      return refusedCredential(context, exchange, error);
    }
    if (presented !== undefined) {
      return paid(context, exchange, presented, request.payment === undefined ? text : undefined);
    }
  }
  const limited = networkLimited(context, exchange);
  if (limited !== undefined) return limited;
  const freebie = context.freebies?.take(exchange.network());
  if (freebie === undefined || typeof freebie === 'boolean') {
    return freebieOr402(context, exchange, freebie === true);
  }
  return freebie.then((granted) => freebieOr402(context, exchange, granted));
}

function freebieOr402(
  context: PaywallContext,
  exchange: Exchange,
  freebie: boolean,
): PaywallDecision | Promise<PaywallDecision> {
  if (freebie) return passFree(context, exchange, 'freebie');
  return challenge(context, exchange, {
    status: 402,
    code: 'payment_required',
    detail: `Payment required: ${exchange.route.description}. Pay one of the offers and retry with its credential.`,
  });
}

function credentialSource(request: PaywallRequest): CredentialSource {
  const header = request.headers.get('authorization');
  const authorization = request.authorization ?? (header === null ? [] : [header]);
  return { authorization, headers: request.headers, payment: request.payment };
}

function allowlisted(context: PaywallContext, path: string): boolean {
  return context.allowlist.some((entry) =>
    typeof entry === 'string' ? pathWithin(path, entry) : path.search(entry) >= 0,
  );
}

/** Applies the per-network bucket to a request without a valid credential. */
function networkLimited(context: PaywallContext, exchange: Exchange): PaywallDecision | undefined {
  const allowed = context.limiters.network?.take(exchange.network());
  if (allowed === undefined || allowed.ok) return undefined;
  return respond(context, exchange, {
    status: 429,
    code: 'rate_limited',
    detail: 'Too many requests from your network; retry later.',
    retryAfterSeconds: allowed.retryAfterSeconds,
  });
}
