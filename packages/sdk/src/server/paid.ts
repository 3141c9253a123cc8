/**
 * A request that presents a credential: the offer kind checks it against the request, then the
 * engine applies revocation and the per-token rate limit, and lets it through — at once when
 * nothing needs I/O, else through the charge.
 */
import { isTollwayError } from '../errors.js';
import { isPromiseLike } from '../internal/promise.js';
import { credentialRefusal, pass, RETRY_AFTER_UNAVAILABLE, reply, respond } from './answers.js';
import { challenge } from './challenge.js';
import { charge, needsCharge } from './charge.js';
import type { PaywallContext } from './context.js';
import { type Exchange, isQuote } from './exchange.js';
import type {
  CredentialAnswer,
  CredentialCheck,
  CredentialVerdict,
  PresentedCredential,
} from './offers.js';
import { fitsListedPrice, priceExceeded } from './price-check.js';
import type { Quote } from './pricing.js';
import type { PaymentContext, PaywallDecision } from './types.js';

/**
 * Checks `presented` against the exchange and decides. `cacheText` is set when the credential is
 * not cached yet and may be, once it verifies.
 */
export function paid(
  context: PaywallContext,
  exchange: Exchange,
  presented: PresentedCredential,
  cacheText: string | undefined,
): PaywallDecision | Promise<PaywallDecision> {
  const check: CredentialCheck = {
    route: exchange.route,
    path: exchange.path,
    method: exchange.method,
    now: exchange.now,
  };
  // Only a price function makes the price depend on the request, and only a metered route's
  // x402 upto reads a fixed price converted to dollars; other fixed prices skip the closure.
  const { route } = exchange;
  if (typeof route.price === 'function' || route.meter !== undefined) {
    check.quote = () => listedQuote(exchange);
  }
  let verdict: ReturnType<PresentedCredential['verify']>;
  try {
    const { trace } = exchange;
    verdict =
      trace === undefined
        ? presented.verify(check)
        : trace.step('tollway.verify', () => presented.verify(check));
  } catch (error) {
    return refusedCredential(context, exchange, error);
  }
  if (isPromiseLike(verdict)) {
    return Promise.resolve(verdict).then(
      (settled) => verified(context, exchange, presented, cacheText, settled),
      (error: unknown) => refusedCredential(context, exchange, error),
    );
  }
  return verified(context, exchange, presented, cacheText, verdict);
}

/** A credential that could not be read or checked: 400 for conflicting ones, else 401 + offers. */
export function refusedCredential(
  context: PaywallContext,
  exchange: Exchange,
  error: unknown,
): Promise<PaywallDecision> {
  if (!isTollwayError(error)) {
    context.logger.error({ err: error }, 'reading a credential failed unexpectedly');
  }
  const code = isTollwayError(error) ? error.code : 'invalid_credential';
  const detail = isTollwayError(error) ? error.message : 'The credential could not be read.';
  if (code === 'conflicting_credentials') {
    return Promise.resolve(respond(context, exchange, { status: 400, code, detail }));
  }
  return challenge(context, exchange, { status: 401, code, detail });
}

/** The request's memoized quote for an offer checking a credential; undefined when refused. */
async function listedQuote(exchange: Exchange): Promise<Quote | undefined> {
  const quote = await exchange.quote();
  return isQuote(quote) ? quote : undefined;
}

/** A checked credential: refused, or let through (see the module comment). */
function verified(
  context: PaywallContext,
  exchange: Exchange,
  presented: PresentedCredential,
  cacheText: string | undefined,
  verdict: CredentialVerdict,
): PaywallDecision | Promise<PaywallDecision> {
  const { route } = exchange;
  if (!verdict.ok) {
    const refusal = { status: verdict.status ?? 401, code: verdict.code, detail: verdict.message };
    if (refusal.status !== 503) return challenge(context, exchange, refusal);
    return respond(context, exchange, { ...refusal, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE });
  }
  const proof = verdict.proof;
  exchange.trace?.set({ 'tollway.payment.hash': proof.paymentHash });
  if (cacheText !== undefined && proof.singleUse === undefined) {
    context.credentials.set(cacheText, presented);
  }
  if (context.revoked.has(proof.tokenId)) {
    return challenge(context, exchange, {
      status: 401,
      code: 'token_revoked',
      detail: 'This token was revoked.',
    });
  }
  const allowed = context.limiters.token?.take(proof.tokenId);
  if (allowed !== undefined && !allowed.ok) {
    return respond(context, exchange, {
      status: 429,
      code: 'rate_limited',
      detail: 'Too many requests with this token; retry later.',
      retryAfterSeconds: allowed.retryAfterSeconds,
    });
  }
  if (proof.answer !== undefined) return answered(context, exchange, proof.answer);
  const payment: PaymentContext = {
    protocol: proof.protocol,
    tokenId: proof.tokenId,
    service: route.service,
  };
  if (proof.tier !== undefined) payment.tier = proof.tier;
  if (proof.expiresAt !== undefined) payment.expiresAt = proof.expiresAt;
  const amount = proof.amountMsat ?? context.invoices.amountOf(proof.paymentHash);
  if (amount !== undefined) {
    payment.amount = amount;
    payment.unit = 'msat';
  }
  if (fitsListedPrice(proof, route) === 'exceeds') {
    return challenge(context, exchange, priceExceeded(proof));
  }
  if (needsCharge(context, exchange, proof)) return charge(context, exchange, proof, payment);
  context.recorder.firstSight(proof, route);
  return pass(context, exchange, payment, proof.headers);
}

/** The engine's own answer to a credential that asks something of its payment (a refund). */
async function answered(
  context: PaywallContext,
  exchange: Exchange,
  answer: () => Promise<CredentialAnswer>,
): Promise<PaywallDecision> {
  const said = await answer();
  if (said.ok) return reply(context, exchange, said.body, said.headers);
  return respond(context, exchange, credentialRefusal(said), { headers: said.headers });
}
