/**
 * The paying fetch's side of HTTP: the request body buffered once so it can be sent again after a
 * payment, a send with or without a credential, and the offers of a refusal (headers and, at most
 * 64 KiB of, body).
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import { readLimited } from '../internal/streams.js';
import { type ParsedOffers, parseOffers } from './offers.js';
import type { PayingContext } from './paying-context.js';

const MAX_CHALLENGE_BODY_BYTES = 64 * 1024;

/**
 * The body of `request` in memory, or undefined when it has none. Throws `body_too_large` past
 * `maxBodyBytes`, before anything is sent.
 *
 * @internal
 */
export async function bufferedBody(
  context: PayingContext,
  request: Request,
): Promise<Uint8Array | undefined> {
  if (request.body === null) return undefined;
  const { maxBodyBytes } = context;
  const bytes = await readLimited(request.body, maxBodyBytes);
  if (bytes === undefined) {
    throw new TollwayError(
      'body_too_large',
      `the request body is larger than ${maxBodyBytes} bytes`,
      {
        details: { maxBodyBytes },
      },
    );
  }
  return bytes;
}

/**
 * Sends `request` with `body`, and `header` (a credential) set when given.
 *
 * @internal
 */
export function send(
  request: Request,
  body: Uint8Array | undefined,
  header: { name: string; value: string } | undefined,
): Promise<Response> {
  const headers = new Headers(request.headers);
  if (header !== undefined) headers.set(header.name, header.value);
  return fetch(new Request(request, { headers, ...(body !== undefined ? { body } : {}) }));
}

/** The body of a refusal, read from a copy; `undefined` when absent or too large. */
async function challengeBody(response: Response): Promise<string | undefined> {
  const copy = response.clone().body;
  if (copy === null) return undefined;
  const bytes = await readLimited(copy, MAX_CHALLENGE_BODY_BYTES);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/**
 * Every offer of a refusal (401 or 402): its headers, and its body for x402 v1 and price claims.
 * The response itself is left unread.
 *
 * @internal
 */
export async function readOffers(response: Response, now: number): Promise<ParsedOffers> {
  const body = await challengeBody(response);
  return parseOffers({ headers: response.headers, ...(body === undefined ? {} : { body }) }, now);
}
