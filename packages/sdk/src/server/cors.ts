/**
 * CORS for paywalled routes, so browser apps and in-browser agents can read a 402's challenges and
 * a paid response's receipt. The app's own CORS setup may replace it (`cors: false`).
 */
import type { PaywallRequest, PaywallResponse } from './types.js';

/** Which origins may read paywalled responses: `'*'` (default), one origin, or a list. */
export interface CorsOptions {
  origin?: string | readonly string[];
}

/** CORS headers for one paywall; see {@link createCors}. */
export interface Cors {
  /** Headers for any response to `request`. */
  headers(request: PaywallRequest): Array<[name: string, value: string]>;
  /**
   * Headers for a response to `request` that carries none of the exposed headers (a paid answer
   * without a receipt): the origin alone, as there is nothing to expose.
   */
  originHeaders(request: PaywallRequest): Array<[name: string, value: string]>;
  /** The answer to a preflight request, or undefined when `request` is not one. */
  preflight(request: PaywallRequest): PaywallResponse | undefined;
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
    return { headers: () => [], originHeaders: () => [], preflight: () => undefined };
  }
  const origin = options?.origin ?? '*';
  const allowed = typeof origin === 'string' ? [origin] : [...origin];
  const anyAllowed = allowed.includes('*');

  function allowOrigin(request: PaywallRequest): Array<[string, string]> {
    if (anyAllowed) return [['Access-Control-Allow-Origin', '*']];
    const requested = request.headers.get('origin');
    const vary: [string, string] = ['Vary', 'Origin'];
    if (requested === null || !allowed.includes(requested)) return [vary];
    return [['Access-Control-Allow-Origin', requested], vary];
  }

  // With `*` the headers never depend on the request: build them once (this runs on every paid request).
  const anyOrigin: Array<[string, string]> = [
    ['Access-Control-Allow-Origin', '*'],
    ['Access-Control-Expose-Headers', EXPOSED_HEADERS],
  ];
  const anyOriginOnly = anyOrigin.slice(0, 1);
  return {
    headers: (request) =>
      anyAllowed
        ? anyOrigin
        : [...allowOrigin(request), ['Access-Control-Expose-Headers', EXPOSED_HEADERS]],
    originHeaders: (request) => (anyAllowed ? anyOriginOnly : allowOrigin(request)),
    preflight(request) {
      if (request.method.toUpperCase() !== 'OPTIONS') return undefined;
      if (!request.headers.has('access-control-request-method')) return undefined;
      return {
        status: 204,
        headers: [
          ...allowOrigin(request),
          ['Access-Control-Allow-Methods', ALLOWED_METHODS],
          ['Access-Control-Allow-Headers', ALLOWED_HEADERS],
          ['Access-Control-Max-Age', '600'],
        ],
        body: '',
      };
    },
  };
}
