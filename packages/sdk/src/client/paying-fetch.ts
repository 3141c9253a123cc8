/**
 * The paying fetch: a drop-in `fetch` that answers HTTP 402 by paying one of the offers with a
 * Lightning wallet (or, when configured, an EVM wallet for x402), within a budget, and retries
 * with the proof. This file is its public face; the steps are functions of `(context, params)`
 * in files named for them: `paying-call.ts` (one call), `acquire.ts` (a credential for a
 * refusal), `lightning-payment.ts`, `x402-payment.ts`, `mcp-tool-call.ts` (x402 over MCP),
 * `credentials.ts` (the credential cache), `recovery.ts` (crash recovery), `quote.ts`.
 */
import { keepTickShape } from '../internal/tick-shape.js';
import type { RateSource } from '../money.js';
import type { EvmWallet } from '../x402/evm-wallet.js';
import type { LightningOffer, Offer, RejectedOffer } from './offers.js';
import { payingCall } from './paying-call.js';
import { createPayingContext, type PayingContext } from './paying-context.js';
import { resumePayments } from './recovery.js';

export type { ClosedSession } from './sessions-close.js';

import { type ClosedSession, closeSessions } from './sessions-close.js';
import type { Budget, ClientProtocol, ClientStore } from './types.js';
import { closeWallets, type WalletSource } from './wallets.js';

export { getPayment } from './paying-call.js';
export type { WalletSource } from './wallets.js';

/** A payment made by the paying fetch; see {@link getPayment}. */
export interface PaymentInfo {
  protocol: ClientProtocol;
  /** The invoice amount, msat (x402: the token amount normalised to msat). */
  amountMsat: bigint;
  /** The routing fee the wallet reports, msat (0 for x402: the facilitator pays gas). */
  feeMsat: bigint;
  /** The preimage, lower-case hex: the proof of payment (x402: the authorization nonce). */
  proof: string;
  /** The invoice's payment hash (x402: the authorization nonce). */
  paymentHash: string;
  origin: string;
  url: string;
  /** The id of the ledger entry (and of the budget reservation). */
  ledgerId: string;
  /**
   * x402 only: the scheme paid. `batch-settlement` is a deposit into a channel, whose id is then
   * `paymentHash`; `upto`'s nonce is Permit2's, `exact`'s the EIP-3009 authorization's.
   */
  x402Scheme?: 'exact' | 'upto' | 'batch-settlement';
}

/** One step of a call, for logs (`tollway fetch -v`). */
export type PayingFetchEvent =
  | { type: 'challenge'; url: string; status: number; withCredential: boolean }
  | { type: 'offers'; url: string; offers: Offer[]; rejected: RejectedOffer[] }
  | { type: 'chosen'; url: string; offer: LightningOffer }
  | { type: 'paid'; payment: PaymentInfo }
  | { type: 'shared'; url: string }
  | { type: 'recovered'; payment: PaymentInfo }
  | { type: 'released'; ledgerId: string; paymentHash: string }
  | { type: 'cached'; url: string; protocol: ClientProtocol }
  /** Paid from an x402 channel deposited into earlier: a voucher signed, no money moved. */
  | { type: 'voucher'; url: string; channelId: string }
  | { type: 'retry'; url: string; status: number }
  | { type: 'session-closed'; session: ClosedSession }
  | { type: 'session-topped-up'; url: string; sessionId: string }
  | { type: 'session-top-up-failed'; url: string; sessionId: string; error: unknown }
  | { type: 'session-close-failed'; error: unknown };

/**
 * How the paying fetch uses MPP lightning sessions (a deposit many requests draw from, the rest
 * refunded on close), offered on routes that sell a balance, and x402 `batch-settlement` channels
 * (the same, on EVM; paid when the EVM wallet has an `rpcUrl`).
 */
export interface PayingFetchSessionOptions {
  /**
   * How many requests the agent expects to make to one origin. When a 402 offers a session and
   * these requests would cost less than its deposit (at the session's price per request), the
   * session is paid before any other balance, whatever the preferences: what is not used comes
   * back on close. Otherwise the preferences decide (`'mpp-session'` among them). Above one, an
   * x402 `batch-settlement` offer is paid before `exact` and `upto`, with a deposit of this many
   * calls (one call's when the budget cannot hold more).
   */
  expectedCalls?: number;
  /**
   * Closes, and collects the refund of, a session (or x402 channel) this process has not used for
   * this long, ms. Checked after each call; `close()` closes the rest.
   */
  idleCloseMs?: number;
}

/** Options of {@link createPayingFetch}. */
export interface PayingFetchOptions {
  /**
   * The wallet(s) that pay; an offer is paid by the first wallet on the invoice's network. A
   * connection string (docs/reference/lightning.md) is checked now and connected the first time a
   * payment needs a wallet, so that calls answered with saved credentials open no connection;
   * `close()` closes it. A backend passed in stays the caller's to close.
   */
  wallets: WalletSource | readonly WalletSource[];
  /** Asked before every payment (amount + `maxFeeMsat` held), committed or released after. */
  budget?: Budget;
  /**
   * Ledger, cached credentials and budget state, and the pause switch checked before every
   * payment. Default: in memory (use the budget's store).
   */
  store?: ClientStore;
  /**
   * Protocols to pay by, most wanted first: `l402`, `mpp` (charges), `mpp-session` (sessions),
   * `x402`. Default `['l402', 'mpp']`.
   */
  preferences?: readonly ClientProtocol[];
  /** How sessions are chosen and closed; see {@link PayingFetchSessionOptions}. */
  sessions?: PayingFetchSessionOptions;
  /** Routing-fee ceiling per payment, msat. Default 10 000 (10 sat). */
  maxFeeMsat?: bigint;
  /**
   * Attribution written on every ledger entry (payments and draws), over the budget's tags and
   * under each request's own (`init.tags`).
   */
  tags?: Readonly<Record<string, string>>;
  /** Clock in unix ms. Default `Date.now`. */
  now?: () => number;
  /**
   * Largest request body buffered for the replay after a payment, in bytes (streams are read once
   * into memory). A larger body fails with `body_too_large` before anything is sent. Also the most
   * of an MCP tool call's answer read to look for an x402 payment-required result. Default 10 MiB.
   */
  maxBodyBytes?: number;
  /** Called after each payment is committed and its credential saved, before the retry. */
  onPayment?: (payment: PaymentInfo) => void;
  /** Called at each step of a call. */
  onEvent?: (event: PayingFetchEvent) => void;
  /** Pays x402 offers too (add `'x402'` to `preferences`). */
  x402?: PayingFetchX402Options;
  /**
   * OpenTelemetry spans for every call (docs/guides/tracing.md), from the globally registered
   * tracer provider. Needs `@opentelemetry/api` installed (an optional peer), imported on the
   * first call. Default `false`: nothing is loaded.
   */
  tracing?: boolean;
}

/**
 * How the paying fetch pays x402: the EVM wallet that signs, and the rate that normalises token
 * amounts to msat for the budget. Every asset the wallet allows is taken to be a USD stablecoin
 * (one token = one dollar) with `decimals` decimals.
 */
export interface PayingFetchX402Options {
  wallet: EvmWallet;
  rates: RateSource;
  /** Decimals of the allowed tokens. Default 6 (USDC). */
  decimals?: number;
}

/** What a 402 would cost; see {@link PayingFetch.quote}. */
export interface Quote {
  url: string;
  /** The status of the unpaid request. */
  status: number;
  /** True when a cached credential would be sent (no payment expected). */
  cached: boolean;
  offers: Offer[];
  /** Offers that cannot be paid, and why (including those no wallet or preference allows). */
  rejected: RejectedOffer[];
  /** The offer a payment would use. */
  choice?: LightningOffer;
  /** The verdict on `choice`: `payments_paused` while the store is paused, else the budget's, when there is one. */
  budget?: { ok: true } | { ok: false; code: string; message: string };
}

/** What {@link PayingFetch.resume} did with the pending payments of the ledger. */
export interface ResumeSummary {
  /** Found paid: committed, and their credentials rebuilt. */
  recovered: number;
  /** Found failed (or never sent and stale): released. */
  released: number;
  /** Still pending or not resolvable now. */
  unresolved: number;
}

/** The `RequestInit` of a paying fetch: a standard one, and the attribution of the request. */
export interface PayingRequestInit extends RequestInit {
  /**
   * Tags written in the ledger on what this request pays and what it is charged, over the paying
   * fetch's `tags` (`{ agent: 'researcher', task: 'weekly-report' }`). A request whose JSON body
   * names a `model` is tagged with it, unless these tags name one.
   */
  tags?: Readonly<Record<string, string>>;
}

/** A fetch that pays; see {@link createPayingFetch}. */
export interface PayingFetchCloseOptions {
  /** Closes only the sessions (and x402 channels) with this origin. */
  origin?: string;
  /** Leaves every session and channel open (another process, or a later run, may use it). Default false. */
  keepSessions?: boolean;
  /**
   * Closes only the sessions this paying fetch used, not those other processes on the store
   * opened and may be using. Default false.
   */
  usedHere?: boolean;
}

export interface PayingFetch {
  (input: string | URL | Request, init?: PayingRequestInit): Promise<Response>;
  /** Sends the request without paying and reports the offers of a 402 with their decoded prices. */
  quote(input: string | URL | Request, init?: PayingRequestInit): Promise<Quote>;
  /** Resolves pending payments by payment hash; runs by itself before the first request. */
  resume(): Promise<ResumeSummary>;
  /**
   * Call it on shutdown: closes the open MPP sessions and x402 channels in the store (of `origin`
   * when given) and collects their refunds, unless `keepSessions` leaves them open for later
   * processes; then closes the wallets the paying fetch connected from connection strings.
   */
  close(options?: PayingFetchCloseOptions): Promise<ClosedSession[]>;
}

/**
 * Creates a fetch that pays for HTTP 402 responses.
 *
 * On a 402 it reads every offer (L402 in every deployed form, MPP lightning charges, x402 v2 and
 * v1: paid when `x402` is set and preferred), decodes each invoice itself and prices the offer at
 * the invoice amount. It refuses to pay at all when a header or body claims another price than an invoice
 * (`amount_mismatch`), and skips expired invoices, invoices for a network no wallet is on and
 * protocols not in `preferences`. It picks by `preferences`, then price, then what the budget
 * accepts; reserves amount + `maxFeeMsat` in the budget; writes a pending ledger entry; pays;
 * checks sha256(preimage) against the invoice's payment hash; saves the credential; commits the
 * actual fee; and retries the request with the body buffered up front.
 *
 * Credentials: an L402 token is cached per origin and scope (the paths its `tollway_paths` caveat
 * names, else `/`, or the request path when it replaced a refused token) and sent with later
 * requests that its caveats allow (`tollway_paths`, `tollway_methods`, and `services` against the
 * service a 402 offers), so they need no 402 round trip. When a cached token is refused (401 or
 * 402), the call may try one token saved since by another call or process, then pays once more
 * and caches the new token for that path: a refused saved token never stops a call from paying
 * within the budget. MPP charge credentials are single-use and not cached. One call pays at most
 * once and sends at most three times (on an x402 channel, a voucher refused because another process
 * on the same record drew first is signed again from the server's corrected state, up to four
 * vouchers in all; so is a deposit refused that way, which the server did not settle). Concurrent calls on one origin and scope share one payment.
 *
 * x402 over MCP: a POST of one JSON-RPC `tools/call` answered 200 with a payment-required tool
 * result (`isError`, the x402 PaymentRequired in `structuredContent` or its text) is paid like a
 * `PAYMENT-REQUIRED` 402 when x402 is configured and preferred, and retried once with the payment
 * in `params._meta["x402/payment"]`; the tool result's `_meta["x402/payment-response"]` settles the
 * ledger entry. Otherwise the result is returned as it came. Answers are returned unchanged (they
 * are read from a copy, JSON whole or SSE up to the tool's event, at most `maxBodyBytes`).
 *
 * Errors (all `TollwayError`): `no_payable_offer`, `amount_mismatch`, budget refusals
 * (`over_price`, `budget_exceeded`, `fee_too_high`, `origin_denied`, `payee_denied`,
 * `approval_denied`, `payments_disabled`), `payments_paused` (the store is paused, with or without a
 * budget), `payment_failed` (the wallet definitely did not pay; the
 * hold is released), `payment_timeout` (the outcome is unknown, or an earlier payment on the origin
 * still is: the entry stays pending and is resolved by payment hash first), `preimage_mismatch`,
 * `body_too_large`. Network failures reject as `fetch` does.
 *
 * @example
 * ```ts
 * const store = createSqliteClientStore();
 * const fetch402 = createPayingFetch({
 *   wallets: process.env.TOLLWAY_WALLET ?? 'dev+http://127.0.0.1:4242?wallet=alice&token=…',
 *   store,
 *   budget: createBudget({ store, limits: { perRequest: '100 sat', day: '5000 sat' } }),
 * });
 * const response = await fetch402('https://api.example.com/forecast');
 * console.log(response.status, getPayment(response)?.amountMsat);
 * ```
 */
export function createPayingFetch(options: PayingFetchOptions): PayingFetch {
  keepTickShape();
  const context = createPayingContext(options);
  return Object.assign(
    (input: string | URL | Request, init?: PayingRequestInit) => payingCall(context, input, init),
    {
      // Loaded when first asked for: it brings the offer parsers (see `readOffers`).
      quote: async (input: string | URL | Request, init?: PayingRequestInit) =>
        (await import('./quote.js')).quote(context, input, init),
      resume: () => resumePayments(context),
      close: (options?: PayingFetchCloseOptions) => close(context, options),
    },
  );
}

async function close(
  context: PayingContext,
  options: PayingFetchCloseOptions = {},
): Promise<ClosedSession[]> {
  try {
    if (options.keepSessions === true) return [];
    const { origin, usedHere } = options;
    const which = {
      ...(origin === undefined ? {} : { origin }),
      ...(usedHere === undefined ? {} : { usedHere }),
    };
    const sessions = await closeSessions(context, which);
    // Channels need a wallet that pays them: without one, nothing of theirs is loaded.
    if (context.x402?.wallet.batch === undefined) return sessions;
    const { closeChannels } = await import('./channels-close.js');
    return [...sessions, ...(await closeChannels(context, which))];
  } finally {
    await closeWallets(context);
  }
}
