/**
 * The lightning `charge` intent end to end on the server: mint a stateless challenge, then verify
 * the credential that answers it.
 */
import { fail, ok, type Result, TollwayError } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';
import { sha256, timingSafeEqual } from '../internal/crypto.js';
import type { LightningNetwork } from '../lightning/types.js';
import type { PaymentChallenge } from './challenge.js';
import { createChallengeId, verifyChallengeId } from './challenge-id.js';
import { decodeChargeRequest, encodeChargeRequest } from './charge-request.js';
import type { PaymentCredential } from './credential.js';

/** Parameters of {@link createPaymentChallenge}. */
export interface CreatePaymentChallengeParams {
  /** The server's HMAC secret for challenge ids (keep it stable across restarts and instances). */
  secret: Uint8Array;
  /** The protection space, e.g. the API's host name. */
  realm: string;
  /** The BOLT11 invoice to pay (one invoice may back both the L402 and the MPP offer of a 402). */
  invoice: string;
  /** The invoice's payment hash, 64 hex digits. */
  paymentHash: string;
  /** The price in satoshis; must be positive. */
  amountSat: bigint;
  /** The network the invoice is for. */
  network: LightningNetwork;
  /** Put in the request JSON, where the challenge id covers it. */
  description?: string;
  /** When the challenge stops being accepted (written in whole seconds, UTC). */
  expires: Date;
  /** Server state echoed back by the client, covered by the challenge id. */
  opaque?: string;
}

/** What {@link verifyPaymentCredential} returns for a good lightning charge credential. */
export interface VerifiedPaymentCharge {
  /** The answered challenge, as echoed. */
  challenge: PaymentChallenge;
  /** 64 lower-case hex digits: the key to claim for single use. */
  paymentHash: string;
  /** 64 lower-case hex digits. */
  preimage: string;
  /** The price in satoshis the challenge named. */
  amountSat: bigint;
  /** The invoice the challenge named. */
  invoice: string;
}

/** Options of {@link verifyPaymentCredential}. */
export interface VerifyPaymentCredentialOptions {
  /** The secret the challenge ids were made with. */
  secret: Uint8Array;
  /** The current time; defaults to now. */
  now?: Date;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
const PREIMAGE = /^[0-9a-fA-F]{64}$/;

/** RFC 3339 in whole seconds, UTC: `2026-03-15T12:05:00Z`. */
function formatTime(time: Date): string {
  const year = time.getUTCFullYear();
  if (Number.isNaN(year) || year < 1000 || year > 9999) {
    throw new TollwayError(
      'invalid_challenge',
      'expires is not a valid date in years 1000 to 9999',
    );
  }
  return `${time.toISOString().slice(0, 19)}Z`;
}

/**
 * Milliseconds since the epoch of an RFC 3339 time, or NaN. `Date.parse` alone would accept
 * impossible dates (it reads `2026-02-30` as March 2nd), so the fields are range-checked first.
 */
function parseTime(text: string): number {
  const match = RFC3339.exec(text);
  if (match === null) return Number.NaN;
  const field = (index: number): number => Number(match[index] ?? '0');
  const date = new Date(Date.UTC(field(1), field(2) - 1, field(3)));
  const valid =
    date.getUTCFullYear() === field(1) &&
    date.getUTCMonth() === field(2) - 1 &&
    date.getUTCDate() === field(3) &&
    field(4) < 24 &&
    field(5) < 60 &&
    field(6) < 60 &&
    field(7) < 24 &&
    field(8) < 60;
  return valid ? Date.parse(text) : Number.NaN;
}

/**
 * Mints a lightning `charge` challenge: encodes the request (JCS, base64url) and binds every
 * parameter to an HMAC id, so the server keeps no state until a credential comes back. Format it
 * with `formatPaymentChallenge`. Throws `invalid_amount`, `invalid_hex` (payment hash) or
 * `invalid_challenge` (an invalid `expires` date).
 *
 * @example
 * ```ts
 * const challenge = createPaymentChallenge({
 *   secret, realm: 'api.example.com', invoice, paymentHash, amountSat: 100n, network: 'mainnet',
 *   expires: new Date(Date.now() + 15 * 60_000),
 * });
 * headers.append('WWW-Authenticate', formatPaymentChallenge(challenge));
 * ```
 */
export function createPaymentChallenge(params: CreatePaymentChallengeParams): PaymentChallenge {
  const request = encodeChargeRequest({
    amountSat: params.amountSat,
    invoice: params.invoice,
    paymentHash: params.paymentHash,
    network: params.network,
    ...(params.description === undefined ? {} : { description: params.description }),
  });
  const unsigned = {
    realm: params.realm,
    method: 'lightning',
    intent: 'charge',
    request,
    expires: formatTime(params.expires),
    ...(params.opaque === undefined ? {} : { opaque: params.opaque }),
  };
  return { id: createChallengeId(params.secret, unsigned), ...unsigned };
}

/**
 * Verifies a lightning `charge` credential statelessly, in this order: the challenge is
 * `lightning`/`charge` (else `invalid_credential`); its id is the HMAC of its parameters under
 * `secret` (`challenge_id_mismatch`), so every echoed parameter is one this server issued; it has
 * not expired (`challenge_expired`; a challenge without `expires` does not expire); its request
 * decodes and names a payment hash (`invalid_challenge`, or the decoder's code); the payload
 * preimage is 64 hex digits (`invalid_preimage`); and sha256(preimage) equals the payment hash
 * (`preimage_mismatch`, compared in constant time).
 *
 * Charge credentials are single use, and this function cannot know whether one was used before:
 * the caller (the engine) must claim `paymentHash` atomically before serving the request.
 *
 * @example
 * ```ts
 * const result = verifyPaymentCredential(credential, { secret });
 * if (!result.ok) return reject(result.code);
 * if (!(await store.claim(result.value.paymentHash))) return reject('already used');
 * ```
 */
export function verifyPaymentCredential(
  credential: PaymentCredential,
  options: VerifyPaymentCredentialOptions,
): Result<VerifiedPaymentCharge> {
  const { challenge, payload } = credential;
  if (challenge.method !== 'lightning' || challenge.intent !== 'charge') {
    return fail('invalid_credential', 'not a lightning charge credential');
  }
  const bound = verifyChallengeId(options.secret, challenge);
  if (!bound.ok) return bound;

  if (challenge.expires !== undefined) {
    const expires = parseTime(challenge.expires);
    if (Number.isNaN(expires)) return fail('invalid_challenge', 'expires is not an RFC 3339 time');
    if ((options.now ?? new Date()).getTime() >= expires) {
      return fail('challenge_expired', `the challenge expired at ${challenge.expires}`);
    }
  }

  let request: ReturnType<typeof decodeChargeRequest>;
  try {
    request = decodeChargeRequest(challenge.request);
  } catch (error) {
    if (error instanceof TollwayError) return fail(error.code, error.message);
    throw error;
  }
  if (request.paymentHash === undefined) {
    return fail('invalid_challenge', 'the charge request names no payment hash');
  }

  const preimage = payload.preimage;
  if (preimage === undefined || !PREIMAGE.test(preimage)) {
    return fail('invalid_preimage', 'the preimage is not 32 bytes of hex');
  }
  const digest = sha256(hexToBytes(preimage));
  if (!timingSafeEqual(digest, hexToBytes(request.paymentHash))) {
    return fail('preimage_mismatch', 'sha256(preimage) does not equal the payment hash');
  }
  return ok({
    challenge,
    paymentHash: request.paymentHash,
    preimage: preimage.toLowerCase(),
    amountSat: request.amountSat,
    invoice: request.invoice,
  });
}
