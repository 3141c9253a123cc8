/**
 * Prometheus metrics of the gateway (prom-client, one registry per gateway): challenges issued,
 * requests by outcome, refusals by problem code, payments settled and revenue (msat) by service and
 * protocol, gateway overhead and upstream latency, upstream errors, per LLM model the tokens
 * metered, the calls and what they were charged, and what services in shadow mode would have
 * charged. Settlements are counted where
 * the engine records them, by observing the store: each is counted once, by the instance that
 * recorded it first. Reference: docs/guides/gateway.md#metrics.
 */
import type { LlmUsage } from '@tollway/sdk/llm';
import type { PaywallDecision, Settlement, Store } from '@tollway/sdk/server';
import { Counter, Registry } from 'prom-client';
import {
  createServiceCounter,
  createServiceHistogram,
  registerTotalsCounter,
} from './service-metrics.js';

/** The gateway's metrics; see {@link createGatewayMetrics}. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Counts one engine decision of `service`. */
  decision(service: string, decision: PaywallDecision): void;
  /** Counts a settlement the store recorded for the first time. */
  settled(settlement: Settlement): void;
  /** Seconds from the request's arrival to forwarding it (the paywall decision included). */
  overhead(service: string, seconds: number): void;
  /** Seconds from forwarding a request to the upstream's response headers. */
  upstream(service: string, seconds: number): void;
  /** Counts a failed upstream exchange by its problem code. */
  upstreamError(service: string, code: string): void;
  /** Counts the tokens a metered LLM answer of `model` reported. */
  llmUsage(service: string, model: string, usage: LlmUsage): void;
  /** Counts one metered LLM call of `model` and what it was charged, msat. */
  llmCharged(service: string, model: string, chargedMsat: bigint): void;
  /** The LLM calls counted by this instance since it started, per service and model. */
  llmTotals(): LlmTotals[];
  /** What services in shadow mode let through unpaid since this instance started. */
  shadowTotals(): ShadowTotal[];
}

/** What one model of one service was used for and earned, since the instance started. */
export interface LlmTotals {
  service: string;
  model: string;
  calls: number;
  inputTokens: bigint;
  cachedInputTokens: bigint;
  outputTokens: bigint;
  /** What its calls were charged, msat. */
  chargedMsat: bigint;
}

/** One model's totals, and whether an answer reported its usage (its token series exist then). */
interface LlmEntry {
  total: LlmTotals;
  reported: boolean;
}

/** One service's requests let through unpaid in shadow mode, and what they would have cost. */
export interface ShadowTotal {
  service: string;
  requests: number;
  wouldChargeMsat: bigint;
}

const OVERHEAD_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
const UPSTREAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The problem code of an engine response, read from its JSON body. */
function problemCode(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object' && 'code' in parsed)
      return String(parsed.code);
  } catch {
    // Not JSON: counted as unknown.
  }
  return 'unknown';
}

/**
 * Creates the metrics in a registry of their own.
 *
 * @example
 * ```ts
 * const metrics = createGatewayMetrics();
 * metrics.overhead('weather', 0.0004);
 * const text = await metrics.registry.metrics();
 * ```
 */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  const challenges = new Counter({
    name: 'tollway_challenges_total',
    help: 'Payment challenges issued (each backed by one new invoice), by service and HTTP status.',
    labelNames: ['service', 'status'],
    registers,
  });
  const requests = createServiceCounter(registry, {
    name: 'tollway_requests_total',
    help: 'Requests decided by the paywall, by service and outcome (paid, free, refused).',
    label: 'outcome',
  });
  const rejections = new Counter({
    name: 'tollway_rejections_total',
    help: 'Requests answered by the paywall instead of the upstream, by service and problem code.',
    labelNames: ['service', 'code'],
    registers,
  });
  const payments = new Counter({
    name: 'tollway_payments_settled_total',
    help: 'Payments seen settled for the first time, by service and protocol.',
    labelNames: ['service', 'protocol'],
    registers,
  });
  const revenue = new Counter({
    name: 'tollway_revenue_msat_total',
    help: 'Revenue of settled Lightning payments in millisatoshis, by service and protocol.',
    labelNames: ['service', 'protocol'],
    registers,
  });
  const overhead = createServiceHistogram(registry, {
    name: 'tollway_gateway_overhead_seconds',
    help: 'Time from a request arriving to its forwarding upstream (paywall decision included).',
    buckets: OVERHEAD_BUCKETS,
  });
  const upstream = createServiceHistogram(registry, {
    name: 'tollway_upstream_duration_seconds',
    help: "Time from forwarding a request to the upstream's response headers.",
    buckets: UPSTREAM_BUCKETS,
  });
  const upstreamErrors = new Counter({
    name: 'tollway_upstream_errors_total',
    help: 'Upstream exchanges that failed, by service and problem code.',
    labelNames: ['service', 'code'],
    registers,
  });
  const shadowRequests = new Counter({
    name: 'tollway_shadow_requests_total',
    help: 'Requests a service in shadow mode let through unpaid, by service.',
    labelNames: ['service'],
    registers,
  });
  const shadowMsat = new Counter({
    name: 'tollway_shadow_msat_total',
    help: 'What the requests let through in shadow mode would have been charged, msat, by service.',
    labelNames: ['service'],
    registers,
  });
  /** The shadow totals in exact units, for the admin API (counters are floats). */
  const shadow = new Map<string, ShadowTotal>();
  function countShadow(service: string, msat: bigint): void {
    const total = shadow.get(service) ?? { service, requests: 0, wouldChargeMsat: 0n };
    total.requests += 1;
    total.wouldChargeMsat += msat;
    shadow.set(service, total);
    shadowRequests.inc({ service });
    shadowMsat.inc({ service }, Number(msat));
  }
  /**
   * Exact totals per service and model, for the admin API; the Prometheus counters read them when
   * scraped (service-metrics.ts), so that a metered call adds to them and does nothing more.
   */
  const llm = new Map<string, Map<string, LlmEntry>>();
  function llmEntries(): LlmEntry[] {
    return [...llm.values()].flatMap((models) => [...models.values()]);
  }
  function totalOf(service: string, model: string): LlmEntry {
    let models = llm.get(service);
    if (models === undefined) {
      models = new Map();
      llm.set(service, models);
    }
    let entry = models.get(model);
    if (entry === undefined) {
      entry = {
        total: {
          service,
          model,
          calls: 0,
          inputTokens: 0n,
          cachedInputTokens: 0n,
          outputTokens: 0n,
          chargedMsat: 0n,
        },
        reported: false,
      };
      models.set(model, entry);
    }
    return entry;
  }
  // Counters are floats: exact up to 2^53 in total, plenty for one counter.
  registerTotalsCounter(registry, {
    name: 'tollway_llm_tokens_total',
    help: 'Tokens metered LLM answers reported, by service, model and kind (input, cached_input, output).',
    series: () =>
      llmEntries()
        .filter((entry) => entry.reported)
        .flatMap(({ total: { service, model, ...total } }) =>
          (
            [
              ['input', total.inputTokens],
              ['cached_input', total.cachedInputTokens],
              ['output', total.outputTokens],
            ] as const
          ).map(([kind, tokens]) => ({ labels: { service, model, kind }, value: Number(tokens) })),
        ),
  });
  const charged = () => llmEntries().filter(({ total }) => total.calls > 0);
  registerTotalsCounter(registry, {
    name: 'tollway_llm_calls_total',
    help: 'Metered LLM calls charged, by service and model.',
    series: () =>
      charged().map(({ total: { service, model, calls } }) => ({
        labels: { service, model },
        value: calls,
      })),
  });
  registerTotalsCounter(registry, {
    name: 'tollway_llm_revenue_msat_total',
    help: 'What metered LLM calls were charged from their balances, msat, by service and model.',
    series: () =>
      charged().map(({ total: { service, model, chargedMsat } }) => ({
        labels: { service, model },
        value: Number(chargedMsat),
      })),
  });
  /** The series of each service, looked up once per service rather than once per request. */
  const bound = new Map<string, ReturnType<typeof bind>>();
  function bind(service: string) {
    return {
      paid: requests.series(service, 'paid'),
      free: requests.series(service, 'free'),
      refused: requests.series(service, 'refused'),
      overhead: overhead.series(service),
      upstream: upstream.series(service),
    };
  }
  function of(service: string): ReturnType<typeof bind> {
    let children = bound.get(service);
    if (children === undefined) {
      children = bind(service);
      bound.set(service, children);
    }
    return children;
  }
  return {
    registry,
    decision(service, decision) {
      if (decision.kind === 'pass') {
        const { payment } = decision;
        of(service)[payment.protocol === 'free' ? 'free' : 'paid'].inc();
        if (payment.shadowMsat !== undefined) countShadow(service, payment.shadowMsat);
        return;
      }
      const { response } = decision;
      of(service).refused.inc();
      rejections.inc({ service, code: problemCode(response.body) });
      if (response.headers.some(([name]) => name.toLowerCase() === 'www-authenticate')) {
        challenges.inc({ service, status: String(response.status) });
      }
    },
    settled(settlement) {
      const labels = { service: settlement.service, protocol: settlement.protocol };
      payments.inc(labels);
      // Counters are floats: exact up to 2^53 msat (90 000 BTC) in total, plenty for one counter.
      if (settlement.unit === 'msat') revenue.inc(labels, Number(settlement.amount));
    },
    overhead: (service, seconds) => of(service).overhead.observe(seconds),
    upstream: (service, seconds) => of(service).upstream.observe(seconds),
    upstreamError: (service, code) => upstreamErrors.inc({ service, code }),
    llmUsage(service, model, usage) {
      const entry = totalOf(service, model);
      const { total } = entry;
      entry.reported = true;
      total.inputTokens += BigInt(usage.inputTokens);
      total.cachedInputTokens += BigInt(usage.cachedInputTokens);
      total.outputTokens += BigInt(usage.outputTokens);
    },
    llmCharged(service, model, chargedMsat) {
      const { total } = totalOf(service, model);
      total.calls += 1;
      total.chargedMsat += chargedMsat;
    },
    llmTotals: () => llmEntries().map(({ total }) => ({ ...total })),
    shadowTotals: () => [...shadow.values()].map((total) => ({ ...total })),
  };
}

/**
 * Wraps a store so each settlement it records for the first time is counted in `metrics`. Every
 * other call passes through unchanged.
 *
 * @example
 * ```ts
 * const store = observeSettlements(createSqliteStore({ path }), metrics);
 * ```
 */
export function observeSettlements(store: Store, metrics: GatewayMetrics): Store {
  return {
    init: () => store.init(),
    close: () => store.close(),
    recordChallenges: (challenges) => store.recordChallenges(challenges),
    async recordSettlement(settlement) {
      const first = await store.recordSettlement(settlement);
      if (first) metrics.settled(settlement);
      return first;
    },
    listSettlements: (query) => store.listSettlements(query),
    revenue: (query) => store.revenue(query),
    saveToken: (token) => store.saveToken(token),
    getToken: (tokenId) => store.getToken(tokenId),
    listTokens: (query) => store.listTokens(query),
    getUsage: (tokenId) => store.getUsage(tokenId),
    hold: (hold, now) => store.hold(hold, now),
    settleHold: (id, charge) => store.settleHold(id, charge),
    releaseHold: (id) => store.releaseHold(id),
    resizeHold: (id, resize, now) => store.resizeHold(id, resize, now),
    pruneExpired: (now) => store.pruneExpired(now),
    takeFreebie: (key, allowance, now) => store.takeFreebie(key, allowance, now),
    advanceBuckets: (advances, now) => store.advanceBuckets(advances, now),
    assertHealthy: () => store.assertHealthy(),
    readDocument: (name) => store.readDocument(name),
    writeDocument: (name, body, revision) => store.writeDocument(name, body, revision),
    claim: (key, claim, now) => store.claim(key, claim, now),
    confirmClaim: (key) => store.confirmClaim(key),
    releaseClaim: (key) => store.releaseClaim(key),
    renew: (refs, until) => store.renew(refs, until),
    openSession: (session) => store.openSession(session),
    getSession: (id) => store.getSession(id),
    creditSession: (id, amountMsat) => store.creditSession(id, amountMsat),
    touchSession: (id, at) => store.touchSession(id, at),
    closeSession: (id, at) => store.closeSession(id, at),
    recordRefund: (id, refund) => store.recordRefund(id, refund),
    listIdleSessions: (now, limit) => store.listIdleSessions(now, limit),
    creditChannel: (channel, amount, reference) => store.creditChannel(channel, amount, reference),
    getChannel: (id) => store.getChannel(id),
    acceptVoucher: (id, voucher) => store.acceptVoucher(id, voucher),
    noteClaimed: (id, claimed) => store.noteClaimed(id, claimed),
    noteRefunded: (id, refunded) => store.noteRefunded(id, refunded),
    noteWithdrawal: (id, requestedAt) => store.noteWithdrawal(id, requestedAt),
    listClaimableChannels: (limit) => store.listClaimableChannels(limit),
    revoke: (tokenId, reason) =>
      reason === undefined ? store.revoke(tokenId) : store.revoke(tokenId, reason),
    listRevocations: () => store.listRevocations(),
    subscribeRevocations: (listener) => store.subscribeRevocations(listener),
  };
}
