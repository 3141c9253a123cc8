/**
 * Master secrets and the keys derived from them. A token's root key is
 * `HMAC-SHA256(master secret, identifier)`, so minting a token writes nothing anywhere and any
 * instance holding the secret can verify it. MPP challenge ids are signed with a key derived from
 * the same secret under its own label.
 *
 * Rotation: the first secret mints; every listed secret verifies. To rotate, put a new secret first
 * and keep the old one second until the tokens minted under it have expired; then drop it, and
 * those tokens stop verifying.
 */
import { TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../internal/bytes.js';
import { hmacSha256, randomBytes } from '../internal/crypto.js';

/** A master secret: hex text of at least 32 bytes, or at least 32 bytes. */
export type MasterSecret = string | Uint8Array;

/** Keys derived from the master secrets; see {@link createRootKeys}. */
export interface RootKeys {
  /** How many secrets are accepted; index 0 is the current one, which mints. */
  readonly size: number;
  /** The root key of the token with this identifier under secret `index` (default 0). */
  rootKey(identifier: Uint8Array, index?: number): Uint8Array;
  /** The MPP challenge-id key under secret `index` (default 0). */
  challengeKey(index?: number): Uint8Array;
}

const MIN_SECRET_BYTES = 32;
const CHALLENGE_LABEL = utf8ToBytes('tollway mpp challenge id');

function readSecret(secret: MasterSecret, position: number): Uint8Array {
  const invalid = (why: string) =>
    new TollwayError('invalid_config', `master secret #${position + 1} ${why}`);
  if (typeof secret === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(secret)) throw invalid('is not hex');
    if (secret.length < MIN_SECRET_BYTES * 2) throw invalid('is shorter than 32 bytes');
    return hexToBytes(secret);
  }
  if (!(secret instanceof Uint8Array)) throw invalid('is neither hex text nor bytes');
  if (secret.length < MIN_SECRET_BYTES) throw invalid('is shorter than 32 bytes');
  return secret.slice();
}

/**
 * Reads the master secrets (current first, then those still accepted). Throws `invalid_config`
 * when the list is empty or a secret is not hex or bytes of at least 32 bytes.
 *
 * @example
 * ```ts
 * const keys = createRootKeys([process.env.TOLLWAY_SECRET!, process.env.TOLLWAY_PREVIOUS_SECRET!]);
 * const rootKey = keys.rootKey(identifier);
 * ```
 */
export function createRootKeys(secrets: readonly MasterSecret[]): RootKeys {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new TollwayError('invalid_config', 'at least one master secret is required');
  }
  const keys = secrets.map(readSecret);
  const challengeKeys = keys.map((key) => hmacSha256(key, CHALLENGE_LABEL));
  function pick<T>(list: readonly T[], index: number): T {
    const item = list[index];
    if (item === undefined) throw new RangeError(`no master secret #${index + 1}`);
    return item;
  }
  return {
    size: keys.length,
    rootKey: (identifier, index = 0) => hmacSha256(pick(keys, index), identifier),
    challengeKey: (index = 0) => pick(challengeKeys, index),
  };
}

/**
 * A new random master secret: 32 bytes as 64 hex digits. Store it like a password.
 *
 * @example
 * ```ts
 * console.log(createMasterSecret()); // put it in TOLLWAY_SECRET
 * ```
 */
export function createMasterSecret(): string {
  return bytesToHex(randomBytes(MIN_SECRET_BYTES));
}
