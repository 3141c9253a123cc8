/**
 * The L402 macaroon identifier, version 0 (Aperture layout, 66 bytes, big-endian):
 * `uint16 version | payment_hash[32] | token_id[32]`.
 */
import { TollwayError } from '../errors.js';
import { randomPublicBytes } from '../internal/crypto.js';
import type { TokenIdentifier } from './types.js';

const HASH_LENGTH = 32;
const IDENTIFIER_V0_LENGTH = 2 + HASH_LENGTH + HASH_LENGTH;

/**
 * Encodes a version-0 identifier. Throws `invalid_identifier` when the version is not 0 or a field
 * is not 32 bytes.
 *
 * @example
 * ```ts
 * const identifier = encodeIdentifier({ version: 0, paymentHash, tokenId: createTokenId() });
 * ```
 */
export function encodeIdentifier(identifier: TokenIdentifier): Uint8Array {
  if (identifier.version !== 0) {
    throw new TollwayError('invalid_identifier', 'only identifier version 0 can be encoded');
  }
  if (identifier.paymentHash.length !== HASH_LENGTH || identifier.tokenId.length !== HASH_LENGTH) {
    throw new TollwayError('invalid_identifier', 'payment hash and token id must be 32 bytes');
  }
  const out = new Uint8Array(IDENTIFIER_V0_LENGTH);
  out.set(identifier.paymentHash, 2);
  out.set(identifier.tokenId, 2 + HASH_LENGTH);
  return out;
}

/**
 * Decodes an identifier. Throws `unknown_identifier_version` when the first two bytes are not
 * version 0 (boltwall's ASCII-hex identifiers read as version `0x3030` and land here), and
 * `invalid_identifier` when a version-0 identifier is not exactly 66 bytes.
 *
 * @example
 * ```ts
 * const { paymentHash, tokenId } = decodeIdentifier(macaroon.identifier);
 * ```
 */
export function decodeIdentifier(bytes: Uint8Array): TokenIdentifier {
  if (bytes.length < 2) throw new TollwayError('invalid_identifier', 'identifier is too short');
  const version = ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0);
  if (version !== 0) {
    throw new TollwayError('unknown_identifier_version', `unknown identifier version ${version}`, {
      details: { version },
    });
  }
  if (bytes.length !== IDENTIFIER_V0_LENGTH) {
    throw new TollwayError(
      'invalid_identifier',
      `a version 0 identifier has ${IDENTIFIER_V0_LENGTH} bytes, got ${bytes.length}`,
    );
  }
  return {
    version,
    paymentHash: bytes.slice(2, 2 + HASH_LENGTH),
    tokenId: bytes.slice(2 + HASH_LENGTH),
  };
}

/**
 * A fresh random 32-byte token id (the stable per-customer key for metering and revocation). Not a
 * secret (the identifier is sent in the clear), so it comes from the pooled generator.
 */
export function createTokenId(): Uint8Array {
  return randomPublicBytes(HASH_LENGTH);
}
