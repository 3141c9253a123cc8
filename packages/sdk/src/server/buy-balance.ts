/**
 * A payment that buys a route's balance (x402 on a route that sells one): claimed once, settled
 * before anything else, then an L402 token for the balance is minted — its "preimage" a fresh
 * secret only the buyer learns, handed over in `Tollway-Credential` — and the request draws from
 * it as any later one will.
 */
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes, sha256 } from '../internal/crypto.js';
import { tollwayConditions } from '../l402/caveats.js';
import { formatL402Credential } from '../l402/credential.js';
import { createTokenId } from '../l402/identifier.js';
import type { Amount } from '../money.js';
import { respond, storeCall, unavailable } from './answers.js';
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import type { Exchange } from './exchange.js';
import { mintL402Token } from './l402-offer.js';
import type { PaymentProof } from './offers.js';
import { priceToMsat } from './pricing.js';
import { reserve } from './reservation.js';
import { settle } from './settlement.js';
import type { PaymentContext, PaywallDecision } from './types.js';

/** Charges a proof for the request (the engine's charge, passed in to keep the modules apart). */
export type ChargeProof = (
  proof: PaymentProof,
  payment: PaymentContext,
) => Promise<PaywallDecision>;

/** The header that hands a buyer the credential of the balance its payment bought. */
const CREDENTIAL_HEADER = 'Tollway-Credential';

/**
 * A payment that buys the route's balance (x402): claimed once, settled before anything else,
 * then an L402 token for the balance is minted — its "preimage" a fresh secret only the buyer
 * learns, in `Tollway-Credential` — and this request draws from it as any later one will.
 */
export async function buyBalance(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  amount: Amount,
  payment: PaymentContext,
  chargeProof: ChargeProof,
): Promise<PaywallDecision> {
  // The purchase's own reservation: the payment's single-use claim.
  const claimed = await storeCall(context, () =>
    reserve(context, exchange, proof, undefined, payment),
  );
  if (!('value' in claimed)) return respond(context, exchange, claimed);
  if (!claimed.value.ok) return challenge(context, exchange, claimed.value.refusal);
  const settled = await settle(context, exchange, proof, claimed.value.reservation);
  if (settled.kind === 'respond') return settled;
  let balanceMsat: bigint;
  try {
    balanceMsat = await priceToMsat(amount, context.rates);
  } catch (error) {
    context.logger.error({ err: error }, 'a bought balance could not be priced');
    return respond(
      context,
      exchange,
      unavailable('price_unavailable', 'The price is unavailable.'),
    );
  }
  const token = mintBoughtToken(context, exchange, proof, balanceMsat);
  const drawn: PaymentContext = {
    ...payment,
    protocol: 'l402',
    tokenId: token.proof.tokenId,
    amount: balanceMsat,
    unit: 'msat',
  };
  const decision = await chargeProof(token.proof, drawn);
  if (decision.kind === 'respond') return decision;
  decision.headers.push(...settled.headers, [CREDENTIAL_HEADER, token.credential]);
  return decision;
}

/** The L402 token of a balance bought with `proof`'s payment, and its proof. */
function mintBoughtToken(
  context: PaywallContext,
  exchange: Exchange,
  proof: PaymentProof,
  balanceMsat: bigint,
): { credential: string; proof: PaymentProof } {
  const secret = randomBytes(32);
  const paymentHash = sha256(secret);
  const tokenId = createTokenId();
  const macaroon = mintL402Token(context.rootKeys, {
    route: exchange.route,
    paymentHash,
    tokenId,
    sale: { balanceMsat, price: undefined, now: exchange.now },
    caveats: [`${tollwayConditions.boughtWith}=${proof.protocol}`],
  });
  const credential = formatL402Credential({ macaroons: [macaroon], preimage: secret });
  return {
    credential,
    proof: {
      protocol: 'l402',
      tokenId: bytesToHex(tokenId),
      account: bytesToHex(paymentHash),
      paymentHash: bytesToHex(paymentHash),
      balanceMsat,
      boughtWith: proof.protocol,
      headers: [],
    },
  };
}
