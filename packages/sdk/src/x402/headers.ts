/**
 * The names of the x402 HTTP headers. HTTP header names are case-insensitive; these are the
 * spellings the x402 specification uses.
 *
 * @example
 * ```ts
 * const value = request.headers.get(X402_HEADERS.paymentSignature) ?? request.headers.get(X402_HEADERS.paymentV1);
 * ```
 */
export const X402_HEADERS = {
  /** v2, server to client on a 402: the ways to pay. */
  paymentRequired: 'PAYMENT-REQUIRED',
  /** v2, client to server: the signed payment. */
  paymentSignature: 'PAYMENT-SIGNATURE',
  /** v2, server to client: the settlement outcome. */
  paymentResponse: 'PAYMENT-RESPONSE',
  /** v1, client to server: the signed payment. */
  paymentV1: 'X-PAYMENT',
  /** v1, server to client: the settlement outcome. */
  paymentResponseV1: 'X-PAYMENT-RESPONSE',
} as const;
