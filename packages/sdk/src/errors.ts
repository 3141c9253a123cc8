/**
 * The catalogue of every error code Tollway raises or returns, with a one-line meaning.
 *
 * Codes are stable snake_case strings: programs branch on them, people read the message.
 * `docs/reference/errors.md` documents each one; a test fails when the two differ.
 */
export const errorCodes = {
  // amounts
  invalid_amount:
    'An amount could not be parsed, is negative, fractional in its base unit, or too large.',
  // encodings shared by every protocol
  invalid_hex: 'A value that must be hexadecimal is not, or has the wrong length.',
  invalid_base64: 'A value that must be base64 (standard or URL-safe) is not.',
  // macaroons and L402 tokens
  invalid_macaroon: 'The bytes are not a well-formed V2 binary macaroon.',
  invalid_identifier: 'The macaroon identifier is not a known L402 identifier layout.',
  unknown_identifier_version:
    'The macaroon identifier carries a version this implementation does not know.',
  invalid_caveat: 'A caveat is malformed (not `condition=value`) or has an invalid value.',
  invalid_signature: 'The macaroon signature does not match its root key and caveats.',
  caveat_not_satisfied: 'A caveat restricts the token and the request does not satisfy it.',
  unknown_caveat: 'Strict mode met a caveat condition it has no satisfier for.',
  third_party_caveat:
    'The macaroon has a third-party caveat; discharge verification is not supported.',
  token_expired: 'A `*_valid_until` caveat is in the past.',
  wrong_service: 'The token does not grant the service that was requested.',
  root_key_not_found: 'No root key is known for the token identifier (unknown or rotated out).',
  // L402 / MPP headers and proofs
  invalid_challenge:
    'A WWW-Authenticate challenge could not be parsed or lacks a required parameter.',
  invalid_credential: 'An Authorization credential could not be parsed.',
  conflicting_credentials: 'The request carries more than one Authorization credential.',
  invalid_preimage: 'The preimage is not 32 bytes of hex.',
  preimage_mismatch: 'sha256(preimage) does not equal the payment hash.',
  challenge_id_mismatch: 'An MPP challenge id does not match the HMAC of its parameters.',
  challenge_expired: 'An MPP challenge is past its `expires` time.',
  invalid_receipt: 'A Payment-Receipt header could not be parsed.',
  invalid_json:
    'A JSON payload is malformed, not canonical where it must be, or has the wrong shape.',
  // BOLT11
  invalid_invoice:
    'The BOLT11 invoice is malformed, its signature does not verify, or a field is out of range.',
  // Lightning backends and wallets
  invalid_connection_string:
    'A Lightning connection string or backend config is malformed or names an unknown backend.',
  unauthorized:
    'The Lightning backend rejected our credentials (macaroon, rune, API key, password or NWC key).',
  backend_unavailable:
    'The Lightning backend could not be reached, dropped the connection, or answered 5xx.',
  backend_error:
    'The Lightning backend answered with something we cannot read (garbage body, unexpected shape).',
  insufficient_balance: 'The wallet does not hold enough to pay the amount plus the maximum fee.',
  no_route: 'The backend found no route to the payee within the fee limit.',
  payment_timeout:
    'The payment did not complete in time; it may still succeed and must be resolved by payment hash.',
  payment_failed: 'The backend reports the payment as failed (definitively not paid).',
  invoice_expired: 'The invoice is past its expiry.',
  invoice_not_found: 'The backend knows no invoice or payment with that payment hash.',
  wrong_network: 'The invoice is for another network than the backend or wallet.',
  amount_required: 'The invoice has no amount and no amount was given.',
  amount_mismatch: 'An amount was given for an invoice that already names a different amount.',
  already_paid: 'The invoice was already paid by this wallet.',
  quota_exceeded: 'The wallet connection refused the payment because its own budget is spent.',
  capability_unsupported: 'The backend or wallet does not offer this operation.',
  unsupported_network: 'The invoice or request names a network Tollway does not know.',
} as const;

/** A stable error code; see {@link errorCodes}. */
export type TollwayErrorCode = keyof typeof errorCodes;

/** Options accepted by {@link TollwayError}. */
export interface TollwayErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Extra machine-readable facts (never secrets). */
  details?: Record<string, unknown>;
}

/**
 * The one error class of Tollway.
 *
 * @example
 * ```ts
 * try { decodeMacaroon(bytes); }
 * catch (e) { if (isTollwayError(e, 'invalid_macaroon')) console.log(e.message); }
 * ```
 */
export class TollwayError extends Error {
  override readonly name = 'TollwayError';
  readonly code: TollwayErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: TollwayErrorCode, message: string, options: TollwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** True when `error` is a {@link TollwayError}, and, when `code` is given, has that code. */
export function isTollwayError(error: unknown, code?: TollwayErrorCode): error is TollwayError {
  return error instanceof TollwayError && (code === undefined || error.code === code);
}

/**
 * The outcome of a check that the network can make fail: a value, or a reason code and message.
 * `verify*` functions return this instead of throwing.
 */
export type Result<T, C extends TollwayErrorCode = TollwayErrorCode> =
  | { ok: true; value: T }
  | { ok: false; code: C; message: string };

/** Builds a successful {@link Result}. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** Builds a failed {@link Result}. */
export function fail<C extends TollwayErrorCode>(
  code: C,
  message: string,
): { ok: false; code: C; message: string } {
  return { ok: false, code, message };
}
