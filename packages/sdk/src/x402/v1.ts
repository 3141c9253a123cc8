/**
 * x402 v1 on the wire: the 402 response body `{x402Version: 1, error, accepts}` (JSON text), the
 * `X-PAYMENT` request header and the `X-PAYMENT-RESPONSE` response header (base64 JSON). Amounts
 * are read into bigints and network names into CAIP-2 ids; writing does the reverse.
 */
import { z } from 'zod';
import type {
  X402PaymentPayloadV1,
  X402PaymentRequiredV1,
  X402PaymentRequirementsV1,
  X402SettleResponseV1,
} from './types.js';
import { networkFromV1, networkToV1 } from './v1-networks.js';
import {
  amountSchema,
  decodeBase64Json,
  encodeBase64Json,
  formatAmount,
  fromJson,
  invalidPayload,
  parseWith,
  recordSchema,
  toJson,
  wireObject,
  X402_MAX_BODY_LENGTH,
} from './wire.js';

const MAX_ACCEPTS = 64;

const v1NetworkSchema = z
  .string()
  .regex(/^[a-z0-9-]{1,64}$/, 'expected an x402 v1 network name')
  .transform(networkFromV1);

const requirementsV1Schema: z.ZodType<X402PaymentRequirementsV1> = wireObject({
  scheme: z.string().min(1),
  network: v1NetworkSchema,
  maxAmountRequired: amountSchema,
  resource: z.string().min(1),
  description: z.string().default(''),
  mimeType: z.string().default(''),
  outputSchema: recordSchema.exactOptional(),
  payTo: z.string().min(1),
  maxTimeoutSeconds: z.number().int().positive(),
  asset: z.string().min(1),
  extra: recordSchema.default(() => ({})),
});

const paymentRequiredV1Schema: z.ZodType<X402PaymentRequiredV1> = wireObject({
  x402Version: z.literal(1),
  error: z.string().exactOptional(),
  accepts: z.array(requirementsV1Schema).max(MAX_ACCEPTS),
});

const paymentPayloadV1Schema: z.ZodType<X402PaymentPayloadV1> = wireObject({
  x402Version: z.literal(1),
  scheme: z.string().min(1),
  network: v1NetworkSchema,
  payload: recordSchema,
});

const settleResponseV1Schema: z.ZodType<X402SettleResponseV1> = wireObject({
  success: z.boolean(),
  errorReason: z.string().exactOptional(),
  errorMessage: z.string().exactOptional(),
  payer: z.string().exactOptional(),
  transaction: z.string(),
  network: v1NetworkSchema,
});

/** The wire form of v1 requirements (the resource inline, the network by name). */
function requirementsV1ToWire(requirements: X402PaymentRequirementsV1) {
  return {
    scheme: requirements.scheme,
    network: networkToV1(requirements.network),
    maxAmountRequired: formatAmount(requirements.maxAmountRequired),
    resource: requirements.resource,
    description: requirements.description,
    mimeType: requirements.mimeType,
    ...(requirements.outputSchema !== undefined ? { outputSchema: requirements.outputSchema } : {}),
    payTo: requirements.payTo,
    maxTimeoutSeconds: requirements.maxTimeoutSeconds,
    asset: requirements.asset,
    extra: requirements.extra,
  };
}

/**
 * Formats the JSON body of an x402 v1 402 response. Throws `unsupported_network` for a network v1
 * cannot name, `invalid_amount` for an amount outside uint256, and `invalid_x402_payload` when the
 * result would not parse back.
 *
 * @example
 * ```ts
 * res.writeHead(402, { 'Content-Type': 'application/json' }).end(formatPaymentRequiredV1Body({
 *   x402Version: 1, error: 'X-PAYMENT header is required',
 *   accepts: [{ scheme: 'exact', network: 'eip155:84532', maxAmountRequired: 10_000n, resource: url,
 *     description: 'Forecast', mimeType: 'application/json', payTo, maxTimeoutSeconds: 60, asset: usdc,
 *     extra: { name: 'USDC', version: '2' } }],
 * }));
 * ```
 */
export function formatPaymentRequiredV1Body(required: X402PaymentRequiredV1): string {
  const wire = {
    x402Version: required.x402Version,
    ...(required.error !== undefined ? { error: required.error } : {}),
    accepts: required.accepts.map(requirementsV1ToWire),
  };
  parseWith(paymentRequiredV1Schema, wire, 'x402 v1 body');
  const text = toJson(wire);
  if (text.length > X402_MAX_BODY_LENGTH) {
    throw invalidPayload(`x402 v1 body is longer than ${X402_MAX_BODY_LENGTH} characters`);
  }
  return text;
}

/**
 * Parses the JSON body of an x402 v1 402 response. Members beyond `x402Version`, `error` and
 * `accepts` are ignored (a Tollway 402 body carries its other offers beside them). Throws
 * `invalid_x402_payload` for a malformed body or one over `X402_MAX_BODY_LENGTH`, and
 * `unsupported_network` for a network name outside the v1 list.
 *
 * @example
 * ```ts
 * const required = parsePaymentRequiredV1Body(await response.text());
 * required.accepts[0]?.network; // 'eip155:84532' (sent as "base-sepolia")
 * ```
 */
export function parsePaymentRequiredV1Body(text: string): X402PaymentRequiredV1 {
  if (text.length > X402_MAX_BODY_LENGTH) {
    throw invalidPayload(`x402 v1 body is longer than ${X402_MAX_BODY_LENGTH} characters`);
  }
  return parseWith(paymentRequiredV1Schema, fromJson(text, 'x402 v1 body'), 'x402 v1 body');
}

/**
 * Formats an `X-PAYMENT` header value (x402 v1). Throws `unsupported_network` for a network v1
 * cannot name and `invalid_x402_payload` when the result would not parse back.
 *
 * @example
 * ```ts
 * headers.set('X-PAYMENT', formatXPaymentHeader({ x402Version: 1, scheme: 'exact', network: 'eip155:8453', payload }));
 * ```
 */
export function formatXPaymentHeader(payload: X402PaymentPayloadV1): string {
  const wire = {
    x402Version: payload.x402Version,
    scheme: payload.scheme,
    network: networkToV1(payload.network),
    payload: payload.payload,
  };
  parseWith(paymentPayloadV1Schema, wire, 'X-PAYMENT');
  return encodeBase64Json(wire, 'X-PAYMENT');
}

/**
 * Parses an `X-PAYMENT` header value (x402 v1). Throws `invalid_x402_payload` for anything that is
 * not base64 JSON of a v1 PaymentPayload, and `unsupported_network` for an unknown network name.
 *
 * @example
 * ```ts
 * const payment = parseXPaymentHeader(request.headers.get('X-PAYMENT') ?? '');
 * payment.network; // 'eip155:8453' (sent as "base")
 * ```
 */
export function parseXPaymentHeader(value: string): X402PaymentPayloadV1 {
  return parseWith(paymentPayloadV1Schema, decodeBase64Json(value, 'X-PAYMENT'), 'X-PAYMENT');
}

/**
 * Formats an `X-PAYMENT-RESPONSE` header value (x402 v1). Throws `unsupported_network` for a
 * network v1 cannot name and `invalid_x402_payload` when the result would not parse back.
 *
 * @example
 * ```ts
 * headers.set('X-PAYMENT-RESPONSE', formatXPaymentResponseHeader({ success: true, transaction, network: 'eip155:8453', payer }));
 * ```
 */
export function formatXPaymentResponseHeader(response: X402SettleResponseV1): string {
  const wire = { ...response, network: networkToV1(response.network) };
  parseWith(settleResponseV1Schema, wire, 'X-PAYMENT-RESPONSE');
  return encodeBase64Json(wire, 'X-PAYMENT-RESPONSE');
}

/**
 * Parses an `X-PAYMENT-RESPONSE` header value (x402 v1). Throws `invalid_x402_payload` for anything
 * that is not base64 JSON of a v1 SettleResponse, and `unsupported_network` for an unknown network.
 *
 * @example
 * ```ts
 * const receipt = parseXPaymentResponseHeader(response.headers.get('X-PAYMENT-RESPONSE') ?? '');
 * ```
 */
export function parseXPaymentResponseHeader(value: string): X402SettleResponseV1 {
  return parseWith(
    settleResponseV1Schema,
    decodeBase64Json(value, 'X-PAYMENT-RESPONSE'),
    'X-PAYMENT-RESPONSE',
  );
}
