/**
 * The lightning `session` intent (draft-lightning-session): pay a deposit once, then make many
 * requests against it. A credential's `payload.action` says what it does:
 * - `open` (`preimage`, `returnInvoice`): the deposit invoice is paid; its payment hash becomes the
 *   session id, and the amountless `returnInvoice` receives the refund when the session closes;
 * - `bearer` (`sessionId`, `preimage`): a request drawn from the session;
 * - `topUp` (`sessionId`, `topUpPreimage`): a further deposit, from a fresh challenge's invoice;
 * - `close` (`sessionId`, `preimage`): close the session and refund what was not spent.
 *
 * Every challenge id is an HMAC of its parameters, so the server keeps no state until a
 * credential comes back. `open` and `topUp` answer a challenge that must not have expired (its
 * invoice must be paid in time); `bearer` and `close` may echo any challenge of the server's,
 * expired or not: possession of the deposit preimage is what authorises them, and the session's
 * idle timeout bounds its life (Aperture checks their challenge's expiry too, which forces a new
 * challenge every 15 minutes).
 */
import { fail, ok, type Result, TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes } from '../internal/bytes.js';
import { sha256, timingSafeEqual } from '../internal/crypto.js';
import type { PaymentChallenge } from './challenge.js';
import { createChallengeId, verifyChallengeId } from './challenge-id.js';
import type { PaymentCredential } from './credential.js';
import {
  decodeSessionRequest,
  encodeSessionRequest,
  type LightningSessionRequest,
} from './session-request.js';

/** Options of {@link createSessionChallenge}. */
export interface CreateSessionChallengeParams extends LightningSessionRequest {
  /** The HMAC key of challenge ids. */
  secret: Uint8Array;
  realm: string;
  expires: Date;
  /** Correlation data, covered by the id (base64url JCS). */
  opaque?: string;
}

/** What a verified session credential asks for. */
export type SessionAction =
  | {
      action: 'open';
      sessionId: string;
      preimage: string;
      returnInvoice: string;
      /** What the deposit invoice was for, satoshis. */
      depositSat: bigint;
      request: LightningSessionRequest;
      challenge: PaymentChallenge;
    }
  | {
      action: 'topUp';
      sessionId: string;
      /** The payment hash of the top-up invoice. */
      paymentHash: string;
      depositSat: bigint;
      request: LightningSessionRequest;
      challenge: PaymentChallenge;
    }
  | { action: 'bearer' | 'close'; sessionId: string; challenge: PaymentChallenge };

const HEX32 = /^[0-9a-fA-F]{64}$/;

/** RFC 3339 in whole seconds, UTC. */
function formatTime(time: Date): string {
  return `${time.toISOString().slice(0, 19)}Z`;
}

/**
 * Mints a lightning `session` challenge. Throws `invalid_amount` or `invalid_hex` for a request
 * that cannot be encoded.
 *
 * @example
 * ```ts
 * const challenge = createSessionChallenge({
 *   secret, realm: 'api.example.com', amountSat: 3n, paymentHash, depositInvoice,
 *   depositAmountSat: 5000n, idleTimeoutSeconds: 300, expires: new Date(Date.now() + 900_000),
 * });
 * ```
 */
export function createSessionChallenge(params: CreateSessionChallengeParams): PaymentChallenge {
  const { secret, realm, expires, opaque, ...request } = params;
  const unsigned = {
    realm,
    method: 'lightning',
    intent: 'session',
    request: encodeSessionRequest(request),
    expires: formatTime(expires),
    ...(opaque === undefined ? {} : { opaque }),
  };
  return { id: createChallengeId(secret, unsigned), ...unsigned };
}

/** True when `sha256(preimage hex)` is `hash hex`, compared in constant time. */
function preimageOf(preimage: string | undefined, hash: string): boolean {
  if (preimage === undefined || !HEX32.test(preimage)) return false;
  return timingSafeEqual(sha256(hexToBytes(preimage)), hexToBytes(hash, 32));
}

/**
 * Verifies a session credential statelessly: the challenge is a lightning `session` one whose id
 * is the HMAC of its parameters under `secret` (`challenge_id_mismatch`); an `open` or `topUp`
 * answers an unexpired challenge with a deposit invoice (`challenge_expired`,
 * `invalid_challenge`) and proves it paid (`preimage_mismatch`); `bearer` and `close` prove the
 * session's deposit preimage. Whether the session exists, is open and has funds is the caller's
 * to check (the store knows).
 *
 * @example
 * ```ts
 * const verified = verifySessionCredential(credential, { secret, now: new Date() });
 * if (verified.ok && verified.value.action === 'open') openSession(verified.value);
 * ```
 */
export function verifySessionCredential(
  credential: PaymentCredential,
  options: { secret: Uint8Array; now: Date },
): Result<SessionAction> {
  const { challenge, payload } = credential;
  if (challenge.method !== 'lightning' || challenge.intent !== 'session') {
    return fail('invalid_credential', 'not a lightning session credential');
  }
  const bound = verifyChallengeId(options.secret, challenge);
  if (!bound.ok) return bound;
  let request: LightningSessionRequest;
  try {
    request = decodeSessionRequest(challenge.request);
  } catch (error) {
    if (error instanceof TollwayError) return fail(error.code, error.message);
    throw error;
  }
  const action = payload.action;
  if (action === 'bearer' || action === 'close') {
    const sessionId = payload.sessionId;
    if (sessionId === undefined || !HEX32.test(sessionId)) {
      return fail('invalid_credential', 'the session credential names no session');
    }
    if (!preimageOf(payload.preimage, sessionId)) {
      return fail('preimage_mismatch', 'the preimage is not the session deposit’s');
    }
    return ok({ action, sessionId: sessionId.toLowerCase(), challenge });
  }
  if (action !== 'open' && action !== 'topUp') {
    return fail('invalid_credential', 'the session credential has no known action');
  }
  const expires = Date.parse(challenge.expires ?? '');
  if (Number.isNaN(expires) || options.now.getTime() >= expires) {
    return fail('challenge_expired', 'the deposit challenge expired; ask for a new one');
  }
  if (request.depositInvoice === undefined || request.depositAmountSat === undefined) {
    return fail('invalid_challenge', 'the challenge carries no deposit invoice');
  }
  const depositSat = request.depositAmountSat;
  if (action === 'open') {
    if (!preimageOf(payload.preimage, request.paymentHash)) {
      return fail('preimage_mismatch', 'the preimage does not pay the deposit invoice');
    }
    if (payload.returnInvoice === undefined || payload.returnInvoice === '') {
      return fail('invalid_credential', 'an open credential needs a return invoice');
    }
    return ok({
      action,
      sessionId: request.paymentHash,
      preimage: (payload.preimage ?? '').toLowerCase(),
      returnInvoice: payload.returnInvoice,
      depositSat,
      request,
      challenge,
    });
  }
  const sessionId = payload.sessionId;
  if (sessionId === undefined || !HEX32.test(sessionId)) {
    return fail('invalid_credential', 'the top-up names no session');
  }
  if (!preimageOf(payload.topUpPreimage, request.paymentHash)) {
    return fail('preimage_mismatch', 'the top-up preimage does not pay its invoice');
  }
  return ok({
    action,
    sessionId: sessionId.toLowerCase(),
    paymentHash: bytesToHex(hexToBytes(request.paymentHash, 32)),
    depositSat,
    request,
    challenge,
  });
}
