/**
 * Server-side verification of an L402 credential: identifier, preimage, signature and caveats.
 */
import { fail, isTollwayError, ok, type Result } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { sha256, timingSafeEqual } from '../internal/crypto.js';
import { type CaveatScope, type VerifyCaveatsOptions, verifyCaveats } from './caveats.js';
import { decodeIdentifier } from './identifier.js';
import { firstPartyCaveats, verifyMacaroonSignature } from './macaroon.js';
import type { L402Credential, TokenIdentifier } from './types.js';

/** Options of {@link verifyL402}. */
export interface VerifyL402Options extends VerifyCaveatsOptions {
  /**
   * Returns the root key the token was minted with (Aperture keys its store by
   * `sha256(raw identifier)`), or undefined when unknown or revoked. Called only after the
   * preimage has been checked, so unpaid tokens never reach the store.
   */
  resolveRootKey(identifier: TokenIdentifier, raw: Uint8Array): Uint8Array | undefined;
  /** The service the request is for, e.g. `forecast`. */
  service: string;
  /** The capability the request exercises, checked against `<service>_capabilities`. */
  capability?: string;
  /** The normalised request path, checked against `tollway_paths`. */
  path?: string;
  /** The request method, checked against `tollway_methods`. */
  method?: string;
  /** The current time, as unix seconds or a Date. Defaults to the clock. */
  now?: number | Date;
}

/** A verified L402 token: who it belongs to and what it grants. */
export interface VerifiedL402 extends CaveatScope {
  /** The token id, lower-case hex: the stable key for metering, use counters and revocation. */
  tokenId: string;
  /** The payment hash, lower-case hex. */
  paymentHash: string;
}

/**
 * Verifies an L402 credential for one request. Pure and synchronous; never throws for any
 * credential content (only `resolveRootKey` may throw).
 *
 * Checks, cheapest first: the identifier decodes (`invalid_identifier`,
 * `unknown_identifier_version`); the preimage is 32 bytes (`invalid_preimage`) and
 * `sha256(preimage)` equals the payment hash, compared in constant time (`preimage_mismatch`); the
 * macaroon has no third-party caveat (`third_party_caveat`: discharge macaroons are not verified,
 * and any discharges in the credential are ignored); a root key is known (`root_key_not_found`);
 * the signature matches in constant time (`invalid_signature`); the caveats are satisfied
 * (`token_expired`, `wrong_service`, `caveat_not_satisfied`, `invalid_caveat`, `unknown_caveat`).
 *
 * Use limits and balances are reported in the result, not enforced: the engine counts them.
 *
 * @example
 * ```ts
 * const credential = parseL402Credential(req.headers.authorization);
 * if (credential !== undefined) {
 *   const result = verifyL402(credential, {
 *     service: 'forecast',
 *     path: url.pathname,
 *     method: req.method,
 *     resolveRootKey: (identifier) => rootKeys.get(hex(identifier.tokenId)),
 *   });
 *   if (!result.ok) console.log(result.code); // e.g. 'token_expired'
 * }
 * ```
 */
export function verifyL402(
  credential: L402Credential,
  options: VerifyL402Options,
): Result<VerifiedL402> {
  const macaroon = credential.macaroons[0];
  if (macaroon === undefined) return fail('invalid_credential', 'the credential has no macaroon');

  let identifier: TokenIdentifier;
  try {
    identifier = decodeIdentifier(macaroon.identifier);
  } catch (error) {
    if (isTollwayError(error)) return fail(error.code, error.message);
    throw error;
  }

  if (credential.preimage.length !== 32) {
    return fail('invalid_preimage', 'the preimage is not 32 bytes');
  }
  if (!timingSafeEqual(sha256(credential.preimage), identifier.paymentHash)) {
    return fail('preimage_mismatch', 'the preimage does not match the payment hash');
  }
  if (macaroon.caveats.some((caveat) => caveat.verificationId !== undefined)) {
    return fail('third_party_caveat', 'third-party caveats (discharges) are not supported');
  }

  const rootKey = options.resolveRootKey(identifier, macaroon.identifier);
  if (rootKey === undefined) return fail('root_key_not_found', 'no root key for this token');
  if (!verifyMacaroonSignature(macaroon, rootKey)) {
    return fail('invalid_signature', 'the macaroon signature does not verify');
  }

  let caveats: string[];
  try {
    caveats = firstPartyCaveats(macaroon);
  } catch (error) {
    if (isTollwayError(error)) return fail(error.code, error.message);
    throw error;
  }
  const now = options.now ?? Date.now() / 1000;
  const request = {
    service: options.service,
    now: typeof now === 'number' ? now : now.getTime() / 1000,
    ...(options.capability === undefined ? {} : { capability: options.capability }),
    ...(options.path === undefined ? {} : { path: options.path }),
    ...(options.method === undefined ? {} : { method: options.method }),
  };
  const scope = verifyCaveats(caveats, request, options);
  if (!scope.ok) return scope;
  return ok({
    tokenId: bytesToHex(identifier.tokenId),
    paymentHash: bytesToHex(identifier.paymentHash),
    ...scope.value,
  });
}
