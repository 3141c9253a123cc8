/**
 * The `request` parameter of a lightning `session` challenge (draft-lightning-session): base64url
 * of the JCS JSON `{amount, currency: "sat", description?, unitType?, depositInvoice?,
 * paymentHash, depositAmount?, idleTimeout?}`. `amount` is the price of one unit (one request);
 * `depositInvoice` is present on challenges that open or top up a session.
 */
import { TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../internal/bytes.js';
import { encodeBase64Url } from './base64url.js';
import { canonicalizeJson } from './jcs.js';
import { decodeJsonBase64Url, isJsonObject, type JsonObject } from './json.js';

/** A lightning session request, decoded. */
export interface LightningSessionRequest {
  /** The price of one unit, satoshis. */
  amountSat: bigint;
  description?: string;
  /** What a unit is (`request`, `token`, …). */
  unitType?: string;
  /** The invoice that opens (or tops up) the session. */
  depositInvoice?: string;
  /** The payment hash of the deposit invoice (a session's id is its opening deposit's). */
  paymentHash: string;
  /** What the deposit invoice is for, satoshis. */
  depositAmountSat?: bigint;
  /** Seconds without a request after which the server closes the session and refunds it. */
  idleTimeoutSeconds?: number;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

function invalid(message: string): TollwayError {
  return new TollwayError('invalid_json', `session request: ${message}`);
}

function text(object: JsonObject, name: string): string | undefined {
  const value = object[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${name} is not a string`);
  return value;
}

function decimal(object: JsonObject, name: string): bigint | undefined {
  const value = text(object, name);
  if (value === undefined) return undefined;
  if (!DECIMAL.test(value)) {
    throw new TollwayError('invalid_amount', `session request: ${name} is not a decimal`);
  }
  return BigInt(value);
}

/**
 * Encodes a session request for the `request` parameter (JCS, then base64url). Throws
 * `invalid_amount` for a negative amount, `invalid_hex` for a payment hash that is not 32 bytes.
 *
 * @example
 * ```ts
 * encodeSessionRequest({ amountSat: 3n, paymentHash, depositInvoice, depositAmountSat: 5000n, idleTimeoutSeconds: 300 });
 * ```
 */
export function encodeSessionRequest(request: LightningSessionRequest): string {
  if (request.amountSat < 0n) throw new TollwayError('invalid_amount', 'amountSat is negative');
  const json: JsonObject = {
    amount: request.amountSat.toString(),
    currency: 'sat',
    paymentHash: bytesToHex(hexToBytes(request.paymentHash, 32)),
  };
  if (request.description !== undefined) json.description = request.description;
  if (request.unitType !== undefined) json.unitType = request.unitType;
  if (request.depositInvoice !== undefined) json.depositInvoice = request.depositInvoice;
  if (request.depositAmountSat !== undefined) {
    json.depositAmount = request.depositAmountSat.toString();
  }
  if (request.idleTimeoutSeconds !== undefined) {
    json.idleTimeout = String(request.idleTimeoutSeconds);
  }
  return encodeBase64Url(utf8ToBytes(canonicalizeJson(json)));
}

/**
 * Decodes the `request` parameter of a lightning session challenge. Throws `invalid_base64` or
 * `invalid_json` for bad encoding or shape (a currency other than `sat`, no payment hash),
 * `invalid_amount` for amounts that are not decimal integers, `invalid_hex` for a payment hash
 * that is not 32 bytes (returned lower-cased).
 *
 * @example
 * ```ts
 * decodeSessionRequest(challenge.request).depositAmountSat; // 5000n
 * ```
 */
export function decodeSessionRequest(request: string): LightningSessionRequest {
  const json = decodeJsonBase64Url(request);
  if (!isJsonObject(json)) throw invalid('not a JSON object');
  if (json.currency !== 'sat') throw invalid('currency is not "sat"');
  const amountSat = decimal(json, 'amount');
  if (amountSat === undefined) throw invalid('amount is missing');
  const hash = text(json, 'paymentHash');
  if (hash === undefined) throw invalid('paymentHash is missing');
  const decoded: LightningSessionRequest = {
    amountSat,
    paymentHash: bytesToHex(hexToBytes(hash, 32)),
  };
  const description = text(json, 'description');
  if (description !== undefined) decoded.description = description;
  const unitType = text(json, 'unitType');
  if (unitType !== undefined) decoded.unitType = unitType;
  const depositInvoice = text(json, 'depositInvoice');
  if (depositInvoice !== undefined) decoded.depositInvoice = depositInvoice;
  const depositAmountSat = decimal(json, 'depositAmount');
  if (depositAmountSat !== undefined) decoded.depositAmountSat = depositAmountSat;
  const idle = decimal(json, 'idleTimeout');
  if (idle !== undefined) decoded.idleTimeoutSeconds = Number(idle);
  return decoded;
}
