/**
 * JSON problem bodies (RFC 9457, `application/problem+json`) for every response Tollway writes
 * itself (the engine, the adapters, the gateway, the facilitator handler): `type`, `title`,
 * `status`, Tollway's stable `code`, a human `detail`, and extension members (the price and the
 * offers of a 402). The status comes from the code's row in the error catalogue unless given.
 */
import { errorStatus, type TollwayErrorCode } from '../errors.js';
import type { PaywallResponse } from './types.js';

/** A problem to answer with. Extension values must be JSON (amounts as decimal strings). */
export interface Problem {
  /** Defaults to the code's status in the catalogue (`errorStatus`). */
  status?: number;
  code: TollwayErrorCode;
  detail: string;
  extensions?: Record<string, unknown>;
}

/** The problem type of a 402, shared with the MPP draft (draft-httpauth-payment). */
export const PAYMENT_REQUIRED_TYPE = 'https://paymentauth.org/problems/payment-required';

/** The reason phrase (RFC 9110) of every status a Tollway problem body carries. */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The status `problem` is answered with: its own, else its code's. */
function problemStatus(problem: Problem): number {
  return problem.status ?? errorStatus[problem.code];
}

/**
 * Serialises a problem. Only a 402 has a specific `type`; the others are `about:blank` with the
 * status phrase as title, and `code` says what happened.
 *
 * @example
 * ```ts
 * formatProblem({ code: 'rate_limited', detail: 'Retry in 3 s.' });
 * // '{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited",…}'
 * ```
 */
export function formatProblem(problem: Problem): string {
  const status = problemStatus(problem);
  return JSON.stringify({
    type: status === 402 ? PAYMENT_REQUIRED_TYPE : 'about:blank',
    title: TITLES[status] ?? 'Error',
    status,
    code: problem.code,
    detail: problem.detail,
    ...problem.extensions,
  });
}

/**
 * A complete response carrying `problem`, with `headers` first, then the content type. Write it
 * with the adapter's writer (`writePaywallResponse` of `@tollway/sdk/node` for a Node response).
 *
 * @example
 * ```ts
 * writePaywallResponse(res, createProblemResponse({ code: 'not_found', detail: 'No such page.' }, []));
 * ```
 */
export function createProblemResponse(
  problem: Problem,
  headers: ReadonlyArray<[name: string, value: string]>,
): PaywallResponse {
  return {
    status: problemStatus(problem),
    headers: [...headers, ['Content-Type', 'application/problem+json']],
    body: formatProblem(problem),
    problem,
  };
}
