/**
 * x402 messages as Tollway holds them: the `@x402/core` wire types, with every amount a `bigint` in
 * the asset's base units (x402 writes amounts as decimal strings) and every network a CAIP-2 id
 * (x402 v1 writes names such as `base-sepolia`; the v1 codecs translate).
 */
import type {
  Network,
  PaymentPayload,
  PaymentRequired,
  PaymentRequirements,
  ResourceInfo,
  SettleResponse,
  SupportedResponse,
  VerifyResponse,
} from '@x402/core/types';
import type {
  PaymentPayloadV1,
  PaymentRequiredV1,
  PaymentRequirementsV1,
  SettleResponseV1,
} from '@x402/core/types/v1';

/** A CAIP-2 chain id, `namespace:reference`: `eip155:8453` (Base), `eip155:31337` (a local chain). */
export type X402Network = Network;

/** What a paid resource is: `url`, and optionally `description`, `mimeType` and catalogue fields. */
export type X402ResourceInfo = ResourceInfo;

/**
 * One way to pay, as a server offers it and a client accepts it: scheme (`exact`), network, asset
 * (a token contract address on EVM), `amount` in the asset's base units, recipient `payTo`, how long
 * the payment may take, and scheme-specific `extra` (for EIP-3009 the token's EIP-712 `name` and
 * `version`).
 */
export type X402PaymentRequirements = Omit<PaymentRequirements, 'amount'> & { amount: bigint };

/** The decoded v2 `PAYMENT-REQUIRED` header: the resource and the ways to pay for it. */
export type X402PaymentRequired = Omit<PaymentRequired, 'accepts'> & {
  accepts: X402PaymentRequirements[];
};

/**
 * The decoded v2 `PAYMENT-SIGNATURE` header: the requirements the client `accepted` (echoed
 * verbatim) and the scheme's signed `payload` (for `exact` on EVM, see `parseExactEvmPayload`).
 */
export type X402PaymentPayload = Omit<PaymentPayload, 'accepted'> & {
  accepted: X402PaymentRequirements;
};

/**
 * The outcome of a settlement, sent to the client in the v2 `PAYMENT-RESPONSE` header. `amount`
 * (base units) is present only for schemes that may settle less than was authorized.
 */
export type X402SettleResponse = Omit<SettleResponse, 'amount'> & { amount?: bigint };

/** A facilitator's verdict on a payment before settlement. */
export type X402VerifyResponse = VerifyResponse;

/** What a facilitator can settle: `kinds` (version, scheme, network), extensions and signers. */
export type X402SupportedResponse = SupportedResponse;

/** One way to pay in x402 v1: `maxAmountRequired` in base units, the resource named inline. */
export type X402PaymentRequirementsV1 = Omit<
  PaymentRequirementsV1,
  'maxAmountRequired' | 'outputSchema'
> & {
  maxAmountRequired: bigint;
  outputSchema?: Record<string, unknown>;
};

/** The x402 v1 402 response body `{x402Version: 1, error, accepts}`. */
export type X402PaymentRequiredV1 = Omit<PaymentRequiredV1, 'accepts'> & {
  accepts: X402PaymentRequirementsV1[];
};

/** The decoded x402 v1 `X-PAYMENT` header. */
export type X402PaymentPayloadV1 = PaymentPayloadV1;

/** The decoded x402 v1 `X-PAYMENT-RESPONSE` header. */
export type X402SettleResponseV1 = SettleResponseV1;
