/**
 * The v2 `PAYMENT-REQUIRED` header a server sends with a 402: base64 JSON of the resource and the
 * ways to pay for it (`accepts`).
 */
import { z } from 'zod';
import type { X402PaymentRequired } from './types.js';
import {
  decodeBase64Json,
  encodeBase64Json,
  parseWith,
  recordSchema,
  requirementsSchema,
  requirementsToWire,
  resourceInfoSchema,
  wireObject,
} from './wire.js';

/** The most payment options one challenge may carry. */
const MAX_ACCEPTS = 64;

const paymentRequiredSchema: z.ZodType<X402PaymentRequired> = wireObject({
  x402Version: z.literal(2),
  error: z.string().exactOptional(),
  resource: resourceInfoSchema,
  accepts: z.array(requirementsSchema).max(MAX_ACCEPTS),
  extensions: recordSchema.exactOptional(),
});

/**
 * Formats a `PAYMENT-REQUIRED` header value. Throws `invalid_x402_payload` when the result would
 * not parse back (a malformed field, or longer than `X402_MAX_HEADER_LENGTH`), and `invalid_amount`
 * for an amount outside uint256.
 *
 * @example
 * ```ts
 * headers.set('PAYMENT-REQUIRED', formatPaymentRequiredHeader({
 *   x402Version: 2,
 *   resource: { url: 'https://api.example.com/forecast' },
 *   accepts: [{ scheme: 'exact', network: 'eip155:8453', asset: usdc, amount: 10_000n, payTo,
 *     maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' } }],
 * }));
 * ```
 */
export function formatPaymentRequiredHeader(required: X402PaymentRequired): string {
  const wire = {
    x402Version: required.x402Version,
    ...(required.error !== undefined ? { error: required.error } : {}),
    resource: required.resource,
    accepts: required.accepts.map(requirementsToWire),
    ...(required.extensions !== undefined ? { extensions: required.extensions } : {}),
  };
  parseWith(paymentRequiredSchema, wire, 'PAYMENT-REQUIRED');
  return encodeBase64Json(wire, 'PAYMENT-REQUIRED');
}

/**
 * Parses a `PAYMENT-REQUIRED` header value (x402 v2). Throws `invalid_x402_payload` for anything
 * that is not base64 JSON of a v2 PaymentRequired, and for values over `X402_MAX_HEADER_LENGTH`.
 *
 * @example
 * ```ts
 * const required = parsePaymentRequiredHeader(response.headers.get('PAYMENT-REQUIRED') ?? '');
 * required.accepts[0]?.amount; // 10000n
 * ```
 */
export function parsePaymentRequiredHeader(value: string): X402PaymentRequired {
  return parseWith(
    paymentRequiredSchema,
    decodeBase64Json(value, 'PAYMENT-REQUIRED'),
    'PAYMENT-REQUIRED',
  );
}
