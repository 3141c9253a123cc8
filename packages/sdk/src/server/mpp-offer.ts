/**
 * The MPP offer: a `Payment` challenge (method `lightning`, intent `charge`) for the shared invoice,
 * and the check of `Authorization: Payment …` credentials. A charge pays for one request: the
 * engine claims each credential once in the store and answers with a `Payment-Receipt`.
 *
 * The challenge's `opaque` parameter names the route's service, and the challenge id (an HMAC
 * under a key derived from the master secret) covers it, so a charge bought for one service cannot
 * be spent on another. `opaque` is optional to echo: a credential without it is checked against
 * the `opaque` of the route's own service, so the binding holds either way.
 */
import type { LightningNetwork } from '../lightning/types.js';
import { formatPaymentChallenge } from '../mpp/challenge.js';
import { createPaymentChallenge, verifyPaymentCredential } from '../mpp/charge.js';
import { parsePaymentCredential } from '../mpp/credential.js';
import { formatPaymentReceipt } from '../mpp/receipt.js';
import { echoedFor, opaqueOf, serviceOf, verifyUnderChallengeKeys } from './mpp-binding.js';
import type { CredentialVerdict, OfferKind, PaymentProof } from './offers.js';
import type { RootKeys } from './root-keys.js';

/** Options of {@link createMppOffer}. */
export interface MppOfferOptions {
  rootKeys: RootKeys;
  /** The protection space named in challenges, e.g. the API's host name. */
  realm: string;
}

/** How long a claimed charge is remembered after its challenge expired (clock skew). */
const CLAIM_GRACE_MS = 60_000;

/** The network of a BOLT11 invoice, by its human-readable prefix. */
function invoiceNetwork(invoice: string): LightningNetwork | undefined {
  const text = invoice.toLowerCase();
  if (text.startsWith('lnbcrt')) return 'regtest';
  if (text.startsWith('lnbc')) return 'mainnet';
  if (text.startsWith('lntbs')) return 'signet';
  if (text.startsWith('lntb')) return 'testnet';
  return undefined;
}

/** `2026-03-15T12:05:00Z`: RFC 3339 in whole seconds, UTC. */
function formatTimestamp(time: number): string {
  return `${new Date(time).toISOString().slice(0, 19)}Z`;
}

/**
 * Creates the MPP charge offer kind. It offers what one charge can buy, a whole number of
 * satoshis: one request at the route's price, or the balance a route sells — then the credential
 * is presented again for each draw, sharing the balance with the L402 token of the same invoice.
 * Routes that sell a number of uses get no MPP offer.
 *
 * @example
 * ```ts
 * const mpp = createMppOffer({ rootKeys, realm: 'api.example.com' });
 * ```
 */
export function createMppOffer(options: MppOfferOptions): OfferKind {
  const { rootKeys, realm } = options;
  return {
    name: 'mpp',
    offer(parts) {
      const { route, invoice, amountMsat } = parts;
      if (invoice === undefined) return undefined;
      const network = invoiceNetwork(invoice.paymentRequest);
      // A charge buys one request, or the balance a route sells; never a number of uses.
      if (route.uses !== undefined || network === undefined || amountMsat % 1000n !== 0n) {
        return undefined;
      }
      const challenge = createPaymentChallenge({
        secret: rootKeys.challengeKey(),
        realm,
        invoice: invoice.paymentRequest,
        paymentHash: invoice.paymentHash,
        amountSat: amountMsat / 1000n,
        network,
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
          intent: 'charge',
          amount: (amountMsat / 1000n).toString(),
          unit: 'sat',
          invoice: invoice.paymentRequest,
          paymentHash: invoice.paymentHash,
          challengeId: challenge.id,
          expiresAt: new Date(invoice.expiresAt).toISOString(),
          credential: 'Authorization: Payment <base64url JSON {challenge, payload: {preimage}}>',
        },
      };
    },
    read(source) {
      const credential = parsePaymentCredential(source.authorization);
      // A session's credentials are the session kind's (mpp-session-offer.ts).
      if (credential === undefined || credential.challenge.intent === 'session') return undefined;
      return {
        kind: 'mpp',
        verify(check): CredentialVerdict {
          const now = new Date(check.now);
          // The challenge id binds `opaque`, which names the service (mpp-binding.ts).
          const echoed = echoedFor(credential, check.route.service);
          const result = verifyUnderChallengeKeys(rootKeys, (secret) =>
            verifyPaymentCredential(echoed, { secret, now }),
          );
          if (!result.ok) return result;
          const { challenge, paymentHash, amountSat } = result.value;
          if (serviceOf(challenge.opaque) !== check.route.service) {
            return {
              ok: false,
              code: 'wrong_service',
              message: `the charge was not sold for service ${check.route.service}`,
            };
          }
          const receipt = formatPaymentReceipt({
            status: 'success',
            method: 'lightning',
            timestamp: formatTimestamp(check.now),
            reference: paymentHash,
            challengeId: challenge.id,
          });
          const proof: PaymentProof = {
            protocol: 'mpp',
            tokenId: challenge.id,
            paymentHash,
            amountMsat: amountSat * 1000n,
            headers: [['Payment-Receipt', receipt]],
          };
          if (check.route.balance !== undefined) {
            // A charge that bought a balance is presented again for every draw, as the L402
            // token of the same invoice is: both draw from the balance of that payment.
            return {
              ok: true,
              proof: { ...proof, account: paymentHash, balanceMsat: amountSat * 1000n },
            };
          }
          const expires = Date.parse(challenge.expires ?? '') || check.now;
          const singleUse = { key: `mpp:${challenge.id}`, expiresAt: expires + CLAIM_GRACE_MS };
          return { ok: true, proof: { ...proof, singleUse } };
        },
      };
    },
  };
}
