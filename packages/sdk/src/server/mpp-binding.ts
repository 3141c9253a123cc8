/**
 * What binds an MPP credential (charge or session) to this server and route: the challenge id,
 * an HMAC under the challenge key that covers `opaque`, which names the service. Shared by the
 * charge and session offer kinds.
 */
import type { Result } from '../errors.js';
import type { PaymentCredential } from '../mpp/credential.js';
import { decodeJsonBase64Url, encodeJsonBase64Url, isJsonObject } from '../mpp/json.js';
import type { RootKeys } from './root-keys.js';

/** The `opaque` a challenge of `service` carries. */
export function opaqueOf(service: string): string {
  return encodeJsonBase64Url({ service });
}

/** The service an `opaque` names, or undefined when it names none. */
export function serviceOf(opaque: string | undefined): string | undefined {
  if (opaque === undefined) return undefined;
  try {
    const json = decodeJsonBase64Url(opaque);
    return isJsonObject(json) && typeof json.service === 'string' ? json.service : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The credential as this route's challenge would have it. A client may drop `opaque` when echoing
 * the challenge (Alby's does): the id is then checked against the `opaque` this route would have
 * minted, so the credential still binds money to this service.
 */
export function echoedFor(credential: PaymentCredential, service: string): PaymentCredential {
  if (credential.challenge.opaque !== undefined) return credential;
  return { ...credential, challenge: { ...credential.challenge, opaque: opaqueOf(service) } };
}

/** `verify` under the newest challenge key, then older ones while the id is what does not match. */
export function verifyUnderChallengeKeys<T>(
  rootKeys: RootKeys,
  verify: (secret: Uint8Array) => Result<T>,
): Result<T> {
  let result = verify(rootKeys.challengeKey());
  for (let index = 1; index < rootKeys.size; index++) {
    if (result.ok || result.code !== 'challenge_id_mismatch') break;
    result = verify(rootKeys.challengeKey(index));
  }
  return result;
}
