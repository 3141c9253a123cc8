/**
 * Contracts of the agent side: the paying fetch (`paying-fetch.ts`) asks a {@link Budget} before it
 * pays, records every payment in a {@link Ledger}, and keeps credentials and in-flight payments in a
 * {@link ClientStore} so that a crash between paying and retrying never leads to paying twice.
 *
 * Amounts are bigint: Lightning in msat; x402 in token base units, normalised to msat through a
 * configured rate source so one budget covers both (the rate used is recorded).
 */
import type { PaymentChallenge } from '../mpp/challenge.js';

/**
 * The protocols an agent can pay by: an L402 token, an MPP lightning charge, an MPP lightning
 * session (a deposit drawn by many requests, the rest refunded on close), an x402 payment.
 */
export type ClientProtocol = 'l402' | 'mpp' | 'mpp-session' | 'x402';

/** What the paying fetch asks a budget for before it pays. */
export interface SpendRequest {
  /** `https://api.example.com` (scheme, host, port). */
  origin: string;
  url: string;
  protocol: ClientProtocol;
  /** Lightning payee node pubkey (from the invoice) or x402 `payTo` address. */
  payee?: string;
  /** The price, normalised to msat. */
  amountMsat: bigint;
  /** The most the payment may cost in fees (Lightning routing fee); reserved with the amount. */
  maxFeeMsat: bigint;
  /** The price in its own unit, when that is not msat (x402 token amounts). */
  original?: { amount: bigint; unit: string; rate?: string };
  /**
   * What the payment buys: one request (default), or a prepaid balance that later requests draw
   * from (an L402 balance token, an MPP charge or x402 payment of a balance, a session deposit or
   * top-up), capped by `limits.perBalance` instead of `perRequest`.
   */
  buys?: 'request' | 'balance';
  /** Agent / task attribution, copied into the ledger. */
  tags?: Readonly<Record<string, string>>;
}

/** Money held for one payment until it is committed or released. */
export interface Reservation {
  id: string;
  request: SpendRequest;
  /** amountMsat + maxFeeMsat, held in every window of the budget and its ancestors. */
  heldMsat: bigint;
  createdAt: number;
  /** The USD/BTC rate the budget used for limits set in dollars (`usd_per_btc=65000`); copy it into the ledger. */
  rate?: string;
}

/** The state of one window of one budget. */
export interface BudgetWindowStatus {
  /** Budget path, e.g. `org/agent-7/task-42`. */
  budget: string;
  /** 'request' (per payment), 'hour', 'day', 'month' or 'total'; per-origin windows add `origin`. */
  window: 'request' | 'hour' | 'day' | 'month' | 'total';
  origin?: string;
  limitMsat: bigint;
  /** Committed spend inside the window (rolling). */
  spentMsat: bigint;
  /** Held by open reservations. */
  heldMsat: bigint;
  remainingMsat: bigint;
}

/**
 * A spending policy with rolling windows that holds under concurrency and across restarts.
 * Budgets nest (organisation → agent → task): a child can only narrow its parent, and a reservation
 * is held in the child and every ancestor at once, atomically.
 */
export interface Budget {
  readonly path: string;
  /** Attribution this budget adds to what it pays (and the paying fetch to what calls draw). */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Checks the policy and atomically holds `amountMsat + maxFeeMsat`. Throws a TollwayError:
   * `over_price` (per-request cap), `fee_too_high`, `budget_exceeded` (a window would overflow),
   * `origin_denied` / `payee_denied` (allow/deny lists), `approval_denied` (the approval callback said
   * no), `payments_disabled` (kill switch).
   */
  reserve(request: SpendRequest): Promise<Reservation>;
  /** Turns the hold into spend of `amountMsat + feeMsat` (≤ held) and frees the rest. Idempotent. */
  commit(reservation: Reservation, actual: { amountMsat: bigint; feeMsat: bigint }): Promise<void>;
  /**
   * Gives back money a committed payment returned (what a closed session refunded), up to what
   * it spent: the budget's windows count that much less. Returns what was given back.
   */
  refund(reservationId: string, amountMsat: bigint): Promise<bigint>;
  /** Frees the hold (the payment definitely did not happen). Idempotent. */
  release(reservation: Reservation): Promise<void>;
  /** Would `request` be allowed right now? Same checks as `reserve`, nothing held. */
  check(
    request: SpendRequest,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  /** Every window of this budget and its ancestors. */
  status(): Promise<BudgetWindowStatus[]>;
}

/**
 * What a ledger entry records:
 * - `purchase`: a payment, money that left the wallet (for one request, a token, a balance, a
 *   session deposit or top-up);
 * - `draw`: what one call was charged out of something bought before, as the server's receipt
 *   says (a balance or session draw, a use of a token, a single-use credential spent);
 * - `release`: a call the server charged nothing for (no answer, a failed one): what it held went
 *   back, and a single-use credential is kept for the next call;
 * - `refund`: money paid back to the wallet (what a closed session had left).
 */
export type LedgerKind = 'purchase' | 'draw' | 'release' | 'refund';

/** One entry of the ledger: a payment, a draw, a release or a refund (see {@link LedgerKind}). */
export interface LedgerEntry {
  /**
   * Unique. For a purchase, the {@link Reservation.id}: an old hold stays held while this entry is
   * pending or succeeded.
   */
  id: string;
  kind: LedgerKind;
  /** Unix ms when the payment was started. */
  time: number;
  tags: Readonly<Record<string, string>>;
  url: string;
  origin: string;
  protocol: ClientProtocol;
  /** Amount in its own unit (msat for Lightning). */
  amount: bigint;
  unit: string;
  /** Amount normalised to msat (equal to `amount` for Lightning). */
  amountMsat: bigint;
  feeMsat: bigint;
  /** The rate used to normalise, e.g. `usd_per_btc=65000`, when one was used. */
  rate?: string;
  /** Lightning payment hash, or x402 nonce (draws, releases and refunds: their account). */
  reference: string;
  /**
   * What the entry belongs to, so that purchases, draws and refunds of one balance add up: the
   * payment hash of an L402 token or MPP charge (of the balance an x402 payment bought, once known),
   * a session's id, an x402 nonce.
   */
  account?: string;
  /** Preimage (Lightning) or transaction hash (x402), once known. */
  proof?: string;
  /**
   * `succeeded`: paid, or charged as the receipt says; `failed`: not paid; `pending`: a payment
   * whose outcome is not known yet, or a draw of a metered answer that told only what it reserved
   * (`amount`: the most it cost).
   */
  status: 'pending' | 'succeeded' | 'failed';
  /** Payee node pubkey or payTo address. */
  payee?: string;
  /**
   * Opaque text the paying fetch writes with a pending payment (the macaroon or challenge it paid
   * for), to rebuild the credential when it resolves the payment after a crash.
   */
  resume?: string;
}

/** Filters of {@link Ledger.list}, {@link Ledger.totals} and {@link Ledger.summary}; all optional. */
export interface LedgerQuery {
  /** Entries at or after this time (unix ms). */
  since?: number;
  /** Entries before this time (unix ms). */
  until?: number;
  origin?: string;
  status?: LedgerEntry['status'];
  kind?: LedgerKind;
  protocol?: ClientProtocol;
  account?: string;
  /** Entries with this tag (`{ key: 'task', value: '42' }`). */
  tag?: { key: string; value: string };
  /** At most this many entries, the newest (`list` only). */
  limit?: number;
}

/** A count and sums of entries. */
export interface LedgerSum {
  count: number;
  amountMsat: bigint;
  feeMsat: bigint;
}

/**
 * Spend of one group of entries (see {@link Ledger.summary}). What left the wallet for good is
 * `purchases.amountMsat + purchases.feeMsat - refunds.amountMsat`; `draws` is what the calls
 * consumed of it, which tells which agent, task or model used what was bought.
 */
export interface LedgerSummary {
  /** The group: an origin, an account, or a tag's value (`''` for entries without the tag). */
  key: string;
  /** Succeeded purchases: money out. */
  purchases: LedgerSum;
  /** Succeeded draws: charged as receipts said. */
  draws: LedgerSum;
  /** Draws of metered answers that told only what they reserved: at most this much. */
  unsettledDraws: LedgerSum;
  /** Calls charged nothing (their reservation released). */
  releases: number;
  /** Succeeded refunds: money back. */
  refunds: LedgerSum;
}

/** How {@link Ledger.summary} groups: by origin, by account, or by the value of a tag. */
export type LedgerGrouping = 'origin' | 'account' | { tag: string };

/**
 * An agent's ledger, queryable: every payment, and what each call was charged. Read by
 * `tollway ledger`, the MCP `payments` tool and agent dashboards.
 */
export interface Ledger {
  /** The entries that match, newest first. */
  list(query?: LedgerQuery): Promise<LedgerEntry[]>;
  /** Sums of succeeded purchases per origin (amountMsat and feeMsat), by origin. */
  totals(
    query?: LedgerQuery,
  ): Promise<Array<{ origin: string; count: number; amountMsat: bigint; feeMsat: bigint }>>;
  /**
   * Spend of the entries that match, grouped (`'origin'`, `'account'`, or `{ tag: 'agent' }`),
   * purchases, draws and refunds apart; ordered by key.
   *
   * @example
   * ```ts
   * await store.summary({ since: Date.now() - 86_400_000 }, { tag: 'task' });
   * ```
   */
  summary(query: LedgerQuery, by: LedgerGrouping): Promise<LedgerSummary[]>;
}

/** A credential the paying fetch keeps to reuse (per origin and scope). */
export interface StoredCredential {
  origin: string;
  /** Path prefix the credential is believed to cover ('/' when unknown). */
  scope: string;
  protocol: ClientProtocol;
  /** The full Authorization (or x402 header) value to send. */
  header: { name: string; value: string };
  /** The ledger account it draws on (see {@link LedgerEntry.account}), when known. */
  account?: string;
  /**
   * Spent once sent (an MPP charge or x402 payment kept after the server released it, or after it
   * could not be sent): deleted from the store when it is sent again.
   */
  singleUse?: boolean;
  /** Unix ms; absent when unknown. */
  expiresAt?: number;
  createdAt: number;
}

/**
 * Persistence of the agent side (memory for tests; SQLite file by default). Holds budget windows and
 * reservations, the ledger, cached credentials and pending payments. Every method is atomic; the
 * SQLite store may be shared by several processes of one agent.
 */
export interface ClientStore extends Ledger {
  // budgets
  /** Atomically: if every (budget, window) in `holds` has room, hold the amount in all; else hold none. */
  tryHold(
    reservation: Reservation,
    holds: ReadonlyArray<{
      budget: string;
      window: BudgetWindowStatus['window'];
      origin?: string;
      limitMsat: bigint;
    }>,
    now: number,
  ): Promise<
    | { ok: true }
    | { ok: false; budget: string; window: string; origin?: string; remainingMsat: bigint }
  >;
  commitHold(reservationId: string, spentMsat: bigint, now: number): Promise<void>;
  /**
   * Gives back up to `amountMsat` of what a committed hold spent (a session's refund): its
   * windows count that much less. Returns what was given back (never more than it spent).
   */
  refundHold(reservationId: string, amountMsat: bigint): Promise<bigint>;
  releaseHold(reservationId: string): Promise<void>;
  windowStatus(
    budget: string,
    window: BudgetWindowStatus['window'],
    origin: string | undefined,
    now: number,
  ): Promise<{
    spentMsat: bigint;
    heldMsat: bigint;
  }>;
  /** Turns the kill switch of budget `budget` (a path) on or off, for every process sharing the store. */
  setBudgetDisabled(budget: string, disabled: boolean): Promise<void>;
  /** Paths of the budgets whose kill switch is on. */
  disabledBudgets(): Promise<string[]>;
  /**
   * Pauses (or resumes) every payment made through this store, whatever the budget, for every
   * process sharing it: the owner's kill switch (`tollway ledger --serve`). Paused, the paying
   * fetch refuses to pay with `payments_paused`.
   */
  setPaused(paused: boolean): Promise<void>;
  /** True while payments through this store are paused. */
  isPaused(): Promise<boolean>;
  // ledger
  /** Written BEFORE the payment is sent (status pending), so a crash leaves a trace to resume from. */
  recordPayment(entry: LedgerEntry): Promise<void>;
  /** The entry `id`, if the ledger has it. */
  findPayment(id: string): Promise<LedgerEntry | undefined>;
  updatePayment(
    id: string,
    patch: Partial<
      Pick<LedgerEntry, 'status' | 'proof' | 'feeMsat' | 'account' | 'amount' | 'amountMsat'>
    >,
  ): Promise<void>;
  /** Pending purchases (to resolve by payment hash after a crash), oldest first. */
  pendingPayments(): Promise<LedgerEntry[]>;
  // credentials
  saveCredential(credential: StoredCredential): Promise<void>;
  findCredential(origin: string, path: string, now: number): Promise<StoredCredential | undefined>;
  deleteCredential(origin: string, scope: string): Promise<void>;
  // sessions
  /** Saves a session (replacing one of the same id). */
  saveSession(session: StoredSession): Promise<void>;
  getSession(id: string): Promise<StoredSession | undefined>;
  /** Sessions of `origin` (or all) in one of `states` (or any), oldest first. */
  listSessions(query?: {
    origin?: string;
    states?: ReadonlyArray<StoredSession['state']>;
  }): Promise<StoredSession[]>;
  /**
   * Changes a saved session, atomically: only while its state is `from` when given. True when it
   * changed, so that of several processes closing one session, one records its refund.
   */
  updateSession(id: string, patch: SessionPatch, from?: StoredSession['state']): Promise<boolean>;
  // x402 batch-settlement channels
  /** Saves a channel (replacing one of the same id). */
  saveChannel(channel: StoredChannel): Promise<void>;
  getChannel(id: string): Promise<StoredChannel | undefined>;
  /** Channels of `origin` (or all) in one of `states` (or any), oldest first. */
  listChannels(query?: {
    origin?: string;
    states?: ReadonlyArray<StoredChannel['state']>;
  }): Promise<StoredChannel[]>;
  /**
   * Changes a saved channel, atomically: only while its state is `from` when given. True when it
   * changed, so that of several processes closing one channel, one asks for its refund.
   */
  updateChannel(id: string, patch: ChannelPatch, from?: StoredChannel['state']): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * An x402 `batch-settlement` channel the paying fetch deposited into, as the store keeps it so that
 * every process of the agent draws on it with vouchers and one asks for its refund. Its deposits,
 * draws and refund are ledger entries whose `account` is its id.
 */
export interface StoredChannel {
  /** The channel id (lower-case hex), from its config: payer, receiver, token, salt. */
  id: string;
  origin: string;
  /** A route the channel pays: its refund is asked there. */
  url: string;
  /** The token, `<network>/erc20:<address>`. */
  unit: string;
  /**
   * What the payer knows of the channel, as x402's client keeps it (decimal strings: what the
   * server charged in total, the balance deposited, …); absent once it was refunded in full.
   */
  record?: Readonly<Record<string, string>>;
  openedAt: number;
  /**
   * `open`: drawn with vouchers; `closing`: a refund was asked; `closed`: refunded (a new deposit
   * opens it again).
   */
  state: 'open' | 'closing' | 'closed';
  closedAt?: number;
  /** What the last refund gave back, token base units. */
  refund?: bigint;
}

/** What {@link ClientStore.updateChannel} may change; `record: null` removes the record. */
export type ChannelPatch = Partial<Pick<StoredChannel, 'state' | 'closedAt' | 'refund'>> & {
  record?: Readonly<Record<string, string>> | null;
};

/**
 * An MPP lightning session the paying fetch opened, as the store keeps it so that every process of
 * the agent draws on it and one closes it. Its deposits, draws and refund are ledger entries whose
 * `account` is its id.
 */
export interface StoredSession {
  /** The session id: the payment hash of its opening deposit. */
  id: string;
  origin: string;
  /** The path scope its credential is saved under. */
  scope: string;
  /** The request that opened it: its close is sent to the same URL, with the same method. */
  url: string;
  method: string;
  /** The session challenge it was opened with, echoed by its credentials. */
  challenge: PaymentChallenge;
  /** The deposit's preimage, lower-case hex: what proves the session is the agent's. */
  preimage: string;
  /** The amountless invoice of the agent's wallet the refund is paid to. */
  returnInvoice: string;
  /** Unix ms after which the return invoice can no longer receive the refund. */
  returnInvoiceExpiresAt: number;
  /** How long the server keeps the session without a request, ms. */
  idleTimeoutMs: number;
  openedAt: number;
  /**
   * `opening`: the deposit is paid, the server has not yet answered the open credential;
   * `open`: drawn with bearer credentials; `closing`: a close was sent; `closed`: closed, its
   * refund recorded.
   */
  state: 'opening' | 'open' | 'closing' | 'closed';
  closedAt?: number;
  /** What the server refunded, msat (whole sats). */
  refundMsat?: bigint;
  /** How the refund went, as the server said: `succeeded`, `failed`, `skipped` (nothing left). */
  refundStatus?: string;
}

/** What {@link ClientStore.updateSession} may change. */
export type SessionPatch = Partial<
  Pick<StoredSession, 'state' | 'closedAt' | 'refundMsat' | 'refundStatus'>
>;
