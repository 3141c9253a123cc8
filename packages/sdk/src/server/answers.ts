/**
 * The engine's answers: a refusal (why a request does not pass) becomes a response with a problem
 * body; a pass carries the payment context and the headers for the handler's answer. CORS headers
 * join them as `cors.ts` says.
 */
import type { TollwayErrorCode } from '../errors.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import { createProblemResponse } from './problem.js';
import type {
  PaymentContext,
  PaywallCharge,
  PaywallDecision,
  PaywallResponse,
  SettlementReport,
} from './types.js';

/** An answer that is not a pass. */
export interface Refusal {
  status: number;
  code: TollwayErrorCode;
  detail: string;
  retryAfterSeconds?: number;
}

/** What a response carries besides its refusal. */
export interface ResponseParts {
  /** Headers before the engine's own (challenges, a settlement's headers). */
  headers?: ReadonlyArray<[string, string]>;
  /** Members of the problem body beyond the standard ones (a 402's price and offers). */
  extensions?: Record<string, unknown>;
  /** The offers in their protocols' own structures, by kind name. */
  offers?: Readonly<Record<string, unknown>>;
  settlement?: SettlementReport;
}

/** Seconds a client is asked to wait after a 503. */
export const RETRY_AFTER_UNAVAILABLE = 5;

/** A 503 refusal with a `Retry-After`. */
export function unavailable(code: TollwayErrorCode, detail: string): Refusal {
  return { status: 503, code, detail, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE };
}

/**
 * The refusal a credential's own protocol worded (`PaymentProof.answer`, `draws.uncovered`,
 * `draws.fund`): a 503 asks the client to wait, as {@link unavailable} does.
 */
export function credentialRefusal(said: {
  status: number;
  code: TollwayErrorCode;
  message: string;
}): Refusal {
  const { status, code, message } = said;
  return status === 503 ? unavailable(code, message) : { status, code, detail: message };
}

/** The response for `refusal`: its problem body, `no-store`, `Retry-After` when set, and CORS. */
export function respond(
  context: PaywallContext,
  exchange: Exchange,
  refusal: Refusal,
  parts: ResponseParts = {},
): Extract<PaywallDecision, { kind: 'respond' }> {
  const headers: Array<[string, string]> = [
    ...(parts.headers ?? []),
    ['Cache-Control', 'no-store'],
  ];
  if (refusal.retryAfterSeconds !== undefined) {
    headers.push(['Retry-After', String(refusal.retryAfterSeconds)]);
  }
  headers.push(...context.cors.headers(exchange.request));
  const problem = {
    status: refusal.status,
    code: refusal.code,
    detail: refusal.detail,
    ...(parts.extensions === undefined ? {} : { extensions: parts.extensions }),
  };
  const response: PaywallResponse = createProblemResponse(problem, headers);
  if (parts.offers !== undefined) response.offers = parts.offers;
  if (parts.settlement !== undefined) response.settlement = parts.settlement;
  return { kind: 'respond', response };
}

/**
 * Lets a paid request through with `headers` (a receipt, say) and the CORS headers; these expose
 * the receipt headers only when there are some, or may be (a charge adds its own when it commits).
 */
export function pass(
  context: PaywallContext,
  exchange: Exchange,
  payment: PaymentContext,
  headers: ReadonlyArray<[string, string]> = [],
  charge?: PaywallCharge,
): PaywallDecision {
  const { cors } = context;
  const decision: PaywallDecision =
    headers.length === 0 && charge === undefined
      ? { kind: 'pass', payment, headers: [...cors.originHeaders(exchange.request)] }
      : { kind: 'pass', payment, headers: [...headers, ...cors.headers(exchange.request)] };
  if (charge !== undefined) decision.charge = charge;
  return decision;
}

/** Lets a request through free, saying why. */
export function passFree(
  context: PaywallContext,
  exchange: Exchange,
  freeReason: NonNullable<PaymentContext['freeReason']>,
): PaywallDecision {
  return passUnpaid(context, exchange, {
    protocol: 'free',
    service: exchange.route.service,
    freeReason,
  });
}

/** Lets a request of a route in shadow mode through unpaid, saying what it would have cost. */
export function passShadow(
  context: PaywallContext,
  exchange: Exchange,
  shadowMsat: bigint,
): PaywallDecision {
  return passUnpaid(context, exchange, {
    protocol: 'free',
    service: exchange.route.service,
    freeReason: 'shadow',
    shadowMsat,
  });
}

/** A free pass: its answer may be stored and shared, so its CORS headers do not depend on `Origin`. */
function passUnpaid(
  context: PaywallContext,
  exchange: Exchange,
  payment: PaymentContext,
): PaywallDecision {
  return { kind: 'pass', payment, headers: [...context.cors.freeHeaders(exchange.request)] };
}

/** An answer the engine gives itself (a session's top-up or close): JSON, never cached, CORS. */
export function reply(
  context: PaywallContext,
  exchange: Exchange,
  body: Record<string, unknown>,
  headers: ReadonlyArray<[string, string]> = [],
): PaywallDecision {
  return {
    kind: 'respond',
    response: {
      status: 200,
      headers: [
        ...headers,
        ['Cache-Control', 'no-store'],
        ['Content-Type', 'application/json'],
        ...context.cors.headers(exchange.request),
      ],
      body: JSON.stringify(body),
    },
  };
}

/** A store call on a paid request: its value, or a 503 refusal when the store failed. */
export async function storeCall<T>(
  context: PaywallContext,
  call: () => Promise<T>,
): Promise<{ value: T } | Refusal> {
  try {
    return { value: await call() };
  } catch (error) {
    context.logger.warn({ err: error }, 'the store failed on a paid request');
    return unavailable('store_error', 'The paywall store is unavailable; retry later.');
  }
}
/** The answer when deciding threw (a bug): logged, then a 500 `internal_error`. */
export function failedDecision(context: PaywallContext, error: unknown): PaywallDecision {
  context.logger.error({ err: error }, 'the paywall failed to decide a request');
  const problem = {
    status: 500,
    code: 'internal_error',
    detail: 'The paywall failed while handling this request; the server logged why.',
  } as const;
  return {
    kind: 'respond',
    response: createProblemResponse(problem, [['Cache-Control', 'no-store']]),
  };
}
