/**
 * CORS for paywalled routes, so browser apps and in-browser agents can read a 402's challenges and
 * a paid response's receipt. The app's own CORS setup may replace it (`cors: false`).
 *
 * A browser sends `Origin` on every request the CORS protocol applies to (every cross-origin
 * request a script makes, and every request but GET and HEAD), so the engine's own answers (never
 * stored: `no-store`) and paid answers (for the client that paid alone) carry CORS headers only
 * when the request has `Origin`: agents outside a browser, the usual payers, get none. A free
 * answer may be stored by a shared cache and served to anyone, so it carries them always, as the
 * Fetch standard asks of a policy that does not depend on `Origin`.
 */
import type { PaywallRequest, PaywallResponse } from './types.js';

/** Which origins may read paywalled responses: `'*'` (default), one origin, or a list. */
export interface CorsOptions {
  origin?: string | readonly string[];
}

/** CORS headers for one paywall; see {@link createCors}. */
export interface Cors {
  /** Headers for the engine's own answers and paid answers to `request` (see the module comment). */
  headers(request: PaywallRequest): Array<[name: string, value: string]>;
  /**
   * Headers for a paid answer to `request` that carries none of the exposed headers (a paid
   * answer without a receipt): the origin alone, as there is nothing to expose.
   */
  originHeaders(request: PaywallRequest): Array<[name: string, value: string]>;
  /** Headers for a free answer to `request`: the origin, whether or not the request has `Origin`. */
  freeHeaders(request: PaywallRequest): Array<[name: string, value: string]>;
  /**
   * The answer to a preflight request, or undefined when `request` is not one; `method` is the
   * request's method in upper case.
   */
  preflight(request: PaywallRequest, method: string): PaywallResponse | undefined;
}

/** Response headers a client must be able to read: challenges and receipts of every protocol. */
const EXPOSED_HEADERS =
  'WWW-Authenticate, Payment-Receipt, PAYMENT-REQUIRED, PAYMENT-RESPONSE, Tollway-Charged, Tollway-Remaining, Tollway-Reserved, Tollway-Credential';
/** Request headers that carry credentials. */
const ALLOWED_HEADERS =
  'Authorization, Content-Type, Macaroon, Grpc-Metadata-Macaroon, PAYMENT-SIGNATURE, X-PAYMENT';
const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * Creates the CORS policy; `false` turns it off (no headers, no preflight answers).
 *
 * @example
 * ```ts
 * const cors = createCors({ origin: ['https://app.example.com'] });
 * response.headers.push(...cors.headers(request));
 * ```
 */
export function createCors(options: CorsOptions | false | undefined): Cors {
  if (options === false) {
    const none = () => [];
    return { headers: none, originHeaders: none, freeHeaders: none, preflight: () => undefined };
  }
  const origin = options?.origin ?? '*';
  const allowed = typeof origin === 'string' ? [origin] : [...origin];
  const anyAllowed = allowed.includes('*');

  /** The origin headers for a request whose `Origin` is `requested`. */
  function allowOrigin(requested: string | null): Array<[string, string]> {
    if (anyAllowed) return [['Access-Control-Allow-Origin', '*']];
    const vary: [string, string] = ['Vary', 'Origin'];
    if (requested === null || !allowed.includes(requested)) return [vary];
    return [['Access-Control-Allow-Origin', requested], vary];
  }

  // With `*` the headers never depend on which origin asks: built once, as they join every
  // paid answer to a browser. Callers copy what they get.
  const none: Array<[string, string]> = [];
  const expose: [string, string] = ['Access-Control-Expose-Headers', EXPOSED_HEADERS];
  const anyOrigin = allowOrigin(null);
  const anyOriginExposed = [...anyOrigin, expose];
  return {
    headers(request) {
      const requested = request.headers.get('origin');
      if (requested === null) return none;
      return anyAllowed ? anyOriginExposed : [...allowOrigin(requested), expose];
    },
    originHeaders(request) {
      const requested = request.headers.get('origin');
      if (requested === null) return none;
      return anyAllowed ? anyOrigin : allowOrigin(requested);
    },
    freeHeaders: (request) => (anyAllowed ? anyOrigin : allowOrigin(request.headers.get('origin'))),
    preflight(request, method) {
      if (method !== 'OPTIONS') return undefined;
      if (!request.headers.has('access-control-request-method')) return undefined;
      return {
        status: 204,
        headers: [
          ...allowOrigin(request.headers.get('origin')),
          ['Access-Control-Allow-Methods', ALLOWED_METHODS],
          ['Access-Control-Allow-Headers', ALLOWED_HEADERS],
          ['Access-Control-Max-Age', '600'],
        ],
        body: '',
      };
    },
  };
}
