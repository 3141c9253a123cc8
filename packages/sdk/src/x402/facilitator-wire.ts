/**
 * The JSON bodies of the x402 facilitator HTTP API, shared by the client and the handler. Internal:
 * not exported from the package.
 *
 * `POST /verify` and `POST /settle` take `{x402Version, paymentPayload, paymentRequirements}` and
 * answer a VerifyResponse or SettleResponse; `GET /supported` answers a SupportedResponse.
 */
import { z } from 'zod';
import { paymentPayloadSchema, paymentPayloadToWire } from './payment-signature.js';
import type {
  X402Network,
  X402PaymentPayload,
  X402PaymentRequirements,
  X402SupportedResponse,
  X402VerifyResponse,
} from './types.js';
import {
  fromJson,
  invalidPayload,
  parseWith,
  recordSchema,
  requirementsSchema,
  requirementsToWire,
  toJson,
  wireObject,
  X402_MAX_BODY_LENGTH,
} from './wire.js';

/** A payment and the requirements it is checked against, as `/verify` and `/settle` receive them. */
export interface FacilitatorRequest {
  payload: X402PaymentPayload;
  requirements: X402PaymentRequirements;
}

const requestSchema = wireObject({
  x402Version: z.literal(2),
  paymentPayload: paymentPayloadSchema,
  paymentRequirements: requirementsSchema,
});

/** The `VerifyResponse` object. */
export const verifyResponseSchema: z.ZodType<X402VerifyResponse> = wireObject({
  isValid: z.boolean(),
  invalidReason: z.string().exactOptional(),
  invalidMessage: z.string().exactOptional(),
  payer: z.string().exactOptional(),
  extensions: recordSchema.exactOptional(),
  extensionResponses: recordSchema.exactOptional(),
  extra: recordSchema.exactOptional(),
});

/** The `SupportedResponse` object. v1 kinds name their network the v1 way (`base-sepolia`). */
export const supportedResponseSchema: z.ZodType<X402SupportedResponse> = wireObject({
  kinds: z.array(
    wireObject({
      x402Version: z.number().int(),
      scheme: z.string().min(1),
      network: z.custom<X402Network>((value) => typeof value === 'string' && value.length > 0),
      extra: recordSchema.exactOptional(),
    }),
  ),
  extensions: z.array(z.string()).default(() => []),
  signers: z.record(z.string(), z.array(z.string())).default(() => ({})),
});

/** Reads a facilitator message (JSON text) with `schema`; throws `invalid_x402_payload`. */
export function parseFacilitatorJson<T>(schema: z.ZodType<T>, text: string, what: string): T {
  if (text.length > X402_MAX_BODY_LENGTH) {
    throw invalidPayload(`${what} is longer than ${X402_MAX_BODY_LENGTH} characters`);
  }
  return parseWith(schema, fromJson(text, what), what);
}

/** The body of a `/verify` or `/settle` request. */
export function formatFacilitatorRequest(request: FacilitatorRequest): string {
  return toJson({
    x402Version: request.payload.x402Version,
    paymentPayload: paymentPayloadToWire(request.payload),
    paymentRequirements: requirementsToWire(request.requirements),
  });
}

/** Reads the body of a `/verify` or `/settle` request; throws `invalid_x402_payload`. */
export function parseFacilitatorRequest(text: string): FacilitatorRequest {
  const request = parseFacilitatorJson(requestSchema, text, 'facilitator request');
  return { payload: request.paymentPayload, requirements: request.paymentRequirements };
}
