/**
 * The paywall engine's contract with framework adapters. Adapters translate their framework's
 * request into a {@link PaywallRequest}, call `paywall.handle(request, route)`, and either write the
 * {@link PaywallResponse} or call the app's handler with the {@link PaymentContext}. Nothing else.
 */
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
   * True when the adapter holds the handler's answer back and calls the pass decision's
   * `finalize` with it; only then does an x402 payment settle after the handler (otherwise before).
   */
  finalizes?: boolean;
}

/** A complete response the adapter writes as-is (a 402, 401, 403, 429 or 400). */
export interface PaywallResponse {
  status: number;
  headers: Array<[name: string, value: string]>;
  /** A JSON problem body (`application/problem+json`), already serialised. */
  body: string;
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
  /** Why access was free, when it was: 'free_route', 'allowlist' or 'freebie'. */
  freeReason?: 'free_route' | 'allowlist' | 'freebie';
}

/** The outcome of `paywall.handle`. */
export type PaywallDecision =
  | {
      kind: 'pass';
      payment: PaymentContext;
      /** Headers to add to the handler's response (e.g. `Payment-Receipt`). */
      headers: Array<[name: string, value: string]>;
      /**
       * Set when the payment settles after the handler (x402, for adapters that declare
       * `finalizes`): call it with the handler's status before sending its answer, then add the
       * headers it gives, or send its response instead (settlement failed; the answer is dropped).
       */
      finalize?: (status: number) => Promise<PaywallFinal>;
    }
  | { kind: 'respond'; response: PaywallResponse };

/** What `finalize` decided once the handler answered: add `headers`, or answer with `response`. */
export type PaywallFinal =
  | { kind: 'pass'; headers: Array<[name: string, value: string]> }
  | { kind: 'respond'; response: PaywallResponse };
