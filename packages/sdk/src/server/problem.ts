/**
 * JSON problem bodies (RFC 9457, `application/problem+json`) for every response the engine writes:
 * `type`, `title`, `status`, Tollway's stable `code`, a human `detail`, and extension members
 * (the price and the offers of a 402).
 */
import type { TollwayErrorCode } from '../errors.js';
import type { PaywallResponse } from './types.js';

/** A problem to answer with. Extension values must be JSON (amounts as decimal strings). */
export interface Problem {
  status: number;
  code: TollwayErrorCode;
  detail: string;
  extensions?: Record<string, unknown>;
}

/** The problem type of a 402, shared with the MPP draft (draft-httpauth-payment). */
export const PAYMENT_REQUIRED_TYPE = 'https://paymentauth.org/problems/payment-required';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * Serialises a problem. Only a 402 has a specific `type`; the others are `about:blank` with the
 * status phrase as title, and `code` says what happened.
 *
 * @example
 * ```ts
 * formatProblem({ status: 429, code: 'rate_limited', detail: 'Retry in 3 s.' });
 * // '{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited",…}'
 * ```
 */
export function formatProblem(problem: Problem): string {
  return JSON.stringify({
    type: problem.status === 402 ? PAYMENT_REQUIRED_TYPE : 'about:blank',
    title: TITLES[problem.status] ?? 'Error',
    status: problem.status,
    code: problem.code,
    detail: problem.detail,
    ...problem.extensions,
  });
}

/** A complete response carrying `problem`, with `headers` first, then the content type. */
export function createProblemResponse(
  problem: Problem,
  headers: ReadonlyArray<[name: string, value: string]>,
): PaywallResponse {
  return {
    status: problem.status,
    headers: [...headers, ['Content-Type', 'application/problem+json']],
    body: formatProblem(problem),
    problem,
  };
}
