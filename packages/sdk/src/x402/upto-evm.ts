/**
 * The signed payload of the `upto` scheme on EVM: a Permit2 `PermitWitnessTransferFrom` the payer
 * signed for a maximum, with the x402 upto proxy as spender and a witness naming the recipient and
 * the one facilitator allowed to settle it (any amount up to the maximum, once: Permit2 spends the
 * nonce).
 */
import { z } from 'zod';
import { amountSchema, parseWith, wireObject } from './wire.js';

/** The Permit2 authorization an `upto` payer signed. */
export interface UptoEvmAuthorization {
  /** The payer. */
  from: `0x${string}`;
  /** The token and the most that may be settled, base units. */
  permitted: { token: `0x${string}`; amount: bigint };
  /** The x402 upto proxy. */
  spender: `0x${string}`;
  /** Permit2's unordered nonce (a 256-bit integer). */
  nonce: bigint;
  /** Unix seconds before which it must be settled. */
  deadline: bigint;
  /** The recipient, the facilitator that may settle, and when it becomes valid. */
  witness: { to: `0x${string}`; facilitator: `0x${string}`; validAfter: bigint };
}

/** The payload of an `upto` EVM payment made with Permit2. */
export interface UptoEvmPayload {
  signature: `0x${string}`;
  permit2Authorization: UptoEvmAuthorization;
}

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 20-byte hex address')
  .transform((text) => text as `0x${string}`);

const uptoEvmPayloadSchema: z.ZodType<UptoEvmPayload> = wireObject({
  signature: z
    .string()
    .regex(/^0x(?:[0-9a-fA-F]{2}){65,4096}$/, 'expected a hex signature of 65 bytes or more')
    .transform((text) => text as `0x${string}`),
  permit2Authorization: wireObject({
    from: address,
    permitted: wireObject({ token: address, amount: amountSchema }),
    spender: address,
    nonce: amountSchema,
    deadline: amountSchema,
    witness: wireObject({ to: address, facilitator: address, validAfter: amountSchema }),
  }),
});

/**
 * Reads the `payload` of an `upto` EVM payment as a Permit2 authorization with bigint amounts,
 * nonce and times. Throws `invalid_x402_payload` when it is not one.
 *
 * @example
 * ```ts
 * const { permit2Authorization } = parseUptoEvmPayload(payment.payload);
 * permit2Authorization.permitted.amount; // the most the server may settle
 * ```
 */
export function parseUptoEvmPayload(payload: Record<string, unknown>): UptoEvmPayload {
  return parseWith(uptoEvmPayloadSchema, payload, 'upto EVM payload');
}
