/**
 * The `request` parameter of a lightning `charge` challenge (draft-lightning-charge): base64url of
 * the JCS JSON `{amount, currency: "sat", description?, methodDetails: {invoice, paymentHash?,
 * network?}}`.
 */
import { TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../internal/bytes.js';
import { encodeBase64Url } from './base64url.js';
import { canonicalizeJson } from './jcs.js';
import { decodeJsonBase64Url, isJsonObject, type JsonObject, type JsonValue } from './json.js';

/** A lightning charge request, decoded. */
export interface LightningChargeRequest {
  /** The price in satoshis (a decimal string on the wire). */
  amountSat: bigint;
  /** Human-readable text; covered by the challenge id, unlike the header's `description`. */
  description?: string;
  /** The BOLT11 invoice to pay. */
  invoice: string;
  /** The invoice's payment hash, 64 lower-case hex digits. */
  paymentHash?: string;
  /** `mainnet`, `testnet`, `signet` or `regtest`. */
  network?: string;
}

const DECIMAL = /^[1-9][0-9]*$/;

function invalid(message: string): TollwayError {
  return new TollwayError('invalid_json', `charge request: ${message}`);
}

function optionalString(object: JsonObject, name: string): string | undefined {
  const value = object[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${name} is not a string`);
  return value;
}

function lowerHash(hex: string): string {
  return bytesToHex(hexToBytes(hex, 32));
}

/**
 * Encodes a charge request for the `request` parameter (JCS, then base64url). Throws
 * `invalid_amount` unless `amountSat` is positive, `invalid_hex` for a payment hash that is not 32
 * bytes of hex.
 *
 * @example
 * ```ts
 * const request = encodeChargeRequest({ amountSat: 100n, invoice, paymentHash, network: 'mainnet' });
 * ```
 */
export function encodeChargeRequest(request: LightningChargeRequest): string {
  if (request.amountSat <= 0n)
    throw new TollwayError('invalid_amount', 'amountSat must be positive');
  const methodDetails: JsonObject = { invoice: request.invoice };
  if (request.paymentHash !== undefined) methodDetails.paymentHash = lowerHash(request.paymentHash);
  if (request.network !== undefined) methodDetails.network = request.network;
  const json: JsonObject = { amount: request.amountSat.toString(), currency: 'sat', methodDetails };
  if (request.description !== undefined) json.description = request.description;
  return encodeBase64Url(utf8ToBytes(canonicalizeJson(json)));
}

/**
 * Decodes the `request` parameter of a lightning charge challenge. Members other than those above
 * (`recipient`, `externalId`, …) are ignored. Throws `invalid_base64` or `invalid_json` for bad
 * encoding or shape (including a currency other than `sat` and an empty invoice), `invalid_amount`
 * unless `amount` is a positive decimal integer without leading zeros, `invalid_hex` for a payment
 * hash that is not 32 bytes of hex (it is returned lower-cased).
 */
export function decodeChargeRequest(request: string): LightningChargeRequest {
  const json: JsonValue = decodeJsonBase64Url(request);
  if (!isJsonObject(json)) throw invalid('not a JSON object');
  const amount = json.amount;
  if (typeof amount !== 'string' || !DECIMAL.test(amount)) {
    throw new TollwayError('invalid_amount', 'charge request: amount is not a positive decimal');
  }
  if (json.currency !== 'sat') throw invalid('currency is not "sat"');
  const details = json.methodDetails;
  if (!isJsonObject(details)) throw invalid('methodDetails is not an object');
  const invoice = optionalString(details, 'invoice');
  if (!invoice) throw invalid('methodDetails.invoice is missing');

  const decoded: LightningChargeRequest = { amountSat: BigInt(amount), invoice };
  const description = optionalString(json, 'description');
  if (description !== undefined) decoded.description = description;
  const paymentHash = optionalString(details, 'paymentHash');
  if (paymentHash !== undefined) decoded.paymentHash = lowerHash(paymentHash);
  const network = optionalString(details, 'network');
  if (network !== undefined) decoded.network = network;
  return decoded;
}
