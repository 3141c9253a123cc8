/**
 * The explicit context every part of the engine works with: the paywall's options, read and
 * checked once, and the state its requests share (caches, limiters, revocations, records).
 */
import { TollwayError } from '../errors.js';
import type { Tracing } from '../internal/tracing.js';
import type { LightningBackend } from '../lightning/types.js';
import type { RateSource } from '../money.js';
import { type BalanceLeases, createBalanceLeases } from './balance-leases.js';
import { type Cors, createCors } from './cors.js';
import { type CredentialCache, createCredentialCache } from './credential-cache.js';
import { parseDuration } from './duration.js';
import { createFreebies, type Freebies } from './freebies.js';
import { createInflight, type Inflight } from './inflight.js';
import { createInvoiceBook, type InvoiceBook } from './invoices.js';
import { createL402Offer } from './l402-offer.js';
import { createLimitSync, type LimitSync } from './limit-sync.js';
import { createMppOffer } from './mpp-offer.js';
import { createMppSessionOffer } from './mpp-session-offer.js';
import type { OfferKind } from './offers.js';
import type { PaywallOptions } from './paywall.js';
import {
  type ChallengeLimiter,
  createChallengeLimiter,
  createRateLimiter,
  named,
  type RateLimiter,
} from './rate-limit.js';
import { createRecorder, type PaywallLogger, type Recorder } from './recorder.js';
import { createRootKeys, type RootKeys } from './root-keys.js';
import type { Store } from './store.js';

/** The rate limiters in force; see `PaywallRateLimits`. */
export interface Limiters {
  challenges: ChallengeLimiter | undefined;
  token: RateLimiter | undefined;
  network: RateLimiter | undefined;
}

/** See the module comment. */
export interface PaywallContext {
  readonly lightning: LightningBackend;
  readonly store: Store;
  readonly rates: RateSource | undefined;
  /** Unix ms. */
  readonly now: () => number;
  readonly logger: PaywallLogger;
  /** The offer kinds, in the order of the 402. */
  readonly kinds: readonly OfferKind[];
  /** Every request header besides `Authorization` that a kind reads credentials from. */
  readonly credentialHeaders: readonly string[];
  readonly cors: Cors;
  readonly limiters: Limiters;
  readonly freebies: Freebies | undefined;
  /** Counts the limiters' takes with the other instances, in the background. */
  readonly limitSync: LimitSync;
  readonly allowlist: readonly (string | RegExp)[];
  /** Confirm a token's invoice settled with the backend the first time it is seen. */
  readonly strict: boolean;
  /** Answer refused credentials with 402, as Aperture does. */
  readonly aperture: boolean;
  /** How long a challenge's invoice can be paid, seconds. */
  readonly challengeExpiry: number;
  readonly credentials: CredentialCache;
  /** Revoked token ids, mirrored from the store. */
  readonly revoked: Set<string>;
  readonly invoices: InvoiceBook;
  readonly recorder: Recorder;
  /** The holds and claims of requests still running. */
  readonly inflight: Inflight;
  /** This instance's slices of prepaid balances, drawn on in memory. */
  /** Set unless `balanceLeases` is off. */
  readonly leases: BalanceLeases | undefined;
  /** The keys tokens are minted and checked under. */
  readonly rootKeys: RootKeys;
  /** When sessions are offered: how long an unused one stays open, ms. */
  readonly sessionIdleMs: number | undefined;
  /** Whether the options turn tracing on (`tracing` is loaded when the paywall starts). */
  readonly tracingOn: boolean;
  /** The OpenTelemetry API and tracer, once loaded; undefined while tracing is off. */
  tracing: Tracing | undefined;
  /** How long a session's streamed answer waits for a top-up before it ends, ms. */
  readonly sessionTopUpMs: number;
}

const DEFAULT_REALM = 'tollway';
const DEFAULT_RESERVATION_TTL = '60s';
const DEFAULT_SESSION_IDLE = '5m';
/** The draft's recommended wait for a top-up of a streaming session. */
const DEFAULT_SESSION_TOP_UP = '60s';

const consoleLogger: PaywallLogger = {
  warn: (context, message) => console.warn(`[tollway] ${message}`, context),
  error: (context, message) => console.error(`[tollway] ${message}`, context),
};

/**
 * Reads and checks the options of a paywall. Throws `invalid_config` for malformed ones (secrets,
 * durations, rate limits, no protocol offered).
 *
 * @example
 * ```ts
 * const context = createPaywallContext({ lightning, store, secrets: [secret] });
 * ```
 */
export function createPaywallContext(options: PaywallOptions): PaywallContext {
  const { lightning, store } = options;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? consoleLogger;
  const rootKeys = createRootKeys(options.secrets);
  const ttlMs =
    parseDuration(options.reservationTtl ?? DEFAULT_RESERVATION_TTL, 'reservationTtl') * 1000;
  const kinds = offerKinds(options, rootKeys);
  const invoices = createInvoiceBook(lightning);
  const limiters = createLimiters(options, now);
  const shared = {
    store: options.sharedLimits?.store ?? store,
    scope: options.sharedLimits?.scope ?? 'default',
    now,
    logger,
  };
  return {
    lightning,
    store,
    rates: options.rates,
    now,
    logger,
    kinds,
    credentialHeaders: [...new Set(kinds.flatMap((kind) => kind.headers ?? []))],
    cors: createCors(options.cors),
    limiters,
    freebies: options.freebies === undefined ? undefined : createFreebies(options.freebies, shared),
    limitSync: createLimitSync({
      ...shared,
      buckets: [
        ...(limiters.challenges?.shared ?? []),
        ...(limiters.token === undefined ? [] : [named('token', limiters.token.shared)]),
        ...(limiters.network === undefined ? [] : [named('network', limiters.network.shared)]),
      ],
      ...(options.sharedLimits?.syncIntervalMs === undefined
        ? {}
        : { syncIntervalMs: options.sharedLimits.syncIntervalMs }),
    }),
    allowlist: options.allowlist ?? [],
    strict: options.strict === true,
    aperture: options.compat === 'aperture',
    challengeExpiry: parseDuration(options.challengeExpiry ?? '15m', 'challengeExpiry'),
    credentials: createCredentialCache(),
    revoked: new Set(),
    invoices,
    recorder: createRecorder({ store, invoices, logger, now }),
    rootKeys,
    sessionIdleMs:
      options.sessions === undefined
        ? undefined
        : parseDuration(
            options.sessions.idleTimeout ?? DEFAULT_SESSION_IDLE,
            'sessions.idleTimeout',
          ) * 1000,
    tracingOn: options.tracing === true,
    tracing: undefined,
    sessionTopUpMs:
      parseDuration(
        options.sessions?.topUpTimeout ?? DEFAULT_SESSION_TOP_UP,
        'sessions.topUpTimeout',
      ) * 1000,
    inflight: createInflight({ store, logger, now, ttlMs }),
    leases:
      options.balanceLeases === false
        ? undefined
        : createBalanceLeases({ store, logger, now, ttlMs }),
  };
}

/** The rate limiters the options name. */
function createLimiters(options: PaywallOptions, now: () => number): Limiters {
  const limits = options.rateLimits ?? {};
  return {
    challenges: createChallengeLimiter(
      { network: limits.challenges, total: limits.challengesTotal },
      now,
    ),
    token: limits.token === undefined ? undefined : createRateLimiter(limits.token, now),
    network: limits.network === undefined ? undefined : createRateLimiter(limits.network, now),
  };
}

/** The built-in kinds the options name, then the options' own kinds. */
function offerKinds(options: PaywallOptions, rootKeys: RootKeys): OfferKind[] {
  const builtIn: Record<'l402' | 'mpp', OfferKind> = {
    l402: createL402Offer({
      rootKeys,
      ...(options.l402Form === undefined ? {} : { form: options.l402Form }),
    }),
    mpp: createMppOffer({ rootKeys, realm: options.realm ?? DEFAULT_REALM }),
  };
  const kinds = [
    ...(options.protocols ?? ['l402', 'mpp']).map((name) => builtIn[name]),
    ...(options.sessions === undefined
      ? []
      : [
          createMppSessionOffer({
            rootKeys,
            realm: options.realm ?? DEFAULT_REALM,
            idleTimeoutSeconds: parseDuration(
              options.sessions.idleTimeout ?? DEFAULT_SESSION_IDLE,
              'sessions.idleTimeout',
            ),
          }),
        ]),
    ...(options.offers ?? []),
  ];
  if (kinds.length === 0) throw new TollwayError('invalid_config', 'no protocol is offered');
  return kinds;
}
