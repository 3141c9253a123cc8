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
  uses: number;
  /** Spent from the prepaid balance. */
  spentMsat: bigint;
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

/** The engine's persistence. Every method is safe to call concurrently, from several instances. */
export interface Store {
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
  getUsage(tokenId: string): Promise<TokenUsage>;

  /**
   * Atomically counts `count` uses against `maxUses`: succeeds only if `uses + count <= maxUses`,
   * across every instance sharing the store.
   */
  consumeUses(
    tokenId: string,
    count: number,
    maxUses: number,
  ): Promise<{ ok: boolean; uses: number }>;
  /**
   * Atomically spends `amountMsat` from a prepaid balance of `initialMsat`: succeeds only if
   * `spent + amountMsat <= initialMsat`.
   */
  spendBalance(
    tokenId: string,
    amountMsat: bigint,
    initialMsat: bigint,
  ): Promise<{ ok: boolean; remainingMsat: bigint }>;

  /**
   * Marks a single-use proof (an MPP charge credential, an x402 nonce) as used. Returns true the first
   * time only, even under concurrent calls from several instances. `expiresAt` lets old keys be pruned.
   */
  claimOnce(key: string, expiresAt: number): Promise<boolean>;

  revoke(tokenId: string, reason?: string): Promise<void>;
  listRevocations(): Promise<Revocation[]>;
  /**
   * Calls `listener` for every revocation made by any instance (including this one), within a second.
   * Returns an unsubscribe function.
   */
  subscribeRevocations(listener: (revocation: Revocation) => void): () => void;
}
