/**
 * base64url (RFC 4648 §5) as MPP uses it: written without padding, read strictly.
 */
import { TollwayError } from '../errors.js';
import { base64ToBytes, bytesToBase64Url } from '../internal/bytes.js';

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Encodes bytes as base64url without padding.
 *
 * @example
 * ```ts
 * encodeBase64Url(new Uint8Array([0xff, 0xfe])); // '__4'
 * ```
 */
export function encodeBase64Url(bytes: Uint8Array): string {
  return bytesToBase64Url(bytes);
}

/**
 * Decodes base64url, padded or not. Throws `invalid_base64` on anything that is not the one
 * canonical spelling of some bytes: the standard alphabet (`+`, `/`), whitespace or line breaks,
 * padding that is misplaced or does not fill a 4-character group, an impossible length, or
 * non-zero bits after the last byte (`AB`), which would give one payload a second spelling.
 */
export function decodeBase64Url(text: string): Uint8Array {
  if (!BASE64URL.test(text)) throw new TollwayError('invalid_base64', 'not base64url');
  return base64ToBytes(text);
}
