/**
 * The x402 facilitator HTTP API over any {@link Facilitator}, as a Web-standard handler
 * (`Request` in, `Response` out): `POST /verify`, `POST /settle`, `GET /supported`, answered the way
 * x402's own facilitators answer, so `@x402/core`'s `HTTPFacilitatorClient` can use it.
 */
import { isTollwayError, type TollwayErrorCode } from '../errors.js';
import { formatProblem } from '../server/problem.js';
import type { Facilitator } from './facilitator.js';
import { parseFacilitatorRequest } from './facilitator-wire.js';
import { settleResponseToWire } from './payment-response.js';
import { X402_MAX_BODY_LENGTH } from './wire.js';

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

function problem(
  status: number,
  code: TollwayErrorCode,
  detail: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(formatProblem({ status, code, detail }), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

/** The status a failure of the facilitator itself is answered with. */
function failureResponse(error: unknown): Response {
  if (isTollwayError(error, 'facilitator_unavailable')) {
    return problem(503, error.code, error.message);
  }
  if (isTollwayError(error)) return problem(502, error.code, error.message);
  return problem(500, 'internal_error', 'the facilitator failed unexpectedly');
}

/**
 * Creates the facilitator HTTP handler. Paths are matched on their last segment, so the handler
 * may be mounted under a prefix. Verdicts are answered 200, valid or not; a malformed request
 * gets a 400 `application/problem+json` body with code `invalid_x402_payload`, a body over
 * `X402_MAX_BODY_LENGTH` bytes a 413, a facilitator that cannot reach its chain a 503.
 *
 * @example
 * ```ts
 * const handle = createFacilitatorHandler(await createSelfHostedFacilitator({ rpcUrl, privateKey }));
 * const response = await handle(new Request('http://localhost/supported'));
 * ```
 */
export function createFacilitatorHandler(
  facilitator: Facilitator,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const endpoint = new URL(request.url).pathname.replace(/\/+$/, '').split('/').pop();
    if (endpoint === 'supported') {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return problem(405, 'invalid_x402_payload', 'use GET /supported', { allow: 'GET, HEAD' });
      }
      try {
        return json(200, await facilitator.supported());
      } catch (error) {
        return failureResponse(error);
      }
    }
    if (endpoint !== 'verify' && endpoint !== 'settle') {
      return problem(
        404,
        'invalid_x402_payload',
        'the endpoints are /verify, /settle and /supported',
      );
    }
    if (request.method !== 'POST') {
      return problem(405, 'invalid_x402_payload', `use POST /${endpoint}`, { allow: 'POST' });
    }
    let parsed: ReturnType<typeof parseFacilitatorRequest>;
    try {
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (bytes.length > X402_MAX_BODY_LENGTH) {
        const limit = `bodies are limited to ${X402_MAX_BODY_LENGTH} bytes`;
        return problem(413, 'invalid_x402_payload', limit);
      }
      parsed = parseFacilitatorRequest(new TextDecoder().decode(bytes));
    } catch (error) {
      return isTollwayError(error)
        ? problem(400, error.code, error.message)
        : failureResponse(error);
    }
    try {
      if (endpoint === 'verify') {
        return json(200, await facilitator.verify(parsed.payload, parsed.requirements));
      }
      return json(
        200,
        settleResponseToWire(await facilitator.settle(parsed.payload, parsed.requirements)),
      );
    } catch (error) {
      return failureResponse(error);
    }
  };
}
