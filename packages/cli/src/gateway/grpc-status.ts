/**
 * The gateway's own answers to gRPC calls: an HTTP/2 200 in gRPC's trailers-only form (one HEADERS
 * frame that ends the stream, RFC: grpc/doc/PROTOCOL-HTTP2.md "Trailers-Only"), carrying
 * `grpc-status`, a percent-encoded `grpc-message`, and the engine's headers as metadata. A 402 (or
 * a 401 that carries a fresh challenge) becomes what Aperture sends and lnd-style clients
 * (`l402.ClientInterceptor`) read: `grpc-status: 13`, `grpc-message: payment required`, and the
 * `WWW-Authenticate` challenges (`LSAT …` then `L402 …`) as metadata. Other refusals take the
 * gRPC code closest to their HTTP status (docs/guides/grpc.md has the table).
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { errorStatus } from '@tollway/sdk';
import type { PaywallResponse, Problem } from '@tollway/sdk/server';

/** gRPC status codes the gateway sends (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  ok: 0,
  cancelled: 1,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  permissionDenied: 7,
  resourceExhausted: 8,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
} as const;

/** The message lnd-style clients look for (lower-cased, as a substring) with code 13. */
const PAYMENT_REQUIRED_MESSAGE = 'payment required';

/** The gRPC code for an HTTP status the gateway would otherwise answer with. */
export function grpcCodeOf(status: number): number {
  switch (status) {
    case 400:
    case 413:
    case 414:
      return GRPC_STATUS.invalidArgument;
    case 401:
      return GRPC_STATUS.unauthenticated;
    case 402:
      return GRPC_STATUS.internal;
    case 403:
      return GRPC_STATUS.permissionDenied;
    case 404:
      return GRPC_STATUS.unimplemented;
    case 429:
      return GRPC_STATUS.resourceExhausted;
    case 502:
    case 503:
      return GRPC_STATUS.unavailable;
    case 504:
      return GRPC_STATUS.deadlineExceeded;
    default:
      return status >= 500 ? GRPC_STATUS.internal : GRPC_STATUS.unknown;
  }
}

/**
 * Percent-encodes a `grpc-message` value: every byte of its UTF-8 outside printable ASCII, and `%`
 * (grpc/doc/PROTOCOL-HTTP2.md, "Status-Message").
 *
 * @example
 * ```ts
 * encodeGrpcMessage('payé'); // 'pay%C3%A9'
 * ```
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Headers of an answer's body, which a gRPC answer replaces with its own. */
const BODY_HEADERS = new Set(['content-type', 'content-length']);

/**
 * Adds `[name, value]` pairs to HTTP/2 headers, lower-cased, repeated names as lists; names in
 * `skip` are left out.
 */
export function addHeaders(
  headers: OutgoingHttpHeaders,
  pairs: ReadonlyArray<readonly [string, string]>,
  skip: ReadonlySet<string> = BODY_HEADERS,
): OutgoingHttpHeaders {
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (skip.has(lower)) continue;
    const present = headers[lower];
    headers[lower] =
      present === undefined
        ? value
        : [...(Array.isArray(present) ? present : [String(present)]), value];
  }
  return headers;
}

/**
 * Ends a call that has not answered yet with `code` and `message` in the trailers-only form,
 * `pairs` added as metadata. Does nothing on a stream already answered or gone.
 *
 * @example
 * ```ts
 * sendGrpcStatus(stream, GRPC_STATUS.unavailable, 'the upstream cannot be reached');
 * ```
 */
export function sendGrpcStatus(
  stream: ServerHttp2Stream,
  code: number,
  message: string,
  pairs: ReadonlyArray<readonly [string, string]> = [],
): void {
  if (stream.headersSent || stream.destroyed || stream.closed) return;
  const headers = addHeaders(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    },
    pairs,
  );
  stream.respond(headers, { endStream: true });
}

/** The status and message of an engine or gateway answer, for a gRPC client. */
function statusOf(status: number, problem: Problem | undefined, challenged: boolean) {
  if (challenged && (status === 402 || status === 401)) {
    // Aperture's exact message for an unpaid call; a refused credential says why after it.
    const message =
      problem === undefined || problem.code === 'payment_required'
        ? PAYMENT_REQUIRED_MESSAGE
        : `${PAYMENT_REQUIRED_MESSAGE} (${problem.code})`;
    return { code: GRPC_STATUS.internal, message };
  }
  const message = problem === undefined ? `HTTP ${status}` : `${problem.code}: ${problem.detail}`;
  return { code: grpcCodeOf(status), message };
}

/**
 * Answers a gRPC call with an engine response (a 402 with its challenges, a 401, a 429 with its
 * `Retry-After`, …) in the trailers-only form; see the module comment.
 *
 * @example
 * ```ts
 * if (decision.kind === 'respond') return answerGrpc(stream, decision.response);
 * ```
 */
export function answerGrpc(stream: ServerHttp2Stream, response: PaywallResponse): void {
  const challenged = response.headers.some(
    ([name, value]) => name.toLowerCase() === 'www-authenticate' && /^(LSAT|L402) /i.test(value),
  );
  const { code, message } = statusOf(response.status, response.problem, challenged);
  sendGrpcStatus(stream, code, message, response.headers);
}

/**
 * Answers a gRPC call with one of the gateway's own problems (no service matches, the upstream
 * failed), `pairs` added (a receipt saying nothing was charged).
 *
 * @example
 * ```ts
 * sendGrpcProblem(stream, { code: 'not_found', detail: 'No service matches.' });
 * ```
 */
export function sendGrpcProblem(
  stream: ServerHttp2Stream,
  problem: Problem,
  pairs: ReadonlyArray<readonly [string, string]> = [],
): void {
  const status = problem.status ?? errorStatus[problem.code];
  const { code, message } = statusOf(status, problem, false);
  sendGrpcStatus(stream, code, message, pairs);
}
