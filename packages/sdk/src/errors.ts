/**
 * The catalogue of every error code Tollway raises or returns, with a one-line meaning.
 *
 * Codes are stable snake_case strings: programs branch on them, people read the message.
 * `docs/reference/errors.md` documents each one with its HTTP status ({@link errorStatus}); a test
 * fails when the two differ.
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
  // stores
  store_error:
    'The store database failed: unreachable, a query error, used before init(), or a schema from a newer Tollway.',
  // paywall engine
  payment_required:
    'The request needs payment and carries no credential; the response offers ways to pay.',
  invalid_model:
    'The request names a model the service does not price (or none); the LLM route lists what it offers.',
  invalid_price:
    'A route price is malformed, not positive, or in USD without a configured rate source.',
  price_unavailable:
    'The price of the request could not be computed: the price function failed or the rate source did not answer.',
  invoice_unavailable:
    'The Lightning backend could not create the invoice for a payment challenge; retry later.',
  invoice_not_settled:
    'Strict mode: the Lightning backend does not report the invoice behind the credential as settled.',
  underpaid:
    'The payment behind a single-use credential is smaller than the price of this request.',
  price_exceeds_token:
    'The request costs more than the token paid per request (it was bought for a cheaper request); the 402 offers this price.',
  token_revoked: 'The token was revoked by the operator.',
  uses_exhausted: 'The token has used every request it was sold with.',
  balance_exhausted: 'The prepaid balance of the token does not cover the price of this request.',
  session_not_found:
    'The MPP session the credential names was never opened here (its open credential did not reach this service).',
  session_closed:
    'The MPP session the credential names is closed (by its payer, or after its idle timeout); its refund was paid or tried.',
  invalid_return_invoice:
    'An MPP session open credential carries a return invoice that is not an amountless, unexpired BOLT11 invoice on the same network.',
  credential_replayed:
    'A single-use credential (an MPP charge, an x402 payment) was already used, or is in use by a request still running.',
  rate_limited:
    "Too many requests or payment challenges from this token, this client network or all of them; retry after the delay given (a refused credential's 429 names the refusal in `refused`).",
  invalid_config:
    'A paywall or route option is malformed or contradictory (for example a master secret shorter than 32 bytes).',
  // agent budgets
  budget_exceeded:
    'The payment would take a budget window (hour, day, month, total; global or per origin) of the budget or an ancestor past its limit.',
  over_price: "The price is above a budget's per-request cap.",
  fee_too_high: "The routing-fee allowance of the payment is above a budget's fee cap.",
  origin_denied: "A budget's allow or deny list of origins forbids paying this origin.",
  payee_denied:
    "A budget's allow or deny list of payees forbids paying this payee (or the payee is unknown and an allow list is set).",
  approval_denied:
    "The budget's approval callback said no, threw, or is missing above the approval threshold.",
  payments_disabled:
    'The kill switch of the budget or an ancestor is on: no payment is made until it is enabled again.',
  payments_paused:
    "The agent's owner paused every payment made through this agent store (the ledger view's kill switch, or `ClientStore.setPaused`): nothing is paid until they resume.",
  // paying fetch
  no_payable_offer:
    'A 402 carries no offer the client can pay: none in a preferred protocol, on a wallet network, unexpired, or readable.',
  body_too_large:
    'The request body is larger than the paying fetch buffers to replay it after paying (maxBodyBytes).',
  fetch_failed:
    'An agent request (for example a `tollway mcp` fetch) could not be sent or answered: connection refused, DNS or TLS failure, or timeout.',
  // gateway (tollway serve)
  not_found:
    'No gateway service matches the host and path, or an admin API endpoint or resource does not exist.',
  upstream_unavailable:
    'The gateway could not reach the upstream of a service, or the upstream dropped the connection (502).',
  upstream_timeout:
    'The upstream of a service did not connect, answer or send the next chunk in time (504).',
  upstream_too_large:
    'The answer to an MCP tool call paid through `_meta` is larger than the gateway reads to settle it (502); the payment was not settled.',
  malformed_request:
    'The gateway cannot read the request: a malformed HTTP/1.1 request line or header, ambiguous framing (Content-Length with Transfer-Encoding, two Content-Lengths, a coding other than chunked), no or two Host headers, CONNECT, an upgrade to anything but a WebSocket, or a malformed `grpc-timeout`.',
  request_headers_too_large: 'The request headers are larger than the gateway reads (16 KiB).',
  request_timeout:
    "The request headers (or the whole request) did not arrive within the gateway's connection timeouts; the connection is closed.",
  invalid_path:
    'The request path is ambiguous: a dot segment (also encoded), an encoded slash or backslash, a backslash, a `;` parameter, an encoded control character, double encoding, a malformed escape, or a target form the gateway does not serve.',
  admin_unauthorized:
    'The admin API request carries no valid admin token or dashboard session, or a ledger view request (`tollway ledger --serve`) no valid token or session.',
  cross_origin_refused:
    "A change authorised by a page's session cookie (the gateway dashboard, the ledger view) did not come from the page's own origin (CSRF defence); scripts send the bearer token.",
  invalid_request:
    'An admin API request has a malformed query parameter or body, a request carries what its gateway service cannot accept (a body on GET or HEAD to a service priced by its body), or an `/l402/quote` request is malformed.',
  method_not_allowed:
    'A gateway discovery endpoint was asked with another method than it answers (GET for the documents, POST for `/l402/quote`).',
  quote_over_budget:
    "The token an `/l402/quote` request asks for costs more than its `max_price_msat` (Aperture's `unsatisfiable_budget`).",
  no_discovery:
    'No discovery document (`/.well-known/l402.json`, `/.well-known/x402.json`, `/openapi.json`) could be read at a URL given to `tollway discover`.',
  port_in_use:
    'A command could not listen: another program holds the address and port (`tollway serve`, `tollway mcp --http`, `tollway facilitator`).',
  // x402
  invalid_x402_payload:
    'An x402 header or body (PAYMENT-REQUIRED, PAYMENT-SIGNATURE, PAYMENT-RESPONSE, their v1 forms, a facilitator request) is not base64 JSON of the expected shape, or is too large.',
  facilitator_unavailable:
    'The x402 facilitator, or the chain RPC behind a self-hosted one, could not be reached, timed out or failed; retry later.',
  facilitator_error:
    'The x402 facilitator answered something that is not a verdict, or refused the request as malformed.',
  x402_payment_invalid:
    'The facilitator refused an x402 payment (bad signature, wrong amount or recipient, expired, insufficient balance, nonce used); `detail` names its x402 reason.',
  x402_settlement_failed:
    'The facilitator could not settle an x402 payment on chain; the PAYMENT-RESPONSE header carries its x402 reason.',
  x402_refund_refused:
    'An x402 batch-settlement refund was not made: the channel has nothing left to refund, another refund of it is under way, or the refund failed on chain; the PAYMENT-RESPONSE header carries the x402 reason.',
  x402_voucher_mismatch:
    "An x402 batch-settlement voucher (paying for the request, or asking for a refund) is for less than the channel drew: it was used already, a later one was, or the payer's record of the channel is behind. The 402's PAYMENT-REQUIRED (error `invalid_batch_settlement_evm_cumulative_amount_mismatch`) carries the channel's state and its highest voucher, from which the payer signs again.",
  // bugs
  internal_error:
    'Tollway failed unexpectedly (a bug) while answering a request and answered 500; the server logged why.',
} as const;

/** A stable error code; see {@link errorCodes}. */
export type TollwayErrorCode = keyof typeof errorCodes;

/**
 * The HTTP status of a JSON problem body carrying each code: what the engine, the adapters, the
 * gateway, the dev node and the facilitator handler answer with, unless the place that answers has
 * a reason of its own (a paywall answers every refused credential with a new challenge: 401, or 402
 * for x402; the facilitator API answers a malformed request 400). Codes that only an agent meets
 * have the status that says the same thing over HTTP. `docs/reference/errors.md` shows it beside
 * each code.
 */
export const errorStatus: Readonly<Record<TollwayErrorCode, number>> = {
  // amounts
  invalid_amount: 400,
  // encodings shared by every protocol
  invalid_hex: 400,
  invalid_base64: 400,
  // macaroons and L402 tokens
  invalid_macaroon: 401,
  invalid_identifier: 401,
  unknown_identifier_version: 401,
  invalid_caveat: 401,
  invalid_signature: 401,
  caveat_not_satisfied: 401,
  unknown_caveat: 401,
  third_party_caveat: 401,
  token_expired: 401,
  wrong_service: 401,
  root_key_not_found: 401,
  // L402 / MPP headers and proofs
  invalid_challenge: 502,
  invalid_credential: 401,
  conflicting_credentials: 400,
  invalid_preimage: 401,
  preimage_mismatch: 401,
  challenge_id_mismatch: 401,
  challenge_expired: 401,
  invalid_receipt: 502,
  invalid_json: 400,
  // BOLT11
  invalid_invoice: 400,
  // Lightning backends and wallets
  invalid_connection_string: 400,
  unauthorized: 401,
  backend_unavailable: 503,
  backend_error: 502,
  insufficient_balance: 422,
  no_route: 422,
  payment_timeout: 504,
  payment_failed: 422,
  invoice_expired: 422,
  invoice_not_found: 404,
  wrong_network: 400,
  amount_required: 400,
  amount_mismatch: 400,
  already_paid: 409,
  quota_exceeded: 422,
  capability_unsupported: 404,
  unsupported_network: 400,
  // stores
  store_error: 503,
  // paywall engine
  payment_required: 402,
  invalid_model: 400,
  invalid_price: 400,
  price_unavailable: 503,
  invoice_unavailable: 503,
  invoice_not_settled: 401,
  underpaid: 401,
  price_exceeds_token: 402,
  token_revoked: 401,
  uses_exhausted: 402,
  balance_exhausted: 402,
  session_not_found: 401,
  session_closed: 401,
  invalid_return_invoice: 400,
  credential_replayed: 401,
  rate_limited: 429,
  invalid_config: 400,
  // agent budgets
  budget_exceeded: 402,
  over_price: 402,
  fee_too_high: 402,
  origin_denied: 403,
  payee_denied: 403,
  approval_denied: 403,
  payments_disabled: 403,
  payments_paused: 403,
  // paying fetch
  no_payable_offer: 402,
  body_too_large: 413,
  fetch_failed: 502,
  // gateway (tollway serve)
  not_found: 404,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  upstream_too_large: 502,
  admin_unauthorized: 401,
  cross_origin_refused: 403,
  malformed_request: 400,
  request_headers_too_large: 431,
  request_timeout: 408,
  invalid_path: 400,
  invalid_request: 400,
  method_not_allowed: 405,
  quote_over_budget: 409,
  no_discovery: 404,
  // command line
  port_in_use: 503,
  // x402
  invalid_x402_payload: 402,
  facilitator_unavailable: 503,
  facilitator_error: 502,
  x402_payment_invalid: 402,
  x402_settlement_failed: 402,
  x402_refund_refused: 402,
  x402_voucher_mismatch: 402,
  // bugs
  internal_error: 500,
};

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
