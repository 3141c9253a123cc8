/**
 * MPP challenge ids: a server binds a challenge's parameters to an id with HMAC-SHA256 under its
 * own secret, so that it can check an echoed challenge without storing it.
 */
import { fail, ok, type Result } from '../errors.js';
import { utf8ToBytes } from '../internal/bytes.js';
import { hmacSha256, timingSafeEqual } from '../internal/crypto.js';
import { encodeBase64Url } from './base64url.js';
import type { PaymentChallenge } from './challenge.js';

/** The parameters a challenge id covers (`description` is not among them). */
export type ChallengeIdInput = Pick<
  PaymentChallenge,
  'realm' | 'method' | 'intent' | 'request' | 'expires' | 'digest' | 'opaque'
>;

/**
 * The challenge id: base64url (no padding) of HMAC-SHA256(secret,
 * `realm|method|intent|request|expires|digest|opaque`), absent optional parameters as empty slots.
 * The slots are not escaped, so a `|` inside a value can make two parameter sets share an id (as in
 * every other implementation); servers choose these values themselves, so this is not exploitable
 * by a client.
 *
 * @example
 * ```ts
 * const id = createChallengeId(secret, { realm, method: 'lightning', intent: 'charge', request });
 * ```
 */
export function createChallengeId(secret: Uint8Array, challenge: ChallengeIdInput): string {
  const input = [
    challenge.realm,
    challenge.method,
    challenge.intent,
    challenge.request,
    challenge.expires ?? '',
    challenge.digest ?? '',
    challenge.opaque ?? '',
  ].join('|');
  return encodeBase64Url(hmacSha256(secret, utf8ToBytes(input)));
}

/**
 * Checks, in constant time, that `challenge.id` is the id this secret gives its parameters.
 * Returns the challenge, or `challenge_id_mismatch`.
 */
export function verifyChallengeId(
  secret: Uint8Array,
  challenge: PaymentChallenge,
): Result<PaymentChallenge, 'challenge_id_mismatch'> {
  const expected = utf8ToBytes(createChallengeId(secret, challenge));
  if (!timingSafeEqual(expected, utf8ToBytes(challenge.id))) {
    return fail('challenge_id_mismatch', 'the challenge id does not match its parameters');
  }
  return ok(challenge);
}
