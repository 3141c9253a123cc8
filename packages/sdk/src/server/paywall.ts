/**
 * The paywall engine: decides, for one request to one route, whether it passes (free, or paid with
 * a valid credential) or gets a response (a 402 with fresh offers, a 401, a 429, …). Framework
 * adapters translate requests in and decisions out; everything else happens here.
 *
 * This module is the thin factory: the context (`context.ts`) holds the options and shared state,
 * `decide.ts` the decision, `paid.ts` and `charge.ts` the paid path, `challenge.ts` the 402 and
 * `recorder.ts` the background records.
 *
 * The paid path does no I/O for ordinary tokens: root keys derive from the master secrets,
 * verified credentials are cached by their exact text, revocations are mirrored in memory, and
 * settlements and tokens are recorded in the background the first time a token is seen. Only
 * counted tokens (uses, balance) and single-use credentials (MPP charges) wait on the store.
 */

import { isPromiseLike } from '../internal/promise.js';
import { keepTickShape } from '../internal/tick-shape.js';
import { loadTracing } from '../internal/tracing.js';
import type { LightningBackend } from '../lightning/types.js';
import type { RateSource } from '../money.js';
import { failedDecision, respond, unavailable } from './answers.js';
import { createPaywallContext, type PaywallContext } from './context.js';
import type { CorsOptions } from './cors.js';
import { decide } from './decide.js';
import type { Duration } from './duration.js';
import { createExchange } from './exchange.js';
import type { FreebieOptions } from './freebies.js';
import type { SharedLimitOptions } from './limit-sync.js';
import type { OfferKind } from './offers.js';
import { preview } from './preview.js';
import type { RateLimit } from './rate-limit.js';
import type { PaywallLogger } from './recorder.js';
import type { MasterSecret } from './root-keys.js';
import { createRoute, type Route, type RouteOptions } from './route.js';
import { closeIdleSessions } from './sessions.js';
import type { Store } from './store.js';
import type { PaywallDecision, PaywallRequest, PaywallResponse } from './types.js';

export type { PaywallLogger } from './recorder.js';

/**
 * Rate limits of a paywall, each a token bucket decided in this process's memory and counted with
 * the other instances of the API in the background (see `PaywallOptions.sharedLimits`).
 */
export interface PaywallRateLimits {
  /**
   * Payment challenges (each costs an invoice) per client network. Default: 30 a minute, bursts
   * of 20. `false` turns it off.
   */
  challenges?: RateLimit | false;
  /**
   * Payment challenges from all client networks together. Default: 600 a minute, bursts of 100.
   * `false` turns it off.
   */
  challengesTotal?: RateLimit | false;
  /** Paid requests per token. Default: none. */
  token?: RateLimit;
  /** Requests without a valid credential per client network, free ones included. Default: none. */
  network?: RateLimit;
}

/** Options of {@link createPaywall}. */
export interface PaywallOptions {
  /** Creates the invoices (and, in strict mode, confirms them). */
  lightning: LightningBackend;
  /** Shared state: revocations, counters, single-use claims, records. */
  store: Store;
  /**
   * Master secrets, current first, then older ones still accepted: hex text or bytes of at least
   * 32 bytes (see `createMasterSecret`). Every instance of one API needs the same list.
   */
  secrets: readonly MasterSecret[];
  /** The MPP protection space, e.g. the API's host name. Default `'tollway'`. */
  realm?: string;
  /** Converts dollar prices; required for routes priced in dollars. */
  rates?: RateSource;
  /** Confirm with the Lightning backend that a token's invoice settled, the first time it is seen. */
  strict?: boolean;
  /** `'aperture'`: answer invalid credentials with 402 (as Aperture does) instead of 401. */
  compat?: 'aperture';
  /**
   * CORS headers and preflight answers. Default origin `*`. The engine's own answers and paid
   * answers carry them when the request has `Origin` (as every browser request CORS applies to
   * does); free answers always.
   */
  cors?: CorsOptions | false;
  rateLimits?: PaywallRateLimits;
  /**
   * Free requests per client network (IPv4 /24, IPv6 /48) per period, on every paid route,
   * counted exactly across the instances that share the limit store.
   */
  freebies?: FreebieOptions;
  /**
   * Where freebies and rate limits are counted with the other instances of this API. Default:
   * in `store`, rate limits reconciled every 250 ms (docs/guides/scaling.md).
   */
  sharedLimits?: SharedLimitOptions;
  /** Paths that pass free: prefixes on segment boundaries (`'/health'`), or regular expressions. */
  allowlist?: readonly (string | RegExp)[];
  /** The protocols offered, in this order. Default `['l402', 'mpp']`. */
  protocols?: readonly ('l402' | 'mpp')[];
  /** Further offer kinds, offered after the built-in ones. */
  offers?: readonly OfferKind[];
  /** The L402 challenge form: `legacy` (default, `LSAT` then `L402`) or `spec`. */
  l402Form?: 'legacy' | 'spec';
  /** How long a challenge's invoice can be paid. Default `'15m'`. */
  challengeExpiry?: Duration;
  /**
   * Offer MPP lightning sessions on routes that sell a balance: pay the deposit once, draw many
   * requests, top up, close with a refund. `idleTimeout` (default `'5m'`) closes and refunds a
   * session nobody used for that long. `topUpTimeout` (default `'60s'`) is how long a streamed
   * answer whose meter tells its cost as it goes (`createEventMeter`) waits, after its
   * `payment-need-topup` event, for the session to be topped up before it ends.
   */
  sessions?: { idleTimeout?: Duration; topUpTimeout?: Duration };
  /**
   * How long what a paid request holds (a use, an amount of a balance, a single-use proof) lasts
   * without renewal. Requests still running are renewed; the holds of an instance that died are
   * released this long after its last renewal. Default `'60s'`.
   */
  reservationTtl?: Duration;
  /**
   * Draws a price out of a prepaid balance from a lease this instance holds on the balance
   * (docs/guides/charging.md, "Balance leases"): the charges of the answers settled together go
   * to the store in one write per balance (at most one in flight), instead of a hold and a settle
   * per request. Exact as holds are: an answer goes only once what it cost is written. Default
   * `true`; `false` holds and settles each request on its own.
   */
  balanceLeases?: boolean;
  /** The clock, unix ms (tests). */
  now?: () => number;
  /** Default: the console. */
  logger?: PaywallLogger;
  /**
   * OpenTelemetry spans for every request (docs/guides/tracing.md), from the globally registered
   * tracer provider. Needs `@opentelemetry/api` installed (an optional peer), imported when the
   * paywall starts. Default `false`: nothing is loaded and the request path does not change.
   */
  tracing?: boolean;
}

/** A paywall; see {@link createPaywall}. */
export interface Paywall {
  /** Checks route options once; pass the result to {@link Paywall.handle}. */
  route(options: RouteOptions): Route;
  /**
   * Decides one request. Never throws: every failure becomes a response with a problem code.
   * Returns the decision itself when no I/O is needed (the usual paid request: a credential seen
   * before, a fixed price, no use counter), else a promise of it; `await` takes either. Answering
   * without a promise spares the paid path its allocations and microtask hops.
   */
  handle(request: PaywallRequest, route: Route): PaywallDecision | Promise<PaywallDecision>;
  /**
   * The 402 `request` would get on `route`, for discovery documents: its price, what a payment
   * buys and the offers that need no invoice (x402), minting nothing and counting against no
   * limit; undefined when the request is free. Credentials in the request are not read.
   */
  preview(request: PaywallRequest, route: Route): Promise<PaywallResponse | undefined>;
  /**
   * Prepares the store, loads revocations (and, with `tracing`, `@opentelemetry/api`); `handle`
   * calls it on first use if you did not.
   */
  init(): Promise<void>;
  /** Stops listening for revocations and writes what is pending. Does not close the store. */
  close(): Promise<void>;
  /** Revokes a token (an L402 token id, hex) on every instance sharing the store. */
  revoke(tokenId: string, reason?: string): Promise<void>;
}

/**
 * Creates a paywall: the provider side of L402 and MPP as a library. Create routes with
 * `paywall.route()`, and let a framework adapter call `paywall.handle()` for each request.
 *
 * Throws `invalid_config` for malformed options (secrets, durations, rate limits).
 *
 * @example
 * ```ts
 * const paywall = createPaywall({
 *   lightning: connectLightning(process.env.TOLLWAY_LIGHTNING!),
 *   store: createSqliteStore({ path: '.tollway/paywall.sqlite' }),
 *   secrets: [process.env.TOLLWAY_SECRET!],
 * });
 * const forecast = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
 * const decision = await paywall.handle(request, forecast);
 * ```
 */
export function createPaywall(options: PaywallOptions): Paywall {
  keepTickShape();
  const context = createPaywallContext(options);
  const lifecycle = createLifecycle(context);

  function decideWhenStarted(
    request: PaywallRequest,
    route: Route,
  ): PaywallDecision | Promise<PaywallDecision> {
    if (lifecycle.ready) return decide(context, request, route);
    return lifecycle.init().then(
      () => decide(context, request, route),
      (error: unknown) => {
        context.logger.error({ err: error }, 'the paywall could not start');
        const exchange = createExchange(context, request, route);
        return respond(
          context,
          exchange,
          unavailable('store_error', 'The paywall is starting; retry.'),
        );
      },
    );
  }

  return {
    route: (routeOptions) =>
      createRoute(routeOptions, context.rates === undefined ? {} : { rates: context.rates }),

    handle(request, route) {
      try {
        const decision = decideWhenStarted(request, route);
        if (!isPromiseLike(decision)) return decision;
        return Promise.resolve(decision).catch((error: unknown) => failedDecision(context, error));
      } catch (error) {
        return failedDecision(context, error);
      }
    },

    async preview(request, route) {
      await lifecycle.init();
      return preview(context, request, route);
    },

    init: lifecycle.init,
    close: lifecycle.close,

    async revoke(tokenId, reason) {
      await lifecycle.init();
      await (reason === undefined
        ? context.store.revoke(tokenId)
        : context.store.revoke(tokenId, reason));
      context.revoked.add(tokenId);
    },
  };
}

/** How often idle sessions are looked for, at most, ms. */
const SWEEP_MS = 10_000;

/** Starting and stopping: the store prepared, revocations loaded and followed, records drained. */
interface Lifecycle {
  readonly ready: boolean;
  init(): Promise<void>;
  close(): Promise<void>;
}

function createLifecycle(context: PaywallContext): Lifecycle {
  const { store, revoked } = context;
  let starting: Promise<void> | undefined;
  let unsubscribe: (() => void) | undefined;
  let sweeper: ReturnType<typeof setInterval> | undefined;
  const state = { ready: false };

  async function start(): Promise<void> {
    if (context.tracingOn) context.tracing ??= await loadTracing();
    await store.init();
    unsubscribe = store.subscribeRevocations((revocation) => revoked.add(revocation.tokenId));
    for (const revocation of await store.listRevocations()) revoked.add(revocation.tokenId);
    context.inflight.start();
    context.limitSync.start();
    if (context.sessionIdleMs !== undefined) {
      sweeper = setInterval(
        () => {
          closeIdleSessions(context).catch((error: unknown) => {
            context.logger.warn({ err: error }, 'closing idle sessions failed');
          });
        },
        Math.min(Math.max(1000, Math.floor(context.sessionIdleMs / 3)), SWEEP_MS),
      );
      sweeper.unref?.();
    }
    state.ready = true;
  }

  return {
    get ready() {
      return state.ready;
    },
    init() {
      starting ??= start().catch((error: unknown) => {
        starting = undefined;
        unsubscribe?.();
        unsubscribe = undefined;
        throw error;
      });
      return starting;
    },
    async close() {
      unsubscribe?.();
      unsubscribe = undefined;
      context.inflight.stop();
      await context.leases?.close();
      await context.limitSync.stop();
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      await context.recorder.drain();
    },
  };
}
