/**
 * The v2 `PAYMENT-RESPONSE` header a server sends after settling (on success, and on a 402 when
 * settlement failed): base64 JSON of the facilitator's settlement outcome.
 */
import { z } from 'zod';
import type { X402SettleResponse } from './types.js';
import {
  amountSchema,
  decodeBase64Json,
  encodeBase64Json,
  formatAmount,
  networkSchema,
  parseWith,
  recordSchema,
  wireObject,
} from './wire.js';

const settleResponseShape = wireObject({
  success: z.boolean(),
  errorReason: z.string().exactOptional(),
  errorMessage: z.string().exactOptional(),
  payer: z.string().exactOptional(),
  transaction: z.string(),
  network: networkSchema,
  amount: amountSchema.exactOptional(),
  extensions: recordSchema.exactOptional(),
  extensionResponses: recordSchema.exactOptional(),
  extra: recordSchema.exactOptional(),
});

/**
 * The `SettleResponse` object (also a facilitator's `/settle` answer). Some schemes send
 * `"amount": ""` when there is nothing to report; it reads as absent.
 */
export const settleResponseSchema: z.ZodType<X402SettleResponse> = z.preprocess((value) => {
  if (typeof value !== 'object' || value === null || !('amount' in value) || value.amount !== '') {
    return value;
  }
  const { amount: _empty, ...rest } = value;
  return rest;
}, settleResponseShape);

/** The wire form of a settlement outcome. */
export function settleResponseToWire(response: X402SettleResponse) {
  const { amount, ...rest } = response;
  return amount === undefined ? rest : { ...rest, amount: formatAmount(amount) };
}

/**
 * Formats a `PAYMENT-RESPONSE` header value. Throws `invalid_x402_payload` when the result would
 * not parse back.
 *
 * @example
 * ```ts
 * headers.set('PAYMENT-RESPONSE', formatPaymentResponseHeader(await facilitator.settle(payment, requirements)));
 * ```
 */
export function formatPaymentResponseHeader(response: X402SettleResponse): string {
  const wire = settleResponseToWire(response);
  parseWith(settleResponseSchema, wire, 'PAYMENT-RESPONSE');
  return encodeBase64Json(wire, 'PAYMENT-RESPONSE');
}

/**
 * Parses a `PAYMENT-RESPONSE` header value (x402 v2). Throws `invalid_x402_payload` for anything
 * that is not base64 JSON of a SettleResponse.
 *
 * @example
 * ```ts
 * const receipt = parsePaymentResponseHeader(response.headers.get('PAYMENT-RESPONSE') ?? '');
 * if (receipt.success) console.log('paid in', receipt.transaction);
 * ```
 */
export function parsePaymentResponseHeader(value: string): X402SettleResponse {
  return parseWith(
    settleResponseSchema,
    decodeBase64Json(value, 'PAYMENT-RESPONSE'),
    'PAYMENT-RESPONSE',
  );
}
