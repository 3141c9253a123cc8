/**
 * What the four framework adapters share: their options, the client address they report, and the
 * answer they give when the engine itself fails. Internal to the adapters.
 */
import { TollwayError } from '../errors.js';
import { findDuplicateKey } from '../internal/json-keys.js';
import { isPromiseLike } from '../internal/promise.js';
import type { Paywall } from '../server/paywall.js';
import { createProblemResponse } from '../server/problem.js';
import type { Route } from '../server/route.js';
import type { HeaderReader, PaywallDecision, PaywallRequest } from '../server/types.js';

/** The part of a paywall an adapter calls: what `createPaywall(…)` returns has it. */
export type PaywallHandler = Pick<Paywall, 'handle'>;

/** Options every adapter accepts. */
export interface AdapterOptions {
  /**
   * Whether to believe `X-Forwarded-For` for the client address (which freebies and rate limits
   * key on). `false` (default): the socket's peer. `true`: the left-most address, which only a
   * proxy that overwrites the header makes trustworthy. A number `n`: the address `n` hops back
   * from the socket, for `n` trusted proxies that each append (`1`: the last address).
   */
  trustProxy?: boolean | number;
  /** Largest request body read for routes priced by body (`readsBody`), in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Told when translating a request for the engine throws (a bug: the adapter then answers 500
   * `internal_error` with a problem body). The engine catches its own failures and reports them to
   * the paywall's `logger`. Default: `console.error`.
   */
  onError?: (error: unknown) => void;
}

/** The default {@link AdapterOptions.bodyLimit}: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1_048_576;

/** Throws `invalid_config` for options that cannot work, so a mistake fails at startup. */
export function assertAdapterOptions(options: AdapterOptions): void {
  const { trustProxy, bodyLimit } = options;
  if (typeof trustProxy === 'number' && (!Number.isSafeInteger(trustProxy) || trustProxy < 0)) {
    throw new TollwayError('invalid_config', 'trustProxy must be a boolean or a whole number >= 0');
  }
  if (bodyLimit !== undefined && (!Number.isSafeInteger(bodyLimit) || bodyLimit < 0)) {
    throw new TollwayError('invalid_config', 'bodyLimit must be a whole number of bytes >= 0');
  }
}

/**
 * The client address: the socket's peer, or an `X-Forwarded-For` entry as `trustProxy` says
 * (see {@link AdapterOptions.trustProxy}).
 */
export function resolveClientIp(
  socketAddress: string | undefined,
  forwardedFor: string | null | undefined,
  trustProxy: boolean | number | undefined,
): string {
  const peer = socketAddress ?? '';
  if (forwardedFor === null || forwardedFor === undefined || !trustProxy) return peer;
  const hops = forwardedFor
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const index = trustProxy === true ? 0 : Math.max(hops.length - trustProxy, 0);
  return hops[index] ?? peer;
}

/**
 * A request as an adapter hands it to the engine, its client address read on first use: only a
 * request without a valid credential needs it (for freebies and rate limits), and reading it is
 * not free (Express's `req.ip` runs `proxy-addr`, 0.3–0.6 µs; Hono's `getConnInfo` reads three
 * socket properties into two new objects). A class, so every request has one shape and the
 * getter lives on the prototype. It stays inside the adapter: `{ ...request }` would not copy the
 * address, so what an adapter gives its callers (`createPaywallRequest`) is a plain object.
 */
export class AdapterRequest implements PaywallRequest {
  method: string;
  url: string;
  headers: HeaderReader;
  authorization: readonly string[] | undefined;
  jsonBody: (() => Promise<unknown>) | undefined;
  offers: readonly string[] | undefined = undefined;
  payment: PaywallRequest['payment'] = undefined;
  reportsOutcome: boolean;
  #clientIp: string | undefined = undefined;
  readonly #readClientIp: () => string;

  // Positional parameters: a parameter object would be one more allocation per request.
  constructor(
    method: string,
    url: string,
    headers: HeaderReader,
    authorization: readonly string[] | undefined,
    jsonBody: (() => Promise<unknown>) | undefined,
    reportsOutcome: boolean,
    readClientIp: () => string,
  ) {
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.authorization = authorization;
    this.jsonBody = jsonBody;
    this.reportsOutcome = reportsOutcome;
    this.#readClientIp = readClientIp;
  }

  get clientIp(): string {
    this.#clientIp ??= this.#readClientIp();
    return this.#clientIp;
  }
}

/** Throws `invalid_json` when a body is larger than `limit` bytes. */
export function assertBodySize(size: number, limit: number): void {
  if (size > limit) {
    throw new TollwayError('invalid_json', `the request body exceeds ${limit} bytes`, {
      details: { limit },
    });
  }
}

/**
 * Parses a request body as JSON: `undefined` when empty; `invalid_json` when malformed, and when
 * an object repeats a key (parsers disagree on which one counts, so the body could be priced on
 * one value and run on another).
 */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  let text: string;
  let body: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    body = JSON.parse(text);
  } catch (cause) {
    throw new TollwayError('invalid_json', 'the request body is not JSON', { cause });
  }
  const repeated = typeof body === 'object' && body !== null ? findDuplicateKey(text) : undefined;
  if (repeated !== undefined) {
    throw new TollwayError(
      'invalid_json',
      `the request body has the key ${JSON.stringify(repeated.slice(0, 64))} twice in one object`,
    );
  }
  return body;
}

/** The answer when the engine or the translation threw (a bug): reported, then a 500. */
function failed<S>(
  error: unknown,
  source: S,
  onError: ((error: unknown, source: S) => void) | undefined,
): PaywallDecision {
  if (onError === undefined) console.error(error);
  else onError(error, source);
  return {
    kind: 'respond',
    response: createProblemResponse(
      {
        status: 500,
        code: 'internal_error',
        detail: 'The paywall failed while handling this request; the server logged why.',
      },
      [['Cache-Control', 'no-store']],
    ),
  };
}

/**
 * Asks the engine for a decision about `source` (the framework's request, translated by
 * `translate`): the decision itself when the engine had it at once, else a promise. The engine
 * never throws; should it or the translation still throw (a bug), reports the error and answers
 * 500 with a problem body rather than crash.
 */
export function decide<S>(
  paywall: PaywallHandler,
  route: Route,
  translate: (source: S) => PaywallRequest,
  source: S,
  onError: ((error: unknown, source: S) => void) | undefined,
): PaywallDecision | Promise<PaywallDecision> {
  try {
    const decision = paywall.handle(translate(source), route);
    if (!isPromiseLike(decision)) return decision;
    return Promise.resolve(decision).catch((error: unknown) => failed(error, source, onError));
  } catch (error) {
    return failed(error, source, onError);
  }
}
