/**
 * The v2 `PAYMENT-SIGNATURE` header a client sends to pay: base64 JSON of the accepted requirements
 * and the scheme's signed payload.
 */
import { z } from 'zod';
import type { X402PaymentPayload } from './types.js';
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

/** The v2 `PaymentPayload` object (also the `paymentPayload` of facilitator requests). */
export const paymentPayloadSchema: z.ZodType<X402PaymentPayload> = wireObject({
  x402Version: z.literal(2),
  resource: resourceInfoSchema.exactOptional(),
  accepted: requirementsSchema,
  payload: recordSchema,
  extensions: recordSchema.exactOptional(),
});

/** The wire form of a payment payload. */
export function paymentPayloadToWire(payload: X402PaymentPayload) {
  return {
    x402Version: payload.x402Version,
    ...(payload.resource !== undefined ? { resource: payload.resource } : {}),
    accepted: requirementsToWire(payload.accepted),
    payload: payload.payload,
    ...(payload.extensions !== undefined ? { extensions: payload.extensions } : {}),
  };
}

/**
 * Formats a `PAYMENT-SIGNATURE` header value. Throws `invalid_x402_payload` when the result would
 * not parse back, and `invalid_amount` for an amount outside uint256.
 *
 * @example
 * ```ts
 * const retry = await fetch(url, {
 *   headers: { 'PAYMENT-SIGNATURE': formatPaymentSignatureHeader({ x402Version: 2, accepted, payload }) },
 * });
 * ```
 */
export function formatPaymentSignatureHeader(payload: X402PaymentPayload): string {
  const wire = paymentPayloadToWire(payload);
  parseWith(paymentPayloadSchema, wire, 'PAYMENT-SIGNATURE');
  return encodeBase64Json(wire, 'PAYMENT-SIGNATURE');
}

/**
 * Parses a `PAYMENT-SIGNATURE` header value (x402 v2). Throws `invalid_x402_payload` for anything
 * that is not base64 JSON of a v2 PaymentPayload, and for values over `X402_MAX_HEADER_LENGTH`.
 *
 * @example
 * ```ts
 * const payment = parsePaymentSignatureHeader(request.headers.get('PAYMENT-SIGNATURE') ?? '');
 * payment.accepted.amount; // 10000n
 * ```
 */
export function parsePaymentSignatureHeader(value: string): X402PaymentPayload {
  return parseWith(
    paymentPayloadSchema,
    decodeBase64Json(value, 'PAYMENT-SIGNATURE'),
    'PAYMENT-SIGNATURE',
  );
}
