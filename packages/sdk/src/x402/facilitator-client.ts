/**
 * A remote x402 facilitator over HTTP (`POST /verify`, `POST /settle`, `GET /supported`), the API
 * every x402 facilitator serves: Tollway's own `tollway facilitator`, x402.org's, a hosted one.
 */
import { TollwayError } from '../errors.js';
import type { Facilitator } from './facilitator.js';
import {
  formatFacilitatorRequest,
  parseFacilitatorJson,
  supportedResponseSchema,
  verifyResponseSchema,
} from './facilitator-wire.js';
import { settleResponseSchema } from './payment-response.js';
import { fromJson } from './wire.js';

/** Options of {@link createFacilitatorClient}. */
export interface FacilitatorClientOptions {
  /** Base URL of the facilitator; `/verify`, `/settle` and `/supported` are appended. */
  url: string;
  /** Headers sent with every request, such as an API key a hosted facilitator asks for. */
  headers?: Record<string, string>;
  /** Per-request time limit; default 90 s (a settlement waits for its receipt). */
  timeoutMs?: number;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch;
}

const EXCERPT_LENGTH = 200;

/**
 * Creates a {@link Facilitator} that calls a remote one. Verdicts come back as values, including
 * the ones a facilitator sends with a 4xx status; it throws `facilitator_unavailable` when the
 * facilitator cannot be reached, times out or answers 5xx, and `facilitator_error` when it answers
 * something that is not a verdict.
 *
 * @example
 * ```ts
 * const facilitator = createFacilitatorClient({ url: 'http://127.0.0.1:4020' });
 * const { kinds } = await facilitator.supported();
 * ```
 */
export function createFacilitatorClient(options: FacilitatorClientOptions): Facilitator {
  const base = options.url.replace(/\/+$/, '');
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 90_000;

  async function call(path: string, body?: string): Promise<{ status: number; text: string }> {
    try {
      const response = await fetchFn(`${base}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          ...options.headers,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: response.status, text: await response.text() };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TollwayError('facilitator_unavailable', `${base}${path}: ${reason}`, {
        cause: error,
      });
    }
  }

  /**
   * The answer of `path` read with `parse`. A non-2xx answer counts when it carries the verdict
   * member `verdict` (x402 facilitators send refusals with 4xx statuses).
   */
  async function ask<T>(
    path: string,
    body: string | undefined,
    verdict: string,
    parse: (text: string) => T,
  ): Promise<T> {
    const { status, text } = await call(path, body);
    const excerpt = text.slice(0, EXCERPT_LENGTH);
    const isVerdict = (): boolean => {
      try {
        const json = fromJson(text, 'answer');
        return typeof json === 'object' && json !== null && verdict in json;
      } catch {
        return false;
      }
    };
    if ((status < 200 || status > 299) && !isVerdict()) {
      throw new TollwayError(
        status >= 500 ? 'facilitator_unavailable' : 'facilitator_error',
        `${base}${path} answered ${status}: ${excerpt}`,
        { details: { status } },
      );
    }
    try {
      return parse(text);
    } catch (error) {
      throw new TollwayError(
        'facilitator_error',
        `${base}${path} answered something that is not a verdict: ${excerpt}`,
        { cause: error, details: { status } },
      );
    }
  }

  return {
    verify: (payload, requirements) =>
      ask('/verify', formatFacilitatorRequest({ payload, requirements }), 'isValid', (text) =>
        parseFacilitatorJson(verifyResponseSchema, text, 'verify answer'),
      ),
    settle: (payload, requirements) =>
      ask('/settle', formatFacilitatorRequest({ payload, requirements }), 'success', (text) =>
        parseFacilitatorJson(settleResponseSchema, text, 'settle answer'),
      ),
    supported: () =>
      ask('/supported', undefined, 'kinds', (text) =>
        parseFacilitatorJson(supportedResponseSchema, text, 'supported answer'),
      ),
  };
}
