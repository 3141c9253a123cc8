/**
 * The context every step of the paying fetch works in: its options, read once with their defaults,
 * and what one paying fetch keeps between calls (single flights, the payments it is making, the
 * networks of its wallets, its first resume). Each step is a function of `(context, params)`.
 *
 * @internal
 */
import { TollwayError } from '../errors.js';
import type { Tracing } from '../internal/tracing.js';
import type { LightningBackend, LightningNetwork } from '../lightning/types.js';
import type { BatchSent } from './batch-payment.js';
import type { TokenReach } from './credentials.js';
import { createMemoryClientStore } from './memory-store.js';
import type {
  PayingFetchEvent,
  PayingFetchOptions,
  PayingFetchSessionOptions,
  PayingFetchX402Options,
  PaymentInfo,
  ResumeSummary,
} from './paying-fetch.js';
import { createSingleFlight, type SingleFlight } from './single-flight.js';
import type { Budget, ClientProtocol, ClientStore, StoredCredential } from './types.js';
import { type Wallet, walletsOf } from './wallets.js';

/** A credential to send, and the payment this call made for it. */
export interface Acquired {
  header: { name: string; value: string };
  protocol: ClientProtocol;
  /**
   * Tokens, balances and sessions are reused; an MPP charge of one request and an x402 payment
   * are single-use.
   */
  reusable: boolean;
  /** The ledger account it draws on, when known. */
  account?: string;
  /** Set for a credential read from the store (a single-use one is deleted once sent). */
  stored?: StoredCredential;
  payment?: PaymentInfo;
  /** x402 over MCP: the body to send instead, carrying the payment in `params._meta`. */
  body?: Uint8Array;
  /** An x402 batch-settlement voucher (and deposit): what reading its answer needs. */
  batch?: BatchSent;
}

/** The options of one paying fetch with their defaults, and the state it keeps between calls. */
export interface PayingContext {
  readonly wallets: readonly Wallet[];
  readonly budget: Budget | undefined;
  readonly store: ClientStore;
  readonly preferences: readonly ClientProtocol[];
  readonly maxFeeMsat: bigint;
  readonly maxBodyBytes: number;
  readonly tags: Readonly<Record<string, string>> | undefined;
  readonly x402: PayingFetchX402Options | undefined;
  readonly now: () => number;
  readonly emit: (event: PayingFetchEvent) => void;
  readonly onPayment: (payment: PaymentInfo) => void;
  /** One payment at a time per origin and scope; see {@link createSingleFlight}. */
  readonly flights: SingleFlight<Acquired>;
  /** Ledger ids this process is paying right now: not to be "resolved" under its feet. */
  readonly paying: Set<string>;
  /** Each wallet's network, asked once (again after a failure). */
  readonly networks: Map<LightningBackend, Promise<LightningNetwork>>;
  /** What saved tokens' caveats say, by credential value (null: nothing to read). */
  readonly reaches: Map<string, TokenReach | null>;
  /** The resume run before the first request, once it started. */
  resumed: Promise<ResumeSummary> | undefined;
  /** How sessions are chosen and closed (see {@link PayingFetchOptions.sessions}). */
  readonly sessions: PayingFetchSessionOptions;
  /** When this process last used each session, unix ms (for the idle close). */
  readonly sessionsUsed: Map<string, number>;
  /** When this process last drew on each x402 channel, unix ms (for the idle close). */
  readonly channelsUsed: Map<string, number>;
  /** Per x402 channel, the call of this paying fetch whose voucher awaits its answer. */
  readonly channelLocks: Map<string, Promise<void>>;
  /** Whether the options turn tracing on. */
  readonly tracingOn: boolean;
  /** `@opentelemetry/api` and the tracer, once the first traced call asked for them. */
  tracing: Promise<Tracing> | undefined;
}

const DEFAULT_MAX_FEE_MSAT = 10_000n;

/**
 * The protocols to pay by: the preferences (default L402, then MPP charges), and sessions last
 * when the agent said how many calls it expects (a session may then come first; see
 * `preferSessions`).
 */
function preferencesOf(options: PayingFetchOptions): readonly ClientProtocol[] {
  const preferences = options.preferences ?? ['l402', 'mpp'];
  const sessions = options.sessions?.expectedCalls !== undefined;
  return sessions && !preferences.includes('mpp-session')
    ? [...preferences, 'mpp-session']
    : preferences;
}
const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Reads `options` once: defaults filled in, `maxFeeMsat` checked (`invalid_amount` when negative).
 *
 * @internal
 * @example
 * ```ts
 * const context = createPayingContext({ wallets, budget, store });
 * ```
 */
export function createPayingContext(options: PayingFetchOptions): PayingContext {
  const maxFeeMsat = options.maxFeeMsat ?? DEFAULT_MAX_FEE_MSAT;
  if (maxFeeMsat < 0n) throw new TollwayError('invalid_amount', 'maxFeeMsat must not be negative');
  const { onEvent, onPayment } = options;
  return {
    wallets: walletsOf(options.wallets),
    budget: options.budget,
    store: options.store ?? createMemoryClientStore(),
    preferences: preferencesOf(options),
    maxFeeMsat,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    tags: options.tags,
    x402: options.x402,
    now: options.now ?? Date.now,
    emit: (event) => onEvent?.(event),
    onPayment: (payment) => onPayment?.(payment),
    flights: createSingleFlight<Acquired>(),
    paying: new Set(),
    networks: new Map(),
    reaches: new Map(),
    resumed: undefined,
    sessions: options.sessions ?? {},
    sessionsUsed: new Map(),
    channelsUsed: new Map(),
    channelLocks: new Map(),
    tracingOn: options.tracing === true,
    tracing: undefined,
  };
}
