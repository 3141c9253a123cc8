/**
 * What the ledger keeps with a pending Lightning payment (`LedgerEntry.resume`) to finish it after
 * a crash: the token or challenge that was paid for, and where its credential is saved. The
 * credential is rebuilt from it and the preimage.
 *
 * @internal
 */
import type { L402Scheme } from '../l402/types.js';
import type { PaymentChallenge } from '../mpp/challenge.js';
import { formatPaymentCredential, type PaymentPayload } from '../mpp/credential.js';
import type { LightningOffer } from './offers.js';
import type { ClientProtocol, LedgerEntry } from './types.js';

/** The resume data of a pending payment, version 1. */
export interface ResumeData {
  v: 1;
  /** The request path; the scope of a recovered single-use credential. */
  path: string;
  /** The scope an L402 token is saved under when its caveats name none. */
  scope: string;
  maxFeeMsat: string;
  credential:
    | { protocol: 'l402'; scheme: L402Scheme; macaroon: string }
    | {
        protocol: 'mpp';
        challenge: PaymentChallenge;
        /** The charge bought a balance: its credential is presented again by every later call. */
        balance?: true;
      }
    | {
        /** A session's opening deposit: the session is saved, its `open` credential with it. */
        protocol: 'mpp-session';
        challenge: PaymentChallenge;
        returnInvoice: string;
        returnInvoiceExpiresAt: number;
        idleTimeoutMs: number;
        /** The method of the call that opened it (its close is sent with it). */
        method: string;
      }
    | {
        /** A top-up of session `sessionId`: credited by sending its `topUp` credential. */
        protocol: 'mpp-session-top-up';
        challenge: PaymentChallenge;
        sessionId: string;
      };
}

/**
 * The resume data of a payment of `offer` for `url`, its token saved under `scope` unless its
 * caveats name paths.
 *
 * @internal
 */
export function createResumeData(
  offer: LightningOffer,
  url: URL,
  scope: string,
  maxFeeMsat: bigint,
): ResumeData {
  return {
    v: 1,
    path: url.pathname,
    scope,
    maxFeeMsat: maxFeeMsat.toString(),
    credential:
      offer.protocol === 'l402'
        ? { protocol: 'l402', scheme: offer.scheme, macaroon: offer.macaroon }
        : {
            protocol: 'mpp',
            challenge: offer.challenge,
            ...(offer.buysBalance === true ? { balance: true as const } : {}),
          },
  };
}

/**
 * True when the credential of a payment is presented again by later calls: an L402 token, an MPP
 * charge that bought a balance, a session (not its top-up, sent once).
 *
 * @internal
 */
export function isReusable(credential: ResumeData['credential']): boolean {
  if (credential.protocol === 'mpp') return credential.balance === true;
  return credential.protocol !== 'mpp-session-top-up';
}

/**
 * The protocol a payment of `credential` was made by (a session's top-up: `mpp-session`).
 *
 * @internal
 */
export function protocolOf(credential: ResumeData['credential']): ClientProtocol {
  return credential.protocol === 'mpp-session-top-up' ? 'mpp-session' : credential.protocol;
}

/**
 * The resume data of a ledger entry, or undefined when it has none this client can read (another
 * client's entry, an x402 payment, another version).
 *
 * @internal
 */
export function readResumeData(entry: LedgerEntry): ResumeData | undefined {
  if (entry.resume === undefined) return undefined;
  try {
    const data = JSON.parse(entry.resume) as ResumeData;
    return data.v === 1 ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `Authorization` header of a paid token or challenge, with the payment's preimage (a
 * session's: its `open` credential, which the server answers the same way however often it
 * comes; a top-up's: its `topUp` credential, which credits it once).
 *
 * @internal
 */
export function credentialHeader(
  credential: ResumeData['credential'],
  preimage: string,
): { name: string; value: string } {
  if (credential.protocol === 'l402') {
    return {
      name: 'Authorization',
      value: `${credential.scheme} ${credential.macaroon}:${preimage}`,
    };
  }
  let payload: PaymentPayload;
  if (credential.protocol === 'mpp') payload = { preimage };
  else if (credential.protocol === 'mpp-session') {
    payload = { action: 'open', preimage, returnInvoice: credential.returnInvoice };
  } else {
    payload = { action: 'topUp', sessionId: credential.sessionId, topUpPreimage: preimage };
  }
  const value = formatPaymentCredential({ challenge: credential.challenge, payload });
  return { name: 'Authorization', value };
}
