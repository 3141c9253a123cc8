/**
 * The signed payload of the `exact` scheme on EVM with EIP-3009 (`transferWithAuthorization`): an
 * authorization from the payer and its 65-byte (or longer, for smart wallets) signature.
 */
import { z } from 'zod';
import { amountSchema, parseWith, wireObject } from './wire.js';

/** The EIP-3009 `TransferWithAuthorization` message the payer signed. */
export interface ExactEvmAuthorization {
  /** The payer. */
  from: `0x${string}`;
  /** The recipient; must equal the requirements' `payTo`. */
  to: `0x${string}`;
  /** Base units of the token; must equal the requirements' `amount`. */
  value: bigint;
  /** Unix seconds after which the authorization is valid (usually 0). */
  validAfter: bigint;
  /** Unix seconds before which it must be settled. */
  validBefore: bigint;
  /** 32 random bytes, hex; the token refuses a nonce it has seen from the same payer. */
  nonce: `0x${string}`;
}

/** The payload of an `exact` EVM payment made with EIP-3009. */
export interface ExactEvmPayload {
  signature: `0x${string}`;
  authorization: ExactEvmAuthorization;
}

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 20-byte hex address')
  .transform((text) => text as `0x${string}`);

const exactEvmPayloadSchema: z.ZodType<ExactEvmPayload> = wireObject({
  signature: z
    .string()
    .regex(/^0x(?:[0-9a-fA-F]{2}){65,4096}$/, 'expected a hex signature of 65 bytes or more')
    .transform((text) => text as `0x${string}`),
  authorization: wireObject({
    from: address,
    to: address,
    value: amountSchema,
    validAfter: amountSchema,
    validBefore: amountSchema,
    nonce: z
      .string()
      .regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32 bytes of hex')
      .transform((text) => text as `0x${string}`),
  }),
});

/**
 * Reads the `payload` of an `exact` EVM payment as an EIP-3009 authorization with bigint amounts
 * and times. Throws `invalid_x402_payload` when it is not one (a Permit2 payload, for instance).
 *
 * @example
 * ```ts
 * const { authorization } = parseExactEvmPayload(payment.payload);
 * authorization.value === requirements.amount; // the exact scheme pays the price exactly
 * ```
 */
export function parseExactEvmPayload(payload: Record<string, unknown>): ExactEvmPayload {
  return parseWith(exactEvmPayloadSchema, payload, 'exact EVM payload');
}
