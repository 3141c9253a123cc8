/**
 * Byte encodings shared by every protocol module. Internal, except `bytesToHex` and `hexToBytes`,
 * which the package root exports.
 *
 * Node's Buffer decoders are lenient (they skip characters that are not in the alphabet), so every
 * decoder here validates the alphabet first and throws a typed error instead of guessing.
 */
import { Buffer } from 'node:buffer';
import { TollwayError } from '../errors.js';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Lower-case hex of `bytes`. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Decodes hex (either case). Throws `invalid_hex` on odd length, bad characters or a wrong length. */
export function hexToBytes(hex: string, expectedLength?: number): Uint8Array {
  if (!HEX.test(hex))
    throw new TollwayError('invalid_hex', 'expected an even number of hex digits');
  if (expectedLength !== undefined && hex.length !== expectedLength * 2) {
    throw new TollwayError(
      'invalid_hex',
      `expected ${expectedLength} bytes of hex, got ${hex.length / 2}`,
    );
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Standard base64 with padding. */
export function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** URL-safe base64 without padding. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const BASE64_STANDARD = /^[A-Za-z0-9+/]*$/;
const BASE64_URL = /^[A-Za-z0-9_-]*$/;

function invalidBase64(message: string): TollwayError {
  return new TollwayError('invalid_base64', message);
}

/** The 6-bit value of a base64 character of either alphabet (already validated). */
function sextet(code: number): number {
  if (code >= 65 && code <= 90) return code - 65; // A-Z
  if (code >= 97 && code <= 122) return code - 71; // a-z
  if (code >= 48 && code <= 57) return code + 4; // 0-9
  return code === 43 || code === 45 ? 62 : 63; // + or -, / or _
}

/**
 * Decodes standard or URL-safe base64, padded or not (the alphabets may not be mixed).
 * Throws `invalid_base64` on anything else, including impossible lengths and non-zero pad bits.
 * The result is a view into Node's buffer pool: allocating a fresh `Uint8Array` costs more than
 * decoding a token, and tokens are decoded on the paid path.
 */
export function base64ToBytes(text: string): Uint8Array {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61) end--; // '='
  if (text.length - end > 2) throw invalidBase64('not base64 (standard or URL-safe)');
  if (end % 4 === 1) throw invalidBase64('impossible base64 length');
  if (end !== text.length && text.length % 4 !== 0) throw invalidBase64('wrong base64 padding');
  const body = end === text.length ? text : text.slice(0, end);
  if (!BASE64_STANDARD.test(body) && !BASE64_URL.test(body)) {
    throw invalidBase64('not base64 (standard or URL-safe)');
  }
  // Canonical form only: the bits the last character carries beyond the data must be zero.
  const spareBits = end % 4 === 2 ? 4 : end % 4 === 3 ? 2 : 0;
  if (spareBits > 0 && (sextet(body.charCodeAt(end - 1)) & ((1 << spareBits) - 1)) !== 0) {
    throw invalidBase64('non-canonical base64 (stray bits)');
  }
  const decoded = Buffer.from(body, 'base64');
  return new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
}

/** UTF-8 bytes of `text`. */
export function utf8ToBytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** Decodes UTF-8, replacing invalid sequences (use for display only). */
export function bytesToUtf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Byte-wise equality (not constant time; use `timingSafeEqual` for secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
