/**
 * The paying fetch's side of HTTP: the request body buffered once so it can be sent again after a
 * payment, a send with or without a credential, and the offers of a refusal (headers and, at most
 * 64 KiB of, body).
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import { readLimited } from '../internal/streams.js';
import type { ParsedOffers } from './offers.js';
import type { PayingContext } from './paying-context.js';

const MAX_CHALLENGE_BODY_BYTES = 64 * 1024;

/**
 * A request of the paying fetch, read once: where it goes, its method (as the caller wrote it when
 * no Request was made; credentials match methods in any case), and what it is sent from each time
 * (a Request, or the URL and init the caller gave).
 *
 * @internal
 */
export type OutgoingRequest =
  | { url: URL; method: string; request: Request; init?: undefined }
  | { url: URL; method: string; request?: undefined; init: RequestInit | undefined };

/**
 * Reads the caller's arguments. A URL without a body stays a URL: `fetch` makes the one Request
 * it sends from it, and making one here too (an AbortSignal, a Headers, the URL parsed) cost a
 * call with a cached credential about 8 µs, as much as the rest of the paying fetch. Anything
 * else becomes a Request, whose body can be buffered.
 *
 * @internal
 */
export function outgoingRequest(
  input: string | URL | Request,
  init: RequestInit | undefined,
): OutgoingRequest {
  if (!(input instanceof Request) && (init?.body === undefined || init.body === null)) {
    return { url: new URL(input), method: init?.method ?? 'GET', init };
  }
  const request = new Request(input, init);
  return { url: new URL(request.url), method: request.method, request };
}

/**
 * The body of `outgoing` in memory, or undefined when it has none. Throws `body_too_large` past
 * `maxBodyBytes`, before anything is sent.
 *
 * @internal
 */
export async function bufferedBody(
  context: PayingContext,
  outgoing: OutgoingRequest,
): Promise<Uint8Array | undefined> {
  const body = outgoing.request?.body ?? null;
  if (body === null) return undefined;
  const { maxBodyBytes } = context;
  const bytes = await readLimited(body, maxBodyBytes);
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
 * Sends `outgoing` with `body`, and `header` (a credential) set when given. `fetch(input, init)`
 * makes the one Request it sends from them; building it here first would make two.
 *
 * @internal
 */
export function send(
  outgoing: OutgoingRequest,
  body: Uint8Array | undefined,
  header: CredentialHeader | undefined,
): Promise<Response> {
  const { request, init } = outgoing;
  if (request === undefined) {
    const headers = headersWith(init?.headers, header);
    return fetch(outgoing.url, headers === undefined ? init : { ...init, headers });
  }
  const headers = new Headers(request.headers);
  if (header !== undefined) headers.set(header.name, header.value);
  return fetch(request, body === undefined ? { headers } : { headers, body });
}

/** A header that carries a credential. */
type CredentialHeader = { name: string; value: string };

/** What a caller may give as a request's headers. */
type HeadersInit = NonNullable<RequestInit['headers']>;

/**
 * The caller's headers with `header` set. A plain record stays one, as a plain `fetch` call passes
 * it: a `Headers` built here has each value's characters checked twice, here and again when
 * `fetch` copies it into its Request (~0.9 µs of a call with a cached credential, a 600-character
 * L402 header).
 */
function headersWith(
  given: HeadersInit | undefined,
  header: CredentialHeader | undefined,
): HeadersInit | undefined {
  if (header === undefined) return given;
  if (given === undefined) return { [header.name]: header.value };
  if (isPlainRecord(given) && !namesHeader(given, header.name)) {
    return { ...given, [header.name]: header.value };
  }
  const headers = new Headers(given);
  headers.set(header.name, header.value);
  return headers;
}

function isPlainRecord(headers: HeadersInit): headers is Record<string, string> {
  const prototype: unknown = Object.getPrototypeOf(headers);
  return prototype === Object.prototype || prototype === null;
}

/** True when `headers` has a name equal to `name` in any case. */
function namesHeader(headers: Record<string, string>, name: string): boolean {
  const lower = name.toLowerCase();
  for (const key in headers) if (key.toLowerCase() === lower) return true;
  return false;
}

/**
 * `response` with `body` instead of its own; what else the caller reads of it (status, headers,
 * url, redirected) stays as it came.
 */
export function responseWithBody(response: Response, body: ReadableStream<Uint8Array>): Response {
  const copy = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  Object.defineProperties(copy, {
    url: { value: response.url },
    redirected: { value: response.redirected },
  });
  return copy;
}

/**
 * The body of a refusal, read from a copy; `undefined` when absent or too large.
 *
 * @internal
 */
export async function challengeBody(response: Response): Promise<string | undefined> {
  const copy = response.clone().body;
  if (copy === null) return undefined;
  const bytes = await readLimited(copy, MAX_CHALLENGE_BODY_BYTES);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/**
 * Every offer of a refusal (401 or 402): its headers, and its body for x402 v1 and price claims.
 * The response itself is left unread. The parsers (BOLT11, x402's wire codecs) are loaded with the
 * first refusal, so that calls answered with a saved credential never load them.
 *
 * @internal
 */
export async function readOffers(response: Response, now: number): Promise<ParsedOffers> {
  const body = await challengeBody(response);
  const { parseOffers } = await import('./offers.js');
  return parseOffers({ headers: response.headers, ...(body === undefined ? {} : { body }) }, now);
}
