/**
 * The paywall engine's contract with framework adapters. Adapters translate their framework's
 * request into a {@link PaywallRequest}, call `paywall.handle(request, route)`, and either write the
 * {@link PaywallResponse} or call the app's handler with the {@link PaymentContext}. Nothing else.
 */
import type { PriceInput } from './pricing.js';
import type { Problem } from './problem.js';
import type { PaymentProtocol } from './store.js';

/**
 * Read access to request headers by case-insensitive name. A Web `Headers` object is one; adapters
 * may pass a lighter view over their framework's headers (building a `Headers` costs about a
 * microsecond per header, which shows on the paid path).
 */
export interface HeaderReader {
  /** Every value of the header joined with `, `, or null when absent. */
  get(name: string): string | null;
  has(name: string): boolean;
}

/** What the engine needs to know about a request. Web-standard types only. */
export interface PaywallRequest {
  method: string;
  /** Path plus query, as received (e.g. `/v1/forecast?city=Oslo`). */
  url: string;
  /** Request headers. Repeated headers keep every value (needed to refuse conflicting credentials). */
  headers: HeaderReader;
  /**
   * Every value of the Authorization header as received, when the framework merges or drops
   * duplicates from `headers` (Node keeps only the first `Authorization`). Adapters fill it from
   * raw headers.
   */
  authorization?: readonly string[] | undefined;
  /** The client's IP address, for freebies and rate limits. */
  clientIp: string;
  /**
   * The parsed JSON body, for routes that price by body (`route.readsBody`). Adapters provide it
   * lazily; the engine only calls it for such routes and never for GET/HEAD.
   */
  jsonBody?: (() => Promise<unknown>) | undefined;
  /**
   * The offer kinds (by name: `l402`, `mpp`, `x402`, …) a 402 for this request may list; default
   * every kind of the paywall. When none of them takes a Lightning invoice (x402 alone), the 402
   * mints none. Credentials of every kind are still accepted.
   */
  offers?: readonly string[] | undefined;
  /**
   * A payment the caller already decoded from somewhere other than a header (x402 over MCP carries
   * it in the JSON-RPC body), read by the offer kind it names instead of that kind's headers.
   */
  payment?: DecodedPayment | undefined;
  /**
   * True when the caller reports the outcome of a paid request through the pass decision's
   * `charge` (the adapters and the gateway do). Only then does a charge follow the outcome (an
   * x402 payment settles once the handler commits to a status); otherwise it is taken before the
   * handler runs.
   */
  reportsOutcome?: boolean;
}

/** A payment decoded by the caller; see {@link PaywallRequest.payment}. */
export interface DecodedPayment {
  /** The offer kind that reads it (`x402`). */
  kind: string;
  /** What that kind reads (x402: a payment payload object, v2 shape). */
  payload: unknown;
}

/** A complete response the adapter writes as-is (a 402, 401, 403, 429, 400, 503 or a preflight). */
export interface PaywallResponse {
  status: number;
  headers: Array<[name: string, value: string]>;
  /** A JSON problem body (`application/problem+json`), already serialised. */
  body: string;
  /** The problem the body serialises, as data (absent for a CORS preflight's empty answer). */
  problem?: Problem;
  /**
   * For a 402 (or 401) with fresh offers: each offer in its protocol's own structure, by offer
   * kind name (x402: its `PaymentRequired` object), for callers that speak a protocol natively.
   */
  offers?: Readonly<Record<string, unknown>>;
  /** Set when a settlement failed: what the offer kind reported (x402: its `SettleResponse`). */
  settlement?: SettlementReport;
}

/** What an offer kind reported of a settlement, in its protocol's own structure. */
export interface SettlementReport {
  /** The offer kind that settled (`x402`). */
  kind: string;
  /** The protocol's own settlement result (x402: a `SettleResponse`). */
  data: unknown;
}

/** What a handler learns about the payment that let the request through. */
export interface PaymentContext {
  protocol: PaymentProtocol | 'free';
  /** Token id (L402), challenge id (MPP) or payer-nonce reference (x402); absent for free access. */
  tokenId?: string;
  service: string;
  tier?: number;
  /** The price paid for the token, in its unit. */
  amount?: bigint;
  /** 'msat' or an asset id. */
  unit?: string;
  /** Uses left after this request, when the token has a use limit. */
  remainingUses?: number;
  /** Balance left after this request, when the token is a prepaid balance. */
  remainingBalanceMsat?: bigint;
  /** When the credential stops being valid (unix ms), when it carries an expiry. */
  expiresAt?: number;
  /**
   * Why access was free, when it was: 'free_route', 'allowlist', 'freebie', or 'shadow' (a route
   * in shadow mode let an unpaid request through).
   */
  freeReason?: 'free_route' | 'allowlist' | 'freebie' | 'shadow';
  /** What the request would have been charged, msat, when it passed unpaid in shadow mode. */
  shadowMsat?: bigint;
  /**
   * Set when a request draws on a prepaid balance and reports its outcome: reports what this
   * request actually cost (`'1234 msat'`, `'$0.0042'`, a bigint of msat), at most what was held
   * for it (the route's price). The charge settles at it instead of the route's price, or the
   * meter's reading. Call it before the answer ends.
   */
  setCost?: (cost: PriceInput) => void;
}

/** The outcome of `paywall.handle`. */
export type PaywallDecision =
  | {
      kind: 'pass';
      payment: PaymentContext;
      /** Headers to add to the handler's response (e.g. `Payment-Receipt`). */
      headers: Array<[name: string, value: string]>;
      /**
       * Set when what is charged depends on the outcome (requests that `reportsOutcome`): call
       * `commit` with the status once the handler commits to one, before its body, or `release`
       * when there is no answer. Exactly one of them, once.
       */
      charge?: PaywallCharge;
      /** Set when a payment was settled before the handler (x402 `upfront`): what it reported. */
      settlement?: SettlementReport;
      /**
       * Set when the credential is a prepaid balance and the request reports its outcome: further
       * draws on that balance, for a connection that goes on after its answer (a WebSocket).
       */
      draw?: BalanceDraw;
      /**
       * Set when the paywall's `tracing` is on and the request reports its outcome: the
       * OpenTelemetry `Context` of the request's `tollway.handler` span. Start the spans of the
       * work that answers the request in it (the gateway's upstream call does) to nest them
       * there. Typed `unknown` so that `@opentelemetry/api`, an optional peer, stays out of these
       * types.
       */
      traceContext?: unknown;
    }
  | { kind: 'respond'; response: PaywallResponse };

/**
 * Further draws on the balance of the credential a request passed with; see
 * {@link PaywallDecision}. Each draw is held in the store (atomically, across instances) until it
 * is settled or released, and renewed meanwhile.
 */
export interface BalanceDraw {
  /** The balance the credential started with, msat. */
  readonly initialMsat: bigint;
  /**
   * Holds `amountMsat` of the balance: undefined when what is left (less what other requests
   * hold) cannot cover it.
   */
  hold(amountMsat: bigint): Promise<BalanceHold | undefined>;
}

/** Part of a balance held by {@link BalanceDraw.hold}. */
export interface BalanceHold {
  /** What is held, msat. */
  readonly amountMsat: bigint;
  /** What the balance has left once this hold is charged whole, msat. */
  readonly remainingMsat: bigint;
  /**
   * Charges `chargedMsat` (default: what is held; at most that), the rest goes back. Once; the
   * promise settles when the store has it.
   */
  settle(chargedMsat?: bigint): Promise<void>;
  /** Charges nothing. Once; the promise settles when the store has it. */
  release(): Promise<void>;
}

/** A paid request's charge, waiting for the outcome; see {@link PaywallDecision}. */
export interface PaywallCharge {
  /**
   * The handler committed to `status` (its headers are about to leave): charges the request (an
   * x402 payment settles here) or, for a failed answer, charges nothing. Gives the headers to add
   * to the answer, or a response to send instead of it (the settlement failed; the handler's
   * answer is dropped).
   */
  commit(status: number, headers?: HeaderReader): PaywallFinal | Promise<PaywallFinal>;
  /**
   * There is no answer (the handler threw, the upstream was unreachable): nothing is charged, and
   * the credential works again. Gives the headers that say so, for an answer the caller still
   * writes itself (the gateway's 502).
   */
  release(): Array<[name: string, value: string]>;
  /**
   * Set when the cost is known only at the end of the answer (a metered route, or a handler that
   * may report its cost): after `commit`, feed it the body as it leaves, then `end` it.
   */
  meter?: ChargeMeter;
}

/** The end of a charge whose cost is read from the answer; see {@link PaywallCharge.meter}. */
export interface ChargeMeter {
  /**
   * A chunk of the answer's body, in order, before it leaves: undefined to send it. A meter that
   * tells its cost as the answer goes may make it wait (a session that needs a top-up): then a
   * promise, true to send the chunk once it settles, false to end the answer without it (no top-up
   * came in time); meanwhile `say`, when the caller gives it, sends the client the session's
   * events (`payment-need-topup`, `session-timeout`).
   */
  write(chunk: Uint8Array, say?: (bytes: Uint8Array) => void): Promise<boolean> | undefined;
  /**
   * The body ended (`complete`), or stopped short (the client went away): settles at what the
   * answer cost (what was held when it cannot tell) and gives the receipt headers. Once.
   */
  end(complete: boolean): Promise<Array<[name: string, value: string]>>;
}

/** What `commit` decided: add `headers`, or answer with `response`. */
export type PaywallFinal =
  | {
      kind: 'pass';
      headers: Array<[name: string, value: string]>;
      /** What the settlement reported, when the commit settled a payment (x402). */
      settlement?: SettlementReport;
    }
  | { kind: 'respond'; response: PaywallResponse };
