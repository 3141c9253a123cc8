/**
 * `WWW-Authenticate: Payment …` challenges (draft-httpauth-payment).
 */
import { TollwayError } from '../errors.js';
import { formatChallenge, parseChallenges } from '../internal/www-authenticate.js';

/** The auth-params of one `Payment` challenge. Absent and empty optional parameters are alike. */
export interface PaymentChallenge {
  /** The challenge id; for our own challenges an HMAC of the other parameters. */
  id: string;
  /** The protection space. */
  realm: string;
  /** The payment method, e.g. `lightning`. */
  method: string;
  /** The intent, e.g. `charge` or `session`. */
  intent: string;
  /** base64url of the JCS JSON payment request (see `decodeChargeRequest`). */
  request: string;
  /** RFC 3339 time after which the challenge is no longer accepted. */
  expires?: string;
  /** RFC 9530 digest of the request body the challenge is bound to. */
  digest?: string;
  /** Human-readable text; not covered by the challenge id. */
  description?: string;
  /** base64url of JCS JSON correlation data chosen by the server. */
  opaque?: string;
}

const REQUIRED = ['id', 'realm', 'method', 'intent', 'request'] as const;

/**
 * Formats a challenge as a `WWW-Authenticate` value: `Payment id="…", realm="…", method="…",
 * intent="…", request="…"`, then `expires`, `digest`, `description`, `opaque` when non-empty,
 * every value quoted. Throws `invalid_challenge` when a value cannot be carried in a header (see
 * `formatChallenge`).
 *
 * @example
 * ```ts
 * headers.append('WWW-Authenticate', formatPaymentChallenge(challenge));
 * ```
 */
export function formatPaymentChallenge(challenge: PaymentChallenge): string {
  const optional = (value: string | undefined): string | undefined =>
    value === '' ? undefined : value;
  return formatChallenge('Payment', {
    id: challenge.id,
    realm: challenge.realm,
    method: challenge.method,
    intent: challenge.intent,
    request: challenge.request,
    expires: optional(challenge.expires),
    digest: optional(challenge.digest),
    description: optional(challenge.description),
    opaque: optional(challenge.opaque),
  });
}

/**
 * Reads every complete `Payment` challenge from `WWW-Authenticate` values, in order. The scheme and
 * parameter names are case-insensitive; challenges of other schemes are passed over without their
 * parameters leaking into ours; a repeated parameter keeps its first value; unknown parameters
 * are ignored. A challenge without a non-empty `id`, `realm`, `method`, `intent` and `request` is
 * skipped. Throws `invalid_challenge` when no complete `Payment` challenge is left (its `details`
 * list why each one was skipped).
 *
 * @example
 * ```ts
 * const offers = parsePaymentChallenges(response.headers.get('www-authenticate') ?? '');
 * const charge = offers.find((c) => c.method === 'lightning' && c.intent === 'charge');
 * ```
 */
export function parsePaymentChallenges(value: string | readonly string[]): PaymentChallenge[] {
  const found: PaymentChallenge[] = [];
  const skipped: string[] = [];
  for (const { schemeLower, params } of parseChallenges(value)) {
    if (schemeLower !== 'payment') continue;
    const { id, realm, method, intent, request } = params;
    if (!id || !realm || !method || !intent || !request) {
      skipped.push(`missing ${REQUIRED.filter((name) => !params[name]).join(', ')}`);
      continue;
    }
    const challenge: PaymentChallenge = { id, realm, method, intent, request };
    for (const name of ['expires', 'digest', 'description', 'opaque'] as const) {
      const text = params[name];
      if (text) challenge[name] = text;
    }
    found.push(challenge);
  }
  if (found.length === 0) {
    const why =
      skipped.length === 0
        ? 'no Payment challenge'
        : `every Payment challenge is incomplete (${skipped.join('; ')})`;
    throw new TollwayError('invalid_challenge', why, { details: { skipped } });
  }
  return found;
}
