/**
 * The offer list: each way of paying a 402 is an offer kind that (1) adds its challenge headers and
 * its entry in the problem body for the shared invoice and token id, and (2) recognises and checks
 * its own credential. The engine owns everything around them (pricing, minting the invoice, rate
 * limits, revocation, counters, records), so a new protocol joins by adding a kind.
 */
import { TollwayError, type TollwayErrorCode } from '../errors.js';
import type { CreatedInvoice } from '../lightning/types.js';
import type { Amount } from '../money.js';
import type { Quote } from './pricing.js';
import type { Route } from './route.js';
import type { PaymentProtocol } from './store.js';
import type { DecodedPayment, HeaderReader } from './types.js';

/** What a session credential asks; the session id is its opening deposit's payment hash. */
export type SessionRequest =
  | {
      action: 'open';
      id: string;
      depositMsat: bigint;
      /** The deposit invoice (the 402's), for the network the return invoice must be on. */
      depositInvoice: string;
      /** The amountless invoice the refund is paid to. */
      returnInvoice: string;
      idleTimeoutMs: number;
    }
  | { action: 'topUp'; id: string; depositMsat: bigint; paymentHash: string }
  | { action: 'bearer' | 'close'; id: string };

/** What every offer of one 402 shares. */
export interface ChallengeParts {
  route: Route;
  /** The request path, without the query. */
  path: string;
  /** The request method, upper case. */
  method: string;
  /**
   * The one invoice behind every Lightning offer of this 402; undefined when the 402 offers only
   * kinds that take no invoice (`invoice: false`), which are then the only kinds asked.
   */
  invoice: CreatedInvoice | undefined;
  /** A fresh random 32-byte token id. */
  tokenId: Uint8Array;
  /** The price of this request, msat. */
  priceMsat: bigint;
  /** The price of this request as the route lists it (dollars or msat), before conversion. */
  price: Amount;
  /** The price of this request in micro-dollars, when it is in dollars or a rate converts it. */
  priceMicroUsd: bigint | undefined;
  /** What the invoice is for, msat: the price, or the balance a prepaid route sells. */
  amountMsat: bigint;
  /** Unix ms. */
  now: number;
}

/** One offer's part of a 402. */
export interface OfferPart {
  /** `WWW-Authenticate` values, in order. */
  challenges: string[];
  /** Other response headers (x402's `PAYMENT-REQUIRED`). */
  headers?: Array<[name: string, value: string]>;
  /** This offer's entry in the body's `offers` list (JSON; amounts as decimal strings). */
  entry: Record<string, unknown>;
  /** Top-level members of the 402 body (x402 v1's `x402Version`, `error` and `accepts`). */
  body?: Record<string, unknown>;
  /** The offer in its protocol's own structure (x402: its `PaymentRequired`), for native callers. */
  data?: unknown;
}

/** Where credentials come from. */
export interface CredentialSource {
  /** Every `Authorization` value as received. */
  authorization: readonly string[];
  headers: HeaderReader;
  /** A payment the caller decoded from elsewhere (see `PaywallRequest.payment`). */
  payment?: DecodedPayment | undefined;
}

/** The request a credential is checked against. */
export interface CredentialCheck {
  route: Route;
  /** Without the query. */
  path: string;
  /** Upper case. */
  method: string;
  /** Unix ms. */
  now: number;
  /**
   * The price of this request, computed once per request (undefined when it cannot be priced).
   * Set only for routes priced by a function, whose price depends on the request, and metered
   * routes (an x402 `upto` authorises their price in dollars); offers that charge the request's
   * own price (x402) read it, while L402 and MPP never need it.
   */
  quote?: () => Promise<Quote | undefined>;
}

/** What a valid credential proves. */
export interface PaymentProof {
  protocol: PaymentProtocol;
  /** The key of revocation and rate limits: the L402 token id, the MPP challenge id. */
  tokenId: string;
  /**
   * The key of the credential's counters (uses, balance), when not `tokenId`: every credential of
   * one payment shares them (the L402 token and the MPP charge of one invoice: its payment hash).
   */
  account?: string;
  /** The Lightning payment hash proven paid (checked in strict mode, recorded as settled). */
  paymentHash: string;
  tier?: number;
  /** What was paid, msat, when the credential says it. */
  amountMsat?: bigint;
  /** Unix ms, when the token expires. */
  expiresAt?: number;
  /** The use limit the token carries. */
  maxUses?: number;
  /** The prepaid balance the token carries, msat. */
  balanceMsat?: bigint;
  /**
   * Set when `balanceMsat` is a payment session's deposits, which top-ups raise and a close takes
   * what is left of: each draw then holds its own amount in the store instead of drawing from this
   * instance's lease of the balance (balance-leases.ts), so that the close sees every unit.
   */
  sessionDeposit?: true;
  /**
   * Set for a token a payment in another protocol bought (`x402`): its payment hash is no
   * invoice's, so strict mode does not ask the Lightning backend about it.
   */
  boughtWith?: string;
  /** Set for a payment session's credential (MPP `session` intent): what it asks of the session. */
  session?: SessionRequest;
  /**
   * Set when the payment buys the route's balance rather than one request (x402 on a route that
   * sells a balance): the engine settles it first, then mints an L402 token for the balance,
   * hands it to the buyer (`Tollway-Credential`) and draws this request from it.
   */
  buysBalance?: { amount: Amount };
  /**
   * The price the credential paid per request, as the route listed it: a dearer request is
   * refused (`price_exceeds_token`). Absent for tokens that carry no price (balances, tokens minted
   * before prices were carried).
   */
  maxPrice?: Amount;
  /** For single-use proofs: the key to claim once (and how long to remember it, unix ms). */
  singleUse?: { key: string; expiresAt: number };
  /** Headers for the paid response (e.g. `Payment-Receipt`). */
  headers: Array<[name: string, value: string]>;
  /**
   * Moves the money (x402): the engine calls it once the single-use key is claimed, before the
   * handler (or after it, with `settleAfter`), and passes only when it succeeds.
   */
  settle?: (cost?: Amount) => Promise<SettleOutcome>;
  /**
   * Set when the payment settles at what the answer cost, at most what it authorised (x402
   * `upto`): the engine passes `settle` that cost in dollars (none: the whole authorisation).
   */
  settlesCost?: true;
  /**
   * Set when the credential draws on a deposit kept elsewhere (an x402 `batch-settlement`
   * channel), in the deposit's own unit: `amount` from `account`, whose deposit is `deposit`,
   * held and charged like a prepaid balance. Refused unless everything drawn, this included,
   * stays within `ceiling` (what the credential lets the server claim): a credential used again,
   * or one older than the last used, no longer covers what was drawn. `uncovered` words that
   * refusal, given what the account has drawn and holds besides this request (x402's corrective
   * 402, from which the payer signs again). `fund` is set when the credential also pays into the
   * deposit (an x402 deposit, a channel's first or a top-up: `deposit` counts it already): the engine runs it once the draw is
   * held and covered, so that a credential whose draw is refused moves no money, and a refusal
   * it returns releases the draw.
   */
  draws?: {
    account: string;
    amount: bigint;
    deposit: bigint;
    ceiling: bigint;
    unit: string;
    uncovered: (drawn: bigint) => Promise<CredentialRefusal>;
    fund?: () => Promise<CredentialRefusal | undefined>;
  };
  /**
   * Settle once the handler commits to a successful status instead, when the caller reports the
   * outcome (see `PaywallRequest.reportsOutcome`).
   */
  settleAfter?: boolean;
  /**
   * Set when the credential asks something of the payment rather than paying for this request (an
   * x402 `batch-settlement` refund), or is refused in its protocol's own words before it moves
   * money (x402's corrective 402 for a deposit behind its channel): the engine runs it instead of
   * the handler and answers with what it says.
   */
  answer?: () => Promise<CredentialAnswer>;
}

/**
 * What the engine answers for a credential that asks something of its payment (see
 * `PaymentProof.answer`): a 200 JSON body, or a refusal; `headers` go on the answer either way
 * (x402's `PAYMENT-RESPONSE`).
 */
export type CredentialAnswer =
  | { ok: true; body: Record<string, unknown>; headers: Array<[name: string, value: string]> }
  | CredentialRefusal;

/**
 * A refusal the credential's own protocol words (x402's corrective 402): answered as it is, with
 * its `headers` and no fresh offers.
 */
export interface CredentialRefusal {
  ok: false;
  status: 402 | 503;
  code: TollwayErrorCode;
  message: string;
  headers: Array<[name: string, value: string]>;
}

/** What a proof's `settle` did; `headers` go on the answer either way (x402's `PAYMENT-RESPONSE`). */
export type SettleOutcome =
  | {
      ok: true;
      headers: Array<[name: string, value: string]>;
      /** The settlement to record: unique reference, amount in `unit` (an asset id). */
      settlement: { reference: string; amount: bigint; unit: string };
      /** The protocol's own settlement result (x402: its `SettleResponse`). */
      data?: unknown;
    }
  | {
      ok: false;
      code: TollwayErrorCode;
      message: string;
      headers: Array<[name: string, value: string]>;
      /** The protocol's own settlement result (x402: its `SettleResponse`). */
      data?: unknown;
    };

/** The outcome of checking a credential. */
export type CredentialVerdict =
  | { ok: true; proof: PaymentProof }
  | {
      ok: false;
      code: TollwayErrorCode;
      message: string;
      /** 401 (default) or 402 with fresh offers, or 503 when the check itself could not be made. */
      status?: 401 | 402 | 503;
    };

/** A credential an offer kind recognised in a request. */
export interface PresentedCredential {
  /** The name of the kind that read it. */
  readonly kind: string;
  /**
   * Checks the credential against one request. Pure for L402 and MPP. Called again for later
   * requests with the same credential text, so it may remember work that does not depend on the
   * request (a verified signature).
   */
  verify(check: CredentialCheck): CredentialVerdict | Promise<CredentialVerdict>;
}

/** One way of paying a 402. */
export interface OfferKind {
  /** Its name in the body's `offers` list and in logs: `l402`, `mpp`, … */
  readonly name: string;
  /**
   * False for a kind paid without a Lightning invoice (x402): a 402 offering only such kinds
   * mints no invoice. Default true.
   */
  readonly invoice?: boolean;
  /**
   * The request headers (lower case) this kind reads credentials from, besides `Authorization`
   * (which every kind sees). The engine keys its cache of verified credentials on their text.
   */
  readonly headers?: readonly string[];
  /** This kind's part of a 402, or undefined when it cannot offer this route or price. */
  offer(parts: ChallengeParts): OfferPart | undefined;
  /**
   * This kind's credential in the request, or undefined when there is none. Throws a
   * `TollwayError` for a malformed one (`invalid_credential`, `conflicting_credentials`, …).
   */
  read(source: CredentialSource): PresentedCredential | undefined;
}

/**
 * The one credential of a request across every kind, or undefined when there is none. Throws
 * `conflicting_credentials` when credentials of two kinds are present, and whatever a kind throws
 * for a malformed one.
 */
export function readCredential(
  kinds: readonly OfferKind[],
  source: CredentialSource,
): PresentedCredential | undefined {
  let found: PresentedCredential | undefined;
  for (const kind of kinds) {
    const presented = kind.read(source);
    if (presented === undefined) continue;
    if (found !== undefined) {
      throw new TollwayError(
        'conflicting_credentials',
        `the request carries both a ${found.kind} and a ${presented.kind} credential`,
      );
    }
    found = presented;
  }
  return found;
}
