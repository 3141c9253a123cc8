/**
 * What the paywall engine keeps between requests and shares between instances.
 *
 * The paid-request hot path does no I/O for ordinary tokens: root keys derive from master secrets,
 * revocations are mirrored in memory (pushed by {@link Store.subscribeRevocations}), and settlements
 * are recorded asynchronously. Only tokens that carry a use limit or a prepaid balance touch the store
 * per request, because "exactly N uses across every instance" needs one atomic counter.
 *
 * Implementations: memory (tests, single process), sqlite (better-sqlite3, the embedded default) and
 * postgres (pg; several instances). Amounts are bigint msat (or token base units); times unix ms.
 */

/**
 * The protocol a payment arrived by: the name of the offer kind that read it. Built in: `l402`,
 * `mpp`, `x402`; an offer kind of your own names its own.
 */
export type PaymentProtocol = string;

/** A 402 challenge the engine issued (recorded asynchronously, for accounting and the dashboard). */
export interface IssuedChallenge {
  paymentHash: string;
  tokenId: string;
  service: string;
  /** Price in msat (Lightning offers). */
  amountMsat: bigint;
  createdAt: number;
  expiresAt: number;
}

/** The first time the engine saw proof that a payment settled. */
export interface Settlement {
  /** Payment hash (Lightning) or transaction hash / nonce (x402): unique per payment. */
  reference: string;
  tokenId?: string;
  service: string;
  protocol: PaymentProtocol;
  /** Amount in the protocol's base unit: msat for Lightning, token base units for x402. */
  amount: bigint;
  /** 'msat' or an asset id such as 'eip155:8453/erc20:0x…'. */
  unit: string;
  settledAt: number;
}

/** A token the engine minted and saw paid. */
export interface TokenRecord {
  tokenId: string;
  paymentHash: string;
  service: string;
  tier: number;
  createdAt: number;
  /** From the `*_valid_until` caveat, when present. */
  expiresAt?: number;
  /** Use limit from the token's caveats, when present. */
  maxUses?: number;
  /** Prepaid balance the token started with, when present. */
  initialBalanceMsat?: bigint;
}

/** Current counters of a token. */
export interface TokenUsage {
  tokenId: string;
  /** Uses charged. */
  uses: number;
  /** Charged to the prepaid balance. */
  spentMsat: bigint;
  /** Uses held by requests in flight. */
  heldUses: number;
  /** Balance held by requests in flight. */
  heldMsat: bigint;
}

/**
 * What one request in flight holds of a token: uses, or an amount of its prepaid balance. Held
 * until the request's outcome settles it (charged) or releases it; a hold whose `expiresAt` passed
 * (its instance died) is released by whichever instance looks next. See {@link Store.hold}.
 */
export interface Hold {
  /** Unique per request (random). */
  id: string;
  tokenId: string;
  /** Uses held, against the token's limit. */
  uses?: { count: number; max: number };
  /** Msat held, against the token's prepaid balance. */
  balance?: { amountMsat: bigint; initialMsat: bigint };
  /** Unix ms; see {@link Store.renew}. */
  expiresAt: number;
}

/** The outcome of {@link Store.hold}, with the token's counters as they are after it. */
export interface HoldResult {
  /** True when the hold was granted. */
  ok: boolean;
  /** Uses charged or held (this hold included when granted). */
  uses: number;
  /** Balance charged or held, msat (this hold included when granted). */
  spentMsat: bigint;
}

/** What a settled hold charges: at most what it held; the rest is released. */
export interface HoldCharge {
  uses: number;
  amountMsat: bigint;
}

/**
 * How {@link Store.resizeHold} moves a balance hold on: part of it charged, the rest kept at a new
 * size. What an instance's lease of a balance does (server/balance-leases.ts).
 */
export interface HoldResize {
  /** Charged out of the hold: spent for good (at most what the hold holds). */
  chargeMsat: bigint;
  /** What the hold holds once charged, msat: less than before, or more if it fits. */
  amountMsat: bigint;
  /** The token's prepaid balance, msat: a hold that grows must fit under it. */
  initialMsat: bigint;
  /**
   * The hold's new expiry, unix ms: later than the one it has. It also marks the resize: a hold
   * that has this expiry already was resized by it (a retry after a failure that may have written
   * it), and is answered as it stands, charged once.
   */
  expiresAt: number;
}

/** A payment session (the MPP lightning `session` intent): deposits drawn on by many requests. */
export interface SessionRecord {
  /** The payment hash of the opening deposit; also the account its draws are counted under. */
  id: string;
  service: string;
  /** Every deposit credited (the opening one and top-ups), msat. */
  depositMsat: bigint;
  /** The amountless invoice the refund is paid to. */
  returnInvoice: string;
  /** Closed this long after its last request, ms. */
  idleTimeoutMs: number;
  openedAt: number;
  lastUsedAt: number;
  /** Set once the session is closed; nothing is drawn from it after. */
  closedAt?: number;
  /** What was refunded, msat, once the refund was tried. */
  refundMsat?: bigint;
  refundStatus?: 'succeeded' | 'failed' | 'skipped';
}

/**
 * An x402 `batch-settlement` channel paid into this server: what its payer deposited, the
 * highest voucher accepted from it (what can be claimed with), and what was claimed on chain.
 * What its requests drew is counted like a balance, under the account `x402-batch:<id>`.
 */
export interface ChannelRecord {
  /** The channel id, lower-case hex. */
  id: string;
  /** CAIP-2 network. */
  network: string;
  /** The channel's config, as JSON (payer, receiver, authorizers, token, withdraw delay, salt). */
  config: string;
  /** What the payer deposited, token base units. */
  deposit: bigint;
  /** The cumulative ceiling of the highest voucher accepted; 0 before the first. */
  voucherMax: bigint;
  /** That voucher's signature; empty before the first. */
  voucherSignature: string;
  /** What was claimed on chain, token base units. */
  claimed: bigint;
  /** What was refunded to the payer cooperatively, token base units. */
  refunded: bigint;
  /** When the payer asked the contract to withdraw (unix seconds), as last seen; 0 when not. */
  withdrawRequestedAt: number;
}

/** A revoked token. */
export interface Revocation {
  tokenId: string;
  reason?: string;
  revokedAt: number;
}

/** Aggregated revenue for reporting. */
export interface RevenueRow {
  /** Start of the bucket, unix ms (UTC hour or day). */
  bucket: number;
  service: string;
  protocol: PaymentProtocol;
  unit: string;
  amount: bigint;
  count: number;
}

/**
 * One advance of a rate-limit bucket's shared clock (see {@link LimitStore.advanceBuckets}). A
 * bucket is a GCRA clock: the time at which it is full again, in unix microseconds.
 */
export interface BucketAdvance {
  key: string;
  /** Microseconds of capacity taken: requests taken times the bucket's interval per request. */
  costMicros: number;
  /** When the first of these requests was taken, unix µs: the clock moves on from here at least. */
  fromMicros: number;
}

/** A bucket's shared clock after an advance: full again at `tatMicros` (unix µs). */
export interface BucketClock {
  key: string;
  tatMicros: number;
}

/** The outcome of {@link LimitStore.takeFreebie}. */
export interface FreebieTake {
  granted: boolean;
  /** When the key's current window ends and its allowance is whole again, unix ms. */
  resetsAt: number;
}

/**
 * The counters behind freebies and rate limits, shared by every instance that uses the same one.
 * Every {@link Store} is one; another can be plugged in through `PaywallOptions.sharedLimits`.
 */
export interface LimitStore {
  /**
   * Takes one of `allowance.requests` free requests of `key`'s window, atomically across
   * instances. A window starts at the first request after the previous one ended and lasts
   * `allowance.periodMs`. `now` is unix ms.
   */
  takeFreebie(
    key: string,
    allowance: { requests: number; periodMs: number },
    now: number,
  ): Promise<FreebieTake>;
  /**
   * Advances the shared clocks of rate-limit buckets, each atomically:
   * `tat = max(tat, fromMicros) + costMicros` (an absent bucket's clock is 0). Returns every clock
   * after its advance. Buckets full again before `now` (unix ms) may be forgotten.
   */
  advanceBuckets(advances: readonly BucketAdvance[], now: number): Promise<BucketClock[]>;
}

/** A named text every instance on one store reads, and its revision (1 after the first write). */
export interface StoredDocument {
  revision: number;
  body: string;
}

/** The engine's persistence. Every method is safe to call concurrently, from several instances. */
export interface Store extends LimitStore {
  /** Runs migrations (idempotent) and starts any listeners. */
  init(): Promise<void>;
  close(): Promise<void>;

  recordChallenges(challenges: readonly IssuedChallenge[]): Promise<void>;
  /** Records a settlement; returns false when `reference` was already recorded (idempotent). */
  recordSettlement(settlement: Settlement): Promise<boolean>;
  listSettlements(query: {
    since?: number;
    until?: number;
    service?: string;
    protocol?: PaymentProtocol;
    limit?: number;
  }): Promise<Settlement[]>;
  revenue(query: { since?: number; until?: number; bucket: 'hour' | 'day' }): Promise<RevenueRow[]>;

  /** Inserts the token if absent (idempotent; the first record wins). */
  saveToken(token: TokenRecord): Promise<void>;
  getToken(tokenId: string): Promise<TokenRecord | undefined>;
  listTokens(query: { service?: string; limit?: number; offset?: number }): Promise<TokenRecord[]>;
  /**
   * The counters of an account: the payment hash for L402 tokens and MPP charges (every
   * credential of one payment draws from them), the token id for other kinds.
   */
  getUsage(tokenId: string): Promise<TokenUsage>;

  /**
   * Atomically holds uses and/or balance of a token for one request, if they fit: granted only if
   * `uses + held + count <= max` and `spent + held + amount <= initial`, across every instance
   * sharing the store. Holds that expired before `now` (unix ms) do not count.
   */
  hold(hold: Hold, now: number): Promise<HoldResult>;
  /**
   * Charges a hold: `charge` (at most what was held) is spent and the hold's remainder released.
   * False when the hold no longer exists (it expired and was released, or was settled before).
   */
  settleHold(id: string, charge: HoldCharge): Promise<boolean>;
  /** Releases a hold: nothing is charged. Does nothing when it no longer exists. */
  releaseHold(id: string): Promise<void>;
  /**
   * Charges part of a balance hold and keeps it at a new size and expiry, atomically: the charge
   * is spent, and the hold then holds `amountMsat` — always granted when that is no more than it
   * held less the charge; when it is more, granted only if the growth fits under `initialMsat`
   * (with every other hold counted, expired ones released first). A growth that does not fit is
   * not made (`ok` false): the hold is still charged and moved to the new expiry, and keeps what
   * it held less the charge. Undefined when the hold no longer exists (it expired and was
   * released, or was settled). A resize sent again after a failure is made once: a hold that has
   * its `expiresAt` already was resized by it, and the counters are answered as they are (`ok`
   * when the hold holds `amountMsat`).
   */
  resizeHold(id: string, resize: HoldResize, now: number): Promise<HoldResult | undefined>;

  /**
   * Deletes the challenges and single-use claims whose `expiresAt` is at or before `now` (unix ms)
   * and says how many went, so that a flood of 402s leaves no more rows than are still payable.
   * The engine calls it after recording challenges.
   */
  pruneExpired(now: number): Promise<{ challenges: number; claims: number }>;

  /**
   * Resolves when the store can serve the engine; throws `store_error` when it cannot (the
   * database is unreachable, or a SQLite file was deleted or replaced while open, which would let
   * counters start again from zero). Health checks call it.
   */
  assertHealthy(): Promise<void>;

  /**
   * Claims a single-use proof (an MPP charge credential, an x402 nonce) for one request: true for
   * one caller only, even under concurrent calls from several instances. The claim is held until
   * `heldUntil` (unix ms) unless confirmed ({@link Store.confirmClaim}): a released claim, or one
   * whose hold expired before `now`, can be claimed again. `expiresAt` lets old keys be pruned.
   */
  claim(
    key: string,
    claim: { expiresAt: number; heldUntil: number },
    now: number,
  ): Promise<boolean>;
  /** Makes a held claim final: the proof is used for good. */
  confirmClaim(key: string): Promise<void>;
  /** Releases a held claim, so the proof can be presented again. A confirmed claim stays. */
  releaseClaim(key: string): Promise<void>;

  /** Moves the expiry of these holds and held claims to `until` (unix ms): their requests still run. */
  renew(
    refs: { holds: readonly string[]; claims: readonly string[] },
    until: number,
  ): Promise<void>;

  /**
   * Opens a session: false when one with this id exists already (open or closed), so a deposit
   * opens one session, once.
   */
  openSession(
    session: Omit<SessionRecord, 'closedAt' | 'refundMsat' | 'refundStatus'>,
  ): Promise<boolean>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Adds a deposit to an open session; false when it is closed or unknown. */
  creditSession(id: string, amountMsat: bigint): Promise<boolean>;
  /** Notes a request at `at` (unix ms), which postpones the idle close. */
  touchSession(id: string, at: number): Promise<void>;
  /** Closes an open session at `at`: the record as closed, or undefined when it was not open. */
  closeSession(id: string, at: number): Promise<SessionRecord | undefined>;
  /** Records how the refund of a closed session went. */
  recordRefund(
    id: string,
    refund: { refundMsat: bigint; refundStatus: NonNullable<SessionRecord['refundStatus']> },
  ): Promise<void>;
  /** Open sessions idle since before `now` less their idle timeout, oldest first, at most `limit`. */
  listIdleSessions(now: number, limit: number): Promise<SessionRecord[]>;

  /**
   * Records a deposit of `amount` into a channel: the channel with that deposit when it is new, or
   * `amount` added to its deposit (a top-up), atomically across instances, so that deposits settled
   * at once are all counted. `reference` names the deposit (its transaction): a credit made again
   * with the same reference changes nothing, so that one tried again after a failure (which may
   * have come after its write) is counted once. Throws `invalid_amount` when the deposit would
   * pass 2^63-1.
   */
  creditChannel(
    channel: Pick<ChannelRecord, 'id' | 'network' | 'config'>,
    amount: bigint,
    reference: string,
  ): Promise<void>;
  getChannel(id: string): Promise<ChannelRecord | undefined>;
  /**
   * Keeps a voucher as the channel's highest: true when its ceiling is above the one kept (it is
   * kept), false otherwise, atomically across instances.
   */
  acceptVoucher(id: string, voucher: { max: bigint; signature: string }): Promise<boolean>;
  /** Raises what was claimed of a channel on chain to `claimed`. */
  noteClaimed(id: string, claimed: bigint): Promise<void>;
  /** Raises what was refunded of a channel to `refunded`. */
  noteRefunded(id: string, refunded: bigint): Promise<void>;
  /** Records that the channel's payer asked to withdraw at `requestedAt` (unix seconds; 0: not). */
  noteWithdrawal(id: string, requestedAt: number): Promise<void>;
  /** Channels with a voucher above what was claimed, at most `limit`. */
  listClaimableChannels(limit: number): Promise<ChannelRecord[]>;

  revoke(tokenId: string, reason?: string): Promise<void>;
  listRevocations(): Promise<Revocation[]>;
  /**
   * Calls `listener` for every revocation made by any instance (including this one), within a second.
   * Returns an unsubscribe function.
   */
  subscribeRevocations(listener: (revocation: Revocation) => void): () => void;

  /** A named document (the gateway's services overlay, for one), or undefined when never written. */
  readDocument(name: string): Promise<StoredDocument | undefined>;
  /**
   * Writes a document if it is still at `revision` (0: never written): the new revision, or
   * undefined when another write came first (read it again and retry on top of it).
   */
  writeDocument(name: string, body: string, revision: number): Promise<number | undefined>;
}
