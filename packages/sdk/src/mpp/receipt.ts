/**
 * `Payment-Receipt` headers (draft-httpauth-payment): base64url (no padding) of a JSON receipt the
 * server returns with the paid response.
 */
import { TollwayError } from '../errors.js';

import {
  decodeJsonBase64Url,
  encodeJsonBase64Url,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from './json.js';

/** A payment receipt. */
export interface PaymentReceipt {
  /** Always `success`: receipts only accompany paid responses. */
  status: string;
  /** The payment method, e.g. `lightning`. */
  method: string;
  /** RFC 3339 settlement time. */
  timestamp: string;
  /** Method-specific reference; for lightning the payment hash (a session's id, for sessions). */
  reference: string;
  /** The id of the challenge that was paid. */
  challengeId?: string;
  /** Session close: the unspent balance refunded, in satoshis. */
  refundSats?: bigint;
  /** Session close: `succeeded`, `failed` or `skipped`. */
  refundStatus?: string;
}

const INT64_MAX = 2n ** 63n - 1n;

function invalid(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_receipt', message, cause === undefined ? {} : { cause });
}

/**
 * Formats a receipt as a `Payment-Receipt` value, with members in Aperture's order so the bytes
 * match: `status, method, timestamp, reference, challengeId` for a charge; for a session close
 * (a receipt with `refundStatus` or `refundSats`) `method, reference, status, timestamp,
 * refundSats, refundStatus, challengeId`. An empty `challengeId` or `refundStatus` and a zero
 * `refundSats` are left out. Throws `invalid_amount` for a negative `refundSats` or one beyond
 * int64.
 *
 * @example
 * ```ts
 * headers.set('Payment-Receipt', formatPaymentReceipt({
 *   status: 'success', method: 'lightning', timestamp: '2026-03-10T21:00:00Z', reference: paymentHash,
 *   challengeId: challenge.id,
 * }));
 * ```
 */
export function formatPaymentReceipt(receipt: PaymentReceipt): string {
  const { refundSats, refundStatus, challengeId } = receipt;
  if (refundSats !== undefined && (refundSats < 0n || refundSats > INT64_MAX)) {
    throw new TollwayError('invalid_amount', 'refundSats must be between 0 and 2^63 - 1');
  }
  let json: JsonObject;
  if (refundSats === undefined && refundStatus === undefined) {
    json = {
      status: receipt.status,
      method: receipt.method,
      timestamp: receipt.timestamp,
      reference: receipt.reference,
    };
  } else {
    json = {
      method: receipt.method,
      reference: receipt.reference,
      status: receipt.status,
      timestamp: receipt.timestamp,
    };
    if (refundSats !== undefined && refundSats !== 0n) json.refundSats = refundSats;
    if (refundStatus !== undefined && refundStatus !== '') json.refundStatus = refundStatus;
  }
  if (challengeId !== undefined && challengeId !== '') json.challengeId = challengeId;
  return encodeJsonBase64Url(json);
}

function readString(json: JsonObject, name: string): string | undefined {
  const value = json[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${name} is not a string`);
  return value;
}

/**
 * Parses a `Payment-Receipt` value. `refundSats` is read exactly (as `bigint`, even beyond 2^53);
 * unknown members are ignored. Throws `invalid_receipt` when the value is not strict base64url
 * JSON, or lacks a string `status`, `method`, `timestamp` or `reference`, or has a member of the
 * wrong type (`refundSats` must be an integer from 0 to 2^63 - 1).
 *
 * @example
 * ```ts
 * const receipt = parsePaymentReceipt(response.headers.get('payment-receipt') ?? '');
 * ```
 */
export function parsePaymentReceipt(value: string): PaymentReceipt {
  let json: JsonValue;
  try {
    json = decodeJsonBase64Url(value.trim(), { bigints: true });
  } catch (cause) {
    throw invalid('the receipt is not base64url JSON', cause);
  }
  if (!isJsonObject(json)) throw invalid('the receipt is not a JSON object');
  const status = readString(json, 'status');
  const method = readString(json, 'method');
  const timestamp = readString(json, 'timestamp');
  const reference = readString(json, 'reference');
  if (
    status === undefined ||
    method === undefined ||
    timestamp === undefined ||
    reference === undefined
  ) {
    throw invalid('the receipt needs status, method, timestamp and reference');
  }
  const receipt: PaymentReceipt = { status, method, timestamp, reference };
  const challengeId = readString(json, 'challengeId');
  if (challengeId) receipt.challengeId = challengeId;
  const refundSats = json.refundSats;
  if (refundSats !== undefined) {
    if (typeof refundSats !== 'bigint' || refundSats < 0n || refundSats > INT64_MAX) {
      throw invalid('refundSats is not an integer from 0 to 2^63 - 1');
    }
    receipt.refundSats = refundSats;
  }
  const refundStatus = readString(json, 'refundStatus');
  if (refundStatus) receipt.refundStatus = refundStatus;
  return receipt;
}
