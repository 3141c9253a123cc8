/**
 * The spans of one call of the paying fetch, when its `tracing` is on: a `tollway.fetch` span from
 * the call to its answer, with children for the steps — `tollway.send` (the request as it came),
 * `tollway.offers` (a refusal's offers read), `tollway.budget` (the payment held in the
 * budget), `tollway.pay` (the wallet paid, the proof checked) and `tollway.retry` (the request
 * sent again with the credential). Attributes: docs/guides/tracing.md. Only public values are set
 * here: the URL without its query, amounts, the payment hash, codes — never a preimage, a token,
 * a signature or a header value.
 *
 * @internal
 */
import {
  type Attributes,
  endSpan,
  errorType,
  inSpan,
  loadTracing,
  type Span,
  type Tracing,
} from '../internal/tracing.js';
import type { OutgoingRequest } from './http-exchange.js';
import type { PayingContext } from './paying-context.js';
import type { PaymentInfo } from './paying-fetch.js';
import type { Reservation } from './types.js';

/** The steps of a call that get a span of their own. */
export type CallStep =
  | 'tollway.send'
  | 'tollway.offers'
  | 'tollway.budget'
  | 'tollway.pay'
  | 'tollway.retry';

/** The spans of one call; see the module comment. */
export interface CallTrace {
  /** Adds attributes to the call's span. */
  set(attributes: Attributes): void;
  /** Runs `run` in a child span `name` (sync or async alike). */
  step<T>(name: CallStep, run: (span: Span) => T): T;
  /** The call paid: what, how much, to which payment hash. */
  paid(payment: PaymentInfo): void;
  /** The call answered with `response`: `outcome` says how it got there. */
  end(response: Response, outcome: 'paid' | 'reused' | 'none'): void;
  /** The call failed with `error`. */
  fail(error: unknown): void;
}

/**
 * The tracer of a paying fetch with `tracing` on (loaded on its first call), else undefined.
 *
 * @internal
 */
export function tracingOf(context: PayingContext): Promise<Tracing> | undefined {
  if (!context.tracingOn) return undefined;
  context.tracing ??= loadTracing();
  return context.tracing;
}

/**
 * Starts the span of a call sending `request`, a child of the active context.
 *
 * @internal
 * @example
 * ```ts
 * const trace = startCallTrace(tracing, outgoingRequest('https://api.example.com/forecast'));
 * ```
 */
export function startCallTrace(tracing: Tracing, request: OutgoingRequest): CallTrace {
  const { api, tracer } = tracing;
  const { url } = request;
  const span = tracer.startSpan('tollway.fetch', {
    kind: api.SpanKind.CLIENT,
    attributes: {
      'http.request.method': request.method.toUpperCase(),
      // Without the query: it may carry a key of the API's.
      'url.full': `${url.origin}${url.pathname}`,
      'server.address': url.hostname,
      ...(url.port === '' ? {} : { 'server.port': Number(url.port) }),
    },
  });
  const parent = api.trace.setSpan(api.context.active(), span);
  return {
    set: (attributes) => span.setAttributes(attributes),
    step: (name, run) => inSpan(tracing, parent, name, run),
    paid: (payment) => span.setAttributes(paymentAttributes(payment)),
    end: (response, outcome) =>
      endSpan(tracing, span, {
        'http.response.status_code': response.status,
        'tollway.outcome': outcome,
      }),
    fail: (error) => endSpan(tracing, span, {}, errorType(error)),
  };
}

/**
 * The attributes of a payment the call made: its protocol, amount and fee (msat) and payment hash
 * (x402: the authorization nonce), never its proof.
 *
 * @internal
 */
export function paymentAttributes(payment: PaymentInfo): Attributes {
  return {
    'tollway.protocol': payment.protocol,
    'tollway.paid.amount': payment.amountMsat.toString(),
    'tollway.paid.unit': 'msat',
    'tollway.fee.amount': payment.feeMsat.toString(),
    'tollway.fee.unit': 'msat',
    'tollway.payment.hash': payment.paymentHash,
  };
}

/**
 * The attributes of a hold in the budget: what it holds (the amount and the most fee), msat.
 *
 * @internal
 */
export function heldAttributes(reservation: Reservation): Attributes {
  return {
    'tollway.protocol': reservation.request.protocol,
    'tollway.held.amount': reservation.heldMsat.toString(),
    'tollway.held.unit': 'msat',
  };
}
