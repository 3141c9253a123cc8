/**
 * The one Lightning interface every backend implements (LND REST, Core Lightning clnrest, LNbits,
 * phoenixd, NWC, and the embedded dev node).
 *
 * Conventions: amounts are `bigint` millisatoshis; payment hashes and preimages are lower-case hex
 * (64 characters); times are unix milliseconds. Every failure is a `TollwayError` with a code from the
 * Lightning section of `errors.ts` (`unauthorized`, `backend_unavailable`, `insufficient_balance`, …).
 */

/** A Bitcoin network as BOLT11 names it by prefix (`lnbc`, `lntb`, `lntbs`, `lnbcrt`). */
export type LightningNetwork = 'mainnet' | 'testnet' | 'signet' | 'regtest';

/** The backends Tollway ships. */
export type LightningBackendKind = 'lnd' | 'cln' | 'lnbits' | 'phoenixd' | 'nwc' | 'dev';

/** What a backend can do with the credentials it was given. */
export interface LightningCapabilities {
  canReceive: boolean;
  canPay: boolean;
}

/** Node (or wallet) identity. */
export interface NodeInfo {
  /** 33-byte compressed public key, hex; absent when the wallet does not reveal it. */
  pubkey?: string;
  network: LightningNetwork;
  alias?: string;
}

/** Parameters of {@link LightningBackend.createInvoice}. */
export interface CreateInvoiceParams {
  amountMsat: bigint;
  /** Human description (`d` tag). Ignored when `descriptionHash` is given. */
  memo?: string;
  /** 32-byte hex SHA-256 of a description (`h` tag). */
  descriptionHash?: string;
  /** Seconds until expiry; backends default to 3600. */
  expirySeconds?: number;
}

/** A freshly created invoice. */
export interface CreatedInvoice {
  paymentRequest: string;
  paymentHash: string;
  amountMsat: bigint;
  /** Unix milliseconds. */
  expiresAt: number;
}

/** Lifecycle of an incoming invoice. */
export type InvoiceState = 'open' | 'settled' | 'expired' | 'canceled';

/** What a backend knows about an incoming invoice. */
export interface InvoiceStatus {
  paymentHash: string;
  state: InvoiceState;
  /** The invoice amount (absent for amountless invoices). */
  amountMsat?: bigint;
  /** What was actually received (may exceed `amountMsat`: overpayment is legal). */
  amountPaidMsat?: bigint;
  /** Known once settled (and for our own invoices, always). */
  preimage?: string;
  /** Unix milliseconds. */
  settledAt?: number;
}

/** Parameters of {@link LightningBackend.payInvoice}. */
export interface PayInvoiceParams {
  paymentRequest: string;
  /** Required for amountless invoices; must be absent or equal otherwise. */
  amountMsat?: bigint;
  /** Routing fee ceiling; backends default to 1% + 10 sat when absent. */
  maxFeeMsat?: bigint;
  /** How long to wait for a final outcome before failing with `payment_timeout`. */
  timeoutMs?: number;
}

/** A completed outgoing payment. The preimage is always checked against the payment hash. */
export interface PaymentResult {
  paymentHash: string;
  preimage: string;
  amountMsat: bigint;
  feeMsat: bigint;
}

/** Lifecycle of an outgoing payment. */
export type PaymentState = 'pending' | 'succeeded' | 'failed';

/** What a backend knows about an outgoing payment. */
export interface PaymentStatus {
  paymentHash: string;
  state: PaymentState;
  preimage?: string;
  amountMsat?: bigint;
  feeMsat?: bigint;
  /** Backend's reason when failed. */
  failureReason?: string;
}

/** Options of {@link LightningBackend.waitForSettlement}. */
export interface WaitOptions {
  /** Fails with `payment_timeout` after this long; default 60 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * One Lightning node or wallet. Obtain one with `connectLightning(connectionString)`.
 *
 * @example
 * ```ts
 * const ln = await connectLightning('dev+http://127.0.0.1:4242?wallet=alice');
 * const inv = await ln.createInvoice({ amountMsat: 10_000n, memo: 'forecast' });
 * const status = await ln.waitForSettlement(inv.paymentHash, { timeoutMs: 30_000 });
 * ```
 */
export interface LightningBackend {
  readonly kind: LightningBackendKind;
  readonly capabilities: LightningCapabilities;
  getInfo(): Promise<NodeInfo>;
  createInvoice(params: CreateInvoiceParams): Promise<CreatedInvoice>;
  /** Throws `invoice_not_found` for an unknown hash. */
  lookupInvoice(paymentHash: string): Promise<InvoiceStatus>;
  /** Resolves once the invoice is settled, expired or canceled. */
  waitForSettlement(paymentHash: string, options?: WaitOptions): Promise<InvoiceStatus>;
  /** Pays a BOLT11 invoice. Idempotent per payment hash: never pays the same invoice twice. */
  payInvoice(params: PayInvoiceParams): Promise<PaymentResult>;
  /** Throws `invoice_not_found` when the backend never saw a payment for that hash. */
  lookupPayment(paymentHash: string): Promise<PaymentStatus>;
  /** Spendable balance, where the backend reveals it. */
  getBalance(): Promise<{ msat: bigint }>;
  /** Releases sockets and subscriptions. */
  close(): Promise<void>;
}
