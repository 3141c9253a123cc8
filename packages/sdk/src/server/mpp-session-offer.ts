/**
 * The MPP lightning `session` offer: on a route that sells a balance, a `Payment … intent="session"`
 * challenge whose deposit invoice is the 402's shared invoice — so one payment backs the L402
 * balance token, the MPP charge and the session alike, and they draw from one account (the
 * invoice's payment hash, which is also the session id). The credential's action (`open`,
 * `bearer`, `topUp`, `close`) is checked here; what it does to the session is the engine's
 * (sessions.ts).
 */
import { formatPaymentChallenge } from '../mpp/challenge.js';
import { parsePaymentCredential } from '../mpp/credential.js';
import { createSessionChallenge, verifySessionCredential } from '../mpp/session.js';
import { echoedFor, opaqueOf, verifyUnderChallengeKeys } from './mpp-binding.js';
import type { CredentialVerdict, OfferKind, PaymentProof } from './offers.js';
import type { RootKeys } from './root-keys.js';

/** Options of {@link createMppSessionOffer}. */
export interface MppSessionOfferOptions {
  rootKeys: RootKeys;
  realm: string;
  /** Seconds without a request after which a session is closed and refunded. */
  idleTimeoutSeconds: number;
}

/**
 * Creates the session offer kind (name `mpp-session`). Its proofs carry `session`: the action
 * and what it needs; the engine opens, draws, tops up and closes.
 *
 * @example
 * ```ts
 * const sessions = createMppSessionOffer({ rootKeys, realm: 'api.example.com', idleTimeoutSeconds: 300 });
 * ```
 */
export function createMppSessionOffer(options: MppSessionOfferOptions): OfferKind {
  const { rootKeys, realm, idleTimeoutSeconds } = options;
  return {
    name: 'mpp-session',
    offer(parts) {
      const { route, invoice, amountMsat, priceMsat } = parts;
      if (invoice === undefined || route.balance === undefined || amountMsat % 1000n !== 0n) {
        return undefined;
      }
      const challenge = createSessionChallenge({
        secret: rootKeys.challengeKey(),
        realm,
        amountSat: (priceMsat + 999n) / 1000n,
        unitType: 'request',
        paymentHash: invoice.paymentHash,
        depositInvoice: invoice.paymentRequest,
        depositAmountSat: amountMsat / 1000n,
        idleTimeoutSeconds,
        description: route.description,
        expires: new Date(invoice.expiresAt),
        opaque: opaqueOf(route.service),
      });
      return {
        challenges: [formatPaymentChallenge(challenge)],
        entry: {
          protocol: 'mpp',
          scheme: 'Payment',
          method: 'lightning',
          intent: 'session',
          amount: ((priceMsat + 999n) / 1000n).toString(),
          unit: 'sat',
          depositAmount: (amountMsat / 1000n).toString(),
          invoice: invoice.paymentRequest,
          paymentHash: invoice.paymentHash,
          challengeId: challenge.id,
          idleTimeout: String(idleTimeoutSeconds),
          expiresAt: new Date(invoice.expiresAt).toISOString(),
          credential:
            'Authorization: Payment <base64url JSON {challenge, payload: {action: "open", preimage, returnInvoice}}>',
        },
        data: challenge,
      };
    },
    read(source) {
      const credential = parsePaymentCredential(source.authorization);
      if (credential === undefined || credential.challenge.intent !== 'session') return undefined;
      return {
        kind: 'mpp-session',
        verify(check): CredentialVerdict {
          const now = new Date(check.now);
          // As for charges: a challenge echoed without `opaque` is checked against this service's.
          const echoed = echoedFor(credential, check.route.service);
          const result = verifyUnderChallengeKeys(rootKeys, (secret) =>
            verifySessionCredential(echoed, { secret, now }),
          );
          if (!result.ok) return result;
          const action = result.value;
          if (echoed.challenge.opaque !== opaqueOf(check.route.service)) {
            return {
              ok: false,
              code: 'wrong_service',
              message: `the session was not sold for service ${check.route.service}`,
            };
          }
          const proof: PaymentProof = {
            protocol: 'mpp',
            tokenId: action.sessionId,
            account: action.sessionId,
            paymentHash: action.action === 'topUp' ? action.paymentHash : action.sessionId,
            headers: [],
            session:
              action.action === 'open'
                ? {
                    action: 'open',
                    id: action.sessionId,
                    depositMsat: action.depositSat * 1000n,
                    depositInvoice: action.request.depositInvoice ?? '',
                    returnInvoice: action.returnInvoice,
                    idleTimeoutMs: (action.request.idleTimeoutSeconds ?? idleTimeoutSeconds) * 1000,
                  }
                : action.action === 'topUp'
                  ? {
                      action: 'topUp',
                      id: action.sessionId,
                      depositMsat: action.depositSat * 1000n,
                      paymentHash: action.paymentHash,
                    }
                  : { action: action.action, id: action.sessionId },
          };
          return { ok: true, proof };
        },
      };
    },
  };
}
