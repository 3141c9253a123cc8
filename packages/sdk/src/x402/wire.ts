/**
 * Pieces shared by the x402 codecs. Internal: not exported from the package.
 *
 * Headers carry standard base64 (`+/`, padding optional on input) of UTF-8 JSON. Reading is strict
 * about the alphabet and lenient where x402 implementations differ: an optional member sent as
 * `null` reads as absent. Every failure is a `TollwayError('invalid_x402_payload')`.
 */
import { z } from 'zod';
import { TollwayError } from '../errors.js';
import type { X402Network, X402PaymentRequirements, X402ResourceInfo } from './types.js';

/** The longest x402 header value accepted or written, in characters. */
export const X402_MAX_HEADER_LENGTH = 16 * 1024;

/**
 * The longest x402 JSON body accepted (a v1 402 body, a facilitator message): characters of text,
 * or bytes on the wire.
 */
export const X402_MAX_BODY_LENGTH = 64 * 1024;

const MAX_UINT256 = 2n ** 256n - 1n;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** CAIP-2, with the reference widened to the base64 genesis hashes some x402 networks use. */
const CAIP2 = /^[-a-z0-9]{3,8}:[-_a-zA-Z0-9.+/=]{1,64}$/;
const UINT = /^(?:0|[1-9][0-9]{0,77})$/;

/** A TollwayError for a malformed x402 message. */
export function invalidPayload(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_x402_payload', message, cause === undefined ? {} : { cause });
}

/**
 * True when `value` is a CAIP-2 network id (`namespace:reference`).
 *
 * @example
 * ```ts
 * isX402Network('eip155:8453'); // true
 * isX402Network('base'); // false: a v1 name, see networkFromV1
 * ```
 */
export function isX402Network(value: string): value is X402Network {
  return CAIP2.test(value);
}

/** JSON text of `value`; throws `invalid_x402_payload` for what JSON cannot hold (a bigint). */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw invalidPayload('the message holds a value JSON cannot represent', error);
  }
}

/** Parses JSON text; throws `invalid_x402_payload` instead of `SyntaxError`. */
export function fromJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidPayload(`${what} is not JSON`, error);
  }
}

/** Standard padded base64 of the UTF-8 JSON of `value`, at most {@link X402_MAX_HEADER_LENGTH}. */
export function encodeBase64Json(value: unknown, what: string): string {
  const bytes = new TextEncoder().encode(toJson(value));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const encoded = btoa(binary);
  if (encoded.length > X402_MAX_HEADER_LENGTH) {
    throw invalidPayload(`${what} is longer than ${X402_MAX_HEADER_LENGTH} characters`);
  }
  return encoded;
}

/** Decodes a base64 JSON header value (standard alphabet, padding optional) into its JSON value. */
export function decodeBase64Json(text: string, what: string): unknown {
  if (text.length > X402_MAX_HEADER_LENGTH) {
    throw invalidPayload(`${what} is longer than ${X402_MAX_HEADER_LENGTH} characters`);
  }
  const body = text.replace(/=+$/, '');
  if (!BASE64.test(text) || body.length % 4 === 1 || (body !== text && text.length % 4 !== 0)) {
    throw invalidPayload(`${what} is not standard base64`);
  }
  const binary = atob(body);
  // Canonical spelling only: re-encoding must give the same characters (no stray low bits).
  if (btoa(binary).replace(/=+$/, '') !== body) {
    throw invalidPayload(`${what} is not canonical base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw invalidPayload(`${what} is not UTF-8`, error);
  }
  return fromJson(json, what);
}

/** Validates `value` with `schema`; throws `invalid_x402_payload` naming the first problem. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const at = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw invalidPayload(`${what} is malformed${at}: ${issue?.message ?? 'invalid'}`, result.error);
}

/** Drops members whose value is null or undefined: optional members may be sent either way. */
function withoutNulls(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member != null));
}

/** An object schema whose optional members may also be null or undefined (read as absent). */
export function wireObject<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.preprocess(withoutNulls, z.object(shape));
}

/** A decimal string of an unsigned 256-bit integer, read as a bigint. */
export const amountSchema = z
  .string()
  .regex(UINT, 'expected a decimal integer')
  .transform((text) => BigInt(text))
  .refine((amount) => amount <= MAX_UINT256, 'larger than 2^256 - 1');

/** A CAIP-2 network id. */
export const networkSchema = z.custom<X402Network>(
  (value) => typeof value === 'string' && isX402Network(value),
  'expected a CAIP-2 network such as eip155:8453',
);

/** A JSON object with any members. */
export const recordSchema = z.record(z.string(), z.unknown());

/** Writes an amount as x402 does: a decimal string. Throws `invalid_amount` outside uint256. */
export function formatAmount(amount: bigint): string {
  if (amount < 0n || amount > MAX_UINT256) {
    throw new TollwayError('invalid_amount', 'an x402 amount must be between 0 and 2^256 - 1');
  }
  return amount.toString();
}

/** The v2 `ResourceInfo` object. */
export const resourceInfoSchema: z.ZodType<X402ResourceInfo> = wireObject({
  url: z.string().min(1),
  description: z.string().exactOptional(),
  mimeType: z.string().exactOptional(),
  serviceName: z.string().exactOptional(),
  tags: z.array(z.string()).exactOptional(),
  iconUrl: z.string().exactOptional(),
});

/** The v2 `PaymentRequirements` object; `extra` defaults to `{}`. */
export const requirementsSchema: z.ZodType<X402PaymentRequirements> = wireObject({
  scheme: z.string().min(1),
  network: networkSchema,
  asset: z.string().min(1),
  amount: amountSchema,
  payTo: z.string().min(1),
  maxTimeoutSeconds: z.number().int().positive(),
  extra: recordSchema.default(() => ({})),
});

/** The wire form of requirements, members in the order x402's own SDK writes them. */
export function requirementsToWire(requirements: X402PaymentRequirements) {
  return {
    scheme: requirements.scheme,
    network: requirements.network,
    amount: formatAmount(requirements.amount),
    asset: requirements.asset,
    payTo: requirements.payTo,
    maxTimeoutSeconds: requirements.maxTimeoutSeconds,
    extra: requirements.extra,
  };
}
