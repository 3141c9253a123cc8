/**
 * The spans of one request through the engine, when the paywall's `tracing` is on: a
 * `tollway.request` span from `handle` to the end of the answer, with children for the steps —
 * `tollway.verify` (the credential checked), `tollway.challenge` (a 402's invoice and offers
 * minted), `tollway.reserve` (what the request may cost held in the store), `tollway.handler`
 * (from the pass to the status of the handler's or upstream's answer) and `tollway.settle` (the
 * charge decided on that status: a reservation charged or released, an x402 payment settled; a
 * metered answer's ends with the answer). Attributes: docs/guides/tracing.md. Only public values
 * are set here: identifiers, amounts, codes — never a credential, a preimage or a key.
 */
import { isPromiseLike } from '../internal/promise.js';
import {
  type Attributes,
  type Context,
  endSpan,
  errorType,
  inSpan,
  type Span,
  type Tracing,
} from '../internal/tracing.js';
import type { Route } from './route.js';
import type {
  ChargeMeter,
  PaymentContext,
  PaywallCharge,
  PaywallDecision,
  PaywallFinal,
  PaywallResponse,
} from './types.js';

/** The steps of a request that get a span of their own. */
export type TraceStep =
  | 'tollway.verify'
  | 'tollway.challenge'
  | 'tollway.reserve'
  | 'tollway.settle';

/** An amount in base units of `unit` (`msat`, `uses`, an asset id). */
export interface TracedAmount {
  amount: bigint;
  unit: string;
}

/** The spans of one request; see the module comment. */
export interface RequestTrace {
  /** Adds attributes to the request span. */
  set(attributes: Attributes): void;
  /** What this request was charged (`tollway.charged.*`). */
  charged(amount: TracedAmount): void;
  /** What was held for this request and given back (`tollway.released.*`). */
  released(amount: TracedAmount): void;
  /** Runs `run` in a child span `name` (sync or async alike). */
  step<T>(name: TraceStep, run: (span: Span) => T): T;
  /**
   * The engine decided: a response ends the request span; a pass of a request that reports its
   * outcome starts the handler span and gets a charge that ends the spans with the answer (the
   * pass's own charge inside it), and the handler span's context (`traceContext`).
   */
  decided(decision: PaywallDecision): PaywallDecision;
  /** Deciding threw (a bug): the request span ends failed. */
  failed(errorType: string): void;
}

/**
 * Starts the request span of a request to `route`, a child of the active context.
 *
 * @example
 * ```ts
 * const trace = startRequestTrace(tracing, { method: 'GET', path: '/forecast', reportsOutcome: true }, route);
 * ```
 */
export function startRequestTrace(
  tracing: Tracing,
  request: { method: string; path: string; reportsOutcome: boolean },
  route: Route,
): RequestTrace {
  const { api, tracer } = tracing;
  const span = tracer.startSpan('tollway.request', {
    kind: api.SpanKind.INTERNAL,
    attributes: {
      'http.request.method': request.method,
      'url.path': request.path,
      'tollway.service': route.service,
    },
  });
  const parent = api.trace.setSpan(api.context.active(), span);
  return {
    set: (attributes) => span.setAttributes(attributes),
    charged: (amount) => span.setAttributes(amountAttributes('tollway.charged', amount)),
    released: (amount) => span.setAttributes(amountAttributes('tollway.released', amount)),
    step: (name, run) => inSpan(tracing, parent, name, run),
    decided(decision) {
      if (decision.kind === 'respond') {
        endSpan(
          tracing,
          span,
          responseAttributes(decision.response),
          serverError(decision.response),
        );
        return decision;
      }
      span.setAttributes(paymentAttributes(decision.payment));
      if (!request.reportsOutcome) {
        span.end();
        return decision;
      }
      const handler = tracer.startSpan('tollway.handler', undefined, parent);
      const handlerContext = api.trace.setSpan(parent, handler);
      decision.traceContext = handlerContext;
      decision.charge = tracedCharge(tracing, { span, parent, handler }, decision.charge);
      return decision;
    },
    failed: (errorType) => endSpan(tracing, span, {}, errorType),
  };
}

/** The open spans of a request that passed. */
interface PassSpans {
  span: Span;
  parent: Context;
  handler: Span;
}

/**
 * A charge that ends the handler span on the answer's status (or on `release`), runs the pass's
 * own charge, if any, in a settle span, and ends the request span once the charge is decided.
 */
function tracedCharge(
  tracing: Tracing,
  spans: PassSpans,
  inner: PaywallCharge | undefined,
): PaywallCharge {
  const { span, parent, handler } = spans;
  let settleSpan: Span | undefined;
  // Until the first commit or release; a later call (a proxy's release after its commit) goes
  // to the pass's own charge alone.
  let open = true;
  const traced: PaywallCharge = {
    commit(status, headers) {
      if (!open) return inner?.commit(status, headers) ?? { kind: 'pass', headers: [] };
      open = false;
      handler.end();
      span.setAttribute('http.response.status_code', status);
      if (inner === undefined) {
        span.end();
        return { kind: 'pass', headers: [] };
      }
      const settling = tracing.tracer.startSpan('tollway.settle', undefined, parent);
      settleSpan = settling;
      const final = inner.commit(status, headers);
      const done = (decided: PaywallFinal): PaywallFinal => {
        if (decided.kind === 'respond') {
          settleSpan = undefined;
          endSpan(tracing, settling, {}, decided.response.problem?.code);
          endSpan(tracing, span, responseAttributes(decided.response));
        } else if (inner.meter === undefined) {
          settleSpan = undefined;
          settling.end();
          span.end();
        }
        return decided;
      };
      if (!isPromiseLike(final)) return done(final);
      return Promise.resolve(final).then(done, (error: unknown) => {
        endSpan(tracing, settling, {}, errorType(error));
        endSpan(tracing, span, {}, errorType(error));
        throw error;
      });
    },
    release() {
      if (!open) return inner?.release() ?? [];
      open = false;
      handler.end();
      const headers = inner?.release() ?? [];
      span.end();
      return headers;
    },
  };
  if (inner?.meter !== undefined) traced.meter = tracedMeter(inner.meter, () => settleSpan, span);
  return traced;
}

/** A meter that ends the settle span and the request span once the metered answer is charged. */
function tracedMeter(
  meter: ChargeMeter,
  settleSpan: () => Span | undefined,
  span: Span,
): ChargeMeter {
  return {
    write: (chunk) => meter.write(chunk),
    async end(complete) {
      try {
        return await meter.end(complete);
      } finally {
        settleSpan()?.end();
        span.end();
      }
    },
  };
}

function amountAttributes(prefix: string, { amount, unit }: TracedAmount): Attributes {
  return { [`${prefix}.amount`]: amount.toString(), [`${prefix}.unit`]: unit };
}

/** The attributes of an engine's answer: its status, its problem's code, and what it was. */
function responseAttributes(response: PaywallResponse): Attributes {
  const attributes: Attributes = {
    'http.response.status_code': response.status,
    'tollway.outcome': outcomeOf(response),
  };
  if (response.problem !== undefined) attributes['tollway.error.code'] = response.problem.code;
  return attributes;
}

/** A 402 or 401 with offers, another refusal, or the engine's own answer (a preflight, a session's). */
function outcomeOf(response: PaywallResponse): 'challenged' | 'refused' | 'answered' {
  if (response.offers !== undefined) return 'challenged';
  return response.status >= 400 ? 'refused' : 'answered';
}

/** The problem code of a 5xx answer (a failure of the server's), else undefined. */
function serverError(response: PaywallResponse): string | undefined {
  return response.status >= 500 ? (response.problem?.code ?? String(response.status)) : undefined;
}

/** The attributes of a pass: how it was paid for, or why it was free. */
function paymentAttributes(payment: PaymentContext): Attributes {
  const attributes: Attributes = {
    'tollway.outcome': payment.protocol === 'free' ? 'free' : 'paid',
    'tollway.protocol': payment.protocol,
  };
  if (payment.freeReason !== undefined) attributes['tollway.free_reason'] = payment.freeReason;
  if (payment.tokenId !== undefined) attributes['tollway.token.id'] = payment.tokenId;
  if (payment.amount !== undefined && payment.unit !== undefined) {
    Object.assign(
      attributes,
      amountAttributes('tollway.paid', { amount: payment.amount, unit: payment.unit }),
    );
  }
  if (payment.shadowMsat !== undefined) {
    Object.assign(
      attributes,
      amountAttributes('tollway.shadow', { amount: payment.shadowMsat, unit: 'msat' }),
    );
  }
  return attributes;
}
