/**
 * Contracts of the agent side: the paying fetch (`paying-fetch.ts`) asks a {@link Budget} before it
 * pays, records every payment in a {@link Ledger}, and keeps credentials and in-flight payments in a
 * {@link ClientStore} so that a crash between paying and retrying never leads to paying twice.
 *
 * Amounts are bigint: Lightning in msat; x402 in token base units, normalised to msat through a
 * configured rate source so one budget covers both (the rate used is recorded).
 */

/** The protocols an agent can pay by. */
export type ClientProtocol = 'l402' | 'mpp' | 'x402';

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
  /**
   * Checks the policy and atomically holds `amountMsat + maxFeeMsat`. Throws a TollwayError:
   * `over_price` (per-request cap), `fee_too_high`, `budget_exceeded` (a window would overflow),
   * `origin_denied` / `payee_denied` (allow/deny lists), `approval_denied` (the approval callback said
   * no), `payments_disabled` (kill switch).
   */
  reserve(request: SpendRequest): Promise<Reservation>;
  /** Turns the hold into spend of `amountMsat + feeMsat` (≤ held) and frees the rest. Idempotent. */
  commit(reservation: Reservation, actual: { amountMsat: bigint; feeMsat: bigint }): Promise<void>;
  /** Frees the hold (the payment definitely did not happen). Idempotent. */
  release(reservation: Reservation): Promise<void>;
  /** Would `request` be allowed right now? Same checks as `reserve`, nothing held. */
  check(
    request: SpendRequest,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  /** Every window of this budget and its ancestors. */
  status(): Promise<BudgetWindowStatus[]>;
}

/** One payment in the ledger. */
export interface LedgerEntry {
  /** The {@link Reservation.id}: an old hold stays held while this entry is pending or succeeded. */
  id: string;
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
  /** Lightning payment hash, or x402 nonce. */
  reference: string;
  /** Preimage (Lightning) or transaction hash (x402), once known. */
  proof?: string;
  status: 'pending' | 'succeeded' | 'failed';
  /** Payee node pubkey or payTo address. */
  payee?: string;
  /**
   * Opaque text the paying fetch writes with a pending payment (the macaroon or challenge it paid
   * for), to rebuild the credential when it resolves the payment after a crash.
   */
  resume?: string;
}

/** Query of {@link Ledger.list}. */
export interface LedgerQuery {
  since?: number;
  until?: number;
  origin?: string;
  status?: LedgerEntry['status'];
  tag?: { key: string; value: string };
  limit?: number;
}

/** Every payment an agent made, queryable. */
export interface Ledger {
  list(query?: LedgerQuery): Promise<LedgerEntry[]>;
  /** Sums of succeeded payments per origin (amountMsat and feeMsat), for `tollway ledger`. */
  totals(
    query?: LedgerQuery,
  ): Promise<Array<{ origin: string; count: number; amountMsat: bigint; feeMsat: bigint }>>;
}

/** A credential the paying fetch keeps to reuse (per origin and scope). */
export interface StoredCredential {
  origin: string;
  /** Path prefix the credential is believed to cover ('/' when unknown). */
  scope: string;
  protocol: ClientProtocol;
  /** The full Authorization (or x402 header) value to send. */
  header: { name: string; value: string };
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
  // ledger
  /** Written BEFORE the payment is sent (status pending), so a crash leaves a trace to resume from. */
  recordPayment(entry: LedgerEntry): Promise<void>;
  updatePayment(
    id: string,
    patch: Partial<Pick<LedgerEntry, 'status' | 'proof' | 'feeMsat'>>,
  ): Promise<void>;
  /** Pending entries (to resolve by payment hash after a crash). */
  pendingPayments(): Promise<LedgerEntry[]>;
  // credentials
  saveCredential(credential: StoredCredential): Promise<void>;
  findCredential(origin: string, path: string, now: number): Promise<StoredCredential | undefined>;
  deleteCredential(origin: string, scope: string): Promise<void>;
  close(): Promise<void>;
}
