/**
 * Budgets that hold: per-payment and fee caps, rolling hour/day/month/total windows (globally and per
 * origin), allow/deny lists of origins and payees, an approval callback, a persisted kill switch,
 * and nesting (organisation → agent → task) where a child only narrows its parent.
 *
 * Every decision is made against the {@link ClientStore}: money is held there atomically in the
 * budget and all its ancestors before a payment, then committed or released, so concurrent payments
 * in one or several processes never take more than a window allows.
 */
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import {
  formatMsat,
  formatTokenAmount,
  formatUsd,
  MAX_MSAT,
  parseAmount,
  type RateSource,
  type UsdPerBtc,
  usdToMsat,
} from '../money.js';
import type {
  Budget,
  BudgetWindowStatus,
  ClientStore,
  Reservation,
  SpendRequest,
} from './types.js';

/** A limit: msat as a `bigint`, or text {@link parseAmount} reads (`'100 sat'`, `'$5'`, `'2 usdc'`). */
export type BudgetAmount = bigint | string;

/** The rolling windows: `hour` is the last 3600 s, `day` the last 24 h, `month` the last 30 days. */
export interface WindowLimits {
  hour?: BudgetAmount;
  day?: BudgetAmount;
  month?: BudgetAmount;
  /** Everything ever spent through the budget. */
  total?: BudgetAmount;
}

/** The caps of one budget. Every cap is optional; a budget without any only applies its policy. */
export interface BudgetLimits extends WindowLimits {
  /** Largest price of one payment for one request (`over_price`). */
  perRequest?: BudgetAmount;
  /**
   * Largest payment for a prepaid balance that later requests draw from: the balance a metered
   * route sells (an LLM route's, say), an MPP session's deposit or top-up (`over_price`). The
   * server says what a balance costs; this says what the agent will put into one. Unset, such a
   * payment is held to `perRequest`.
   */
  perBalance?: BudgetAmount;
  /** Largest routing fee one payment may reserve (`fee_too_high`). */
  maxFee?: BudgetAmount;
  /** Window caps counted for each origin on its own. */
  perOrigin?: WindowLimits;
}

/** Who may be paid, and when a person must say yes. */
export interface BudgetPolicy {
  /**
   * Origins that may be paid; when set, every other origin is `origin_denied`. An entry is a full
   * origin (`https://api.example.com`, port optional), a host (`api.example.com`, any scheme), or
   * a wildcard host (`*.example.com`: every subdomain, not `example.com` itself), optionally with a
   * scheme (`https://*.example.com`).
   */
  allowOrigins?: readonly string[];
  /** Origins that are never paid (same forms as `allowOrigins`); wins over the allow list. */
  denyOrigins?: readonly string[];
  /** Payees (node pubkeys, payTo addresses; any case) that may be paid; others are `payee_denied`. */
  allowPayees?: readonly string[];
  /** Payees that are never paid; wins over the allow list. */
  denyPayees?: readonly string[];
  /** Payments priced above this ask `approve` first. Without it, `approve` is asked for every payment. */
  approveAbove?: BudgetAmount;
  /**
   * Says yes or no to a payment (it is already held while asked). `false`, a throw or a missing
   * callback above `approveAbove` is `approval_denied`.
   */
  approve?: (request: SpendRequest) => boolean | Promise<boolean>;
}

/** Options of {@link createBudget}. */
export interface BudgetOptions {
  /** Where holds, spend and the kill switch live; a child must use its parent's store. */
  store: ClientStore;
  /** The budget's name; a child's is appended to its parent's (`agent/task-42`). Default `'agent'`. */
  path?: string;
  limits?: BudgetLimits;
  policy?: BudgetPolicy;
  /** Attribution merged into every reservation's `request.tags` (and so into the ledger). */
  tags?: Readonly<Record<string, string>>;
  /** The budget this one narrows. */
  parent?: AgentBudget;
  /** Clock in unix ms. Default `Date.now`; a child inherits its parent's. */
  now?: () => number;
  /** Converts dollar limits to msat at every decision; required when a limit is in USD. Inherited. */
  rates?: RateSource;
}

/** Options of {@link AgentBudget.child}: the store, clock and rates are the parent's. */
export type ChildBudgetOptions = Omit<BudgetOptions, 'store' | 'parent' | 'now' | 'rates'> & {
  path: string;
};

/** A {@link Budget} as {@link createBudget} makes it: nestable, with a kill switch. */
export interface AgentBudget extends Budget {
  readonly store: ClientStore;
  readonly parent: AgentBudget | undefined;
  readonly limits: Readonly<BudgetLimits>;
  readonly policy: Readonly<BudgetPolicy>;
  /** This budget's tags merged over its ancestors'. */
  readonly tags: Readonly<Record<string, string>>;
  readonly now: () => number;
  readonly rates: RateSource | undefined;
  /** A budget under this one; its limits are clamped to this one's (and its ancestors'). */
  child(options: ChildBudgetOptions): AgentBudget;
  /** Turns the kill switch on: this budget and its descendants refuse with `payments_disabled`. */
  disable(): Promise<void>;
  /** Turns the kill switch off again. */
  enable(): Promise<void>;
  /** Like {@link Budget.status}; with `origin`, also the per-origin windows for that origin. */
  status(origin?: string): Promise<BudgetWindowStatus[]>;
}

type RollingWindow = 'hour' | 'day' | 'month' | 'total';
const ROLLING: readonly RollingWindow[] = ['hour', 'day', 'month', 'total'];

/** A limit read once at creation: msat, or micro-dollars converted at each decision. */
type ParsedLimit = { msat: bigint } | { microUsd: bigint };

interface ParsedLimits {
  perRequest?: ParsedLimit;
  perBalance?: ParsedLimit;
  maxFee?: ParsedLimit;
  approveAbove?: ParsedLimit;
  global: Partial<Record<RollingWindow, ParsedLimit>>;
  perOrigin: Partial<Record<RollingWindow, ParsedLimit>>;
}

/** Limits in msat at one decision. */
interface Bounds {
  perRequest: bigint | undefined;
  perBalance: bigint | undefined;
  maxFee: bigint | undefined;
  global: Partial<Record<RollingWindow, bigint>>;
  perOrigin: Partial<Record<RollingWindow, bigint>>;
}

/** One budget's limits in msat at one decision, already clamped to its ancestors'. */
interface ResolvedLimits extends Bounds {
  budget: AgentBudget;
  approveAbove: bigint | undefined;
}

type Denial = { code: TollwayErrorCode; message: string; details: Record<string, unknown> };

function invalidConfig(message: string): TollwayError {
  return new TollwayError('invalid_config', message);
}

function parseLimit(value: BudgetAmount | undefined, what: string): ParsedLimit | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'bigint') {
    if (value < 0n) throw new TollwayError('invalid_amount', `${what} must not be negative`);
    return { msat: value };
  }
  const amount = parseAmount(value);
  return amount.unit === 'msat' ? { msat: amount.msat } : { microUsd: amount.microUsd };
}

function parseWindows(
  windows: WindowLimits | undefined,
  prefix: string,
): Partial<Record<RollingWindow, ParsedLimit>> {
  const parsed: Partial<Record<RollingWindow, ParsedLimit>> = {};
  for (const window of ROLLING) {
    const limit = parseLimit(windows?.[window], `${prefix}${window}`);
    if (limit !== undefined) parsed[window] = limit;
  }
  return parsed;
}

function parseLimits(limits: BudgetLimits, policy: BudgetPolicy): ParsedLimits {
  const parsed: ParsedLimits = {
    global: parseWindows(limits, 'limits.'),
    perOrigin: parseWindows(limits.perOrigin, 'limits.perOrigin.'),
  };
  const perRequest = parseLimit(limits.perRequest, 'limits.perRequest');
  const perBalance = parseLimit(limits.perBalance, 'limits.perBalance');
  const maxFee = parseLimit(limits.maxFee, 'limits.maxFee');
  const approveAbove = parseLimit(policy.approveAbove, 'policy.approveAbove');
  if (perRequest !== undefined) parsed.perRequest = perRequest;
  if (perBalance !== undefined) parsed.perBalance = perBalance;
  if (maxFee !== undefined) parsed.maxFee = maxFee;
  if (approveAbove !== undefined) parsed.approveAbove = approveAbove;
  return parsed;
}

function hasUsd(parsed: ParsedLimits): boolean {
  const all = [
    parsed.perRequest,
    parsed.perBalance,
    parsed.maxFee,
    parsed.approveAbove,
    ...Object.values(parsed.global),
    ...Object.values(parsed.perOrigin),
  ];
  return all.some((limit) => limit !== undefined && 'microUsd' in limit);
}

/** `usd_per_btc=65000` (or `=64250.5`; a rate that is not a decimal fraction is written `n/d`). */
function formatRate(rate: UsdPerBtc): string {
  const decimals = rate.denominator.toString().length - 1;
  const value =
    rate.denominator === 10n ** BigInt(decimals)
      ? formatTokenAmount(rate.numerator, decimals)
      : `${rate.numerator}/${rate.denominator}`;
  return `usd_per_btc=${value}`;
}

function toMsat(limit: ParsedLimit | undefined, rate: UsdPerBtc | undefined): bigint | undefined {
  if (limit === undefined) return undefined;
  if ('msat' in limit) return limit.msat;
  if (rate === undefined) throw invalidConfig('a limit in USD needs a rate source (rates)');
  // A dollar limit converted for a cap rounds down: never allow more than was configured.
  return usdToMsat(limit.microUsd, rate, 'floor');
}

async function currentRate(rates: RateSource): Promise<UsdPerBtc> {
  try {
    return await rates.usdPerBtc();
  } catch (cause) {
    if (isTollwayError(cause)) throw cause;
    throw new TollwayError(
      'price_unavailable',
      'the rate source did not answer, so limits in USD cannot be checked',
      { cause },
    );
  }
}

function smaller(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

function clampWindows(
  own: Partial<Record<RollingWindow, ParsedLimit>>,
  above: Partial<Record<RollingWindow, bigint>>,
  rate: UsdPerBtc | undefined,
): Partial<Record<RollingWindow, bigint>> {
  const resolved: Partial<Record<RollingWindow, bigint>> = {};
  for (const window of ROLLING) {
    const limit = toMsat(own[window], rate);
    // Clamp only windows this budget sets itself: an ancestor's window is checked as the ancestor's.
    const clamped = limit === undefined ? undefined : smaller(limit, above[window]);
    if (clamped !== undefined) resolved[window] = clamped;
  }
  return resolved;
}

/** True when `origin` (`https://host:port`) matches one list entry; see {@link BudgetPolicy.allowOrigins}. */
function originMatches(pattern: string, origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const lower = pattern.trim().toLowerCase().replace(/\/$/, '');
  const schemeEnd = lower.indexOf('://');
  const scheme = schemeEnd === -1 ? undefined : lower.slice(0, schemeEnd);
  const hostPattern = schemeEnd === -1 ? lower : lower.slice(schemeEnd + 3);
  if (scheme !== undefined && `${scheme}:` !== url.protocol) return false;
  // With a scheme the pattern is an origin, so the port counts (default when absent); a bare host
  // pattern matches any port unless it names one.
  const host = scheme !== undefined || /:\d+$/.test(hostPattern) ? url.host : url.hostname;
  if (hostPattern.startsWith('*.')) return host.endsWith(hostPattern.slice(1));
  return host === hostPattern;
}

function policyDenial(chain: readonly AgentBudget[], request: SpendRequest): Denial | undefined {
  for (const budget of chain) {
    const { allowOrigins, denyOrigins, allowPayees, denyPayees } = budget.policy;
    const details = { budget: budget.path, origin: request.origin };
    if (denyOrigins?.some((p) => originMatches(p, request.origin))) {
      return {
        code: 'origin_denied',
        message: `budget ${budget.path} denies ${request.origin}`,
        details,
      };
    }
    if (allowOrigins !== undefined && !allowOrigins.some((p) => originMatches(p, request.origin))) {
      return {
        code: 'origin_denied',
        message: `budget ${budget.path} does not allow ${request.origin}`,
        details,
      };
    }
    const payee = request.payee?.toLowerCase();
    const payeeDetails = { budget: budget.path, payee: request.payee };
    if (payee !== undefined && denyPayees?.some((p) => p.toLowerCase() === payee)) {
      return {
        code: 'payee_denied',
        message: `budget ${budget.path} denies payee ${request.payee}`,
        details: payeeDetails,
      };
    }
    if (
      allowPayees !== undefined &&
      (payee === undefined || !allowPayees.some((p) => p.toLowerCase() === payee))
    ) {
      return {
        code: 'payee_denied',
        message: `budget ${budget.path} does not allow payee ${request.payee ?? '(unknown)'}`,
        details: payeeDetails,
      };
    }
  }
  return undefined;
}

/**
 * A cap as its budget was given it, so that a refusal speaks the user's unit: the text itself
 * (`'0.5 sat'`, `'10 sats'`; a bare number with `sat`), `'$0.01, 15 sat now'` for a dollar limit,
 * else (a bigint, or a cap an ancestor narrowed) sats.
 */
function describeCap(given: BudgetAmount | undefined, msat: bigint): string {
  const amount = typeof given === 'string' ? parseAmount(given) : undefined;
  if (amount?.unit === 'usd') return `${formatUsd(amount.microUsd)}, ${formatLimit(msat)} now`;
  if (amount?.msat !== msat) return formatLimit(msat);
  const text = String(given).trim();
  return /^[\d.]+$/.test(text) ? `${text} sat` : text;
}

/** {@link formatMsat}, and plain msat for a bigint limit beyond any amount of bitcoin. */
function formatLimit(msat: bigint): string {
  return msat <= MAX_MSAT ? formatMsat(msat) : `${msat} msat`;
}

/** The cap on the price of `request` in one budget: `perBalance` for a balance, else `perRequest`. */
function priceCap(limits: ResolvedLimits, request: SpendRequest) {
  const { budget, perRequest, perBalance } = limits;
  if (request.buys === 'balance' && perBalance !== undefined) {
    return { msat: perBalance, given: budget.limits.perBalance, name: 'per-balance' };
  }
  return perRequest === undefined
    ? undefined
    : { msat: perRequest, given: budget.limits.perRequest, name: 'per-request' };
}

function capDenial(resolved: readonly ResolvedLimits[], request: SpendRequest): Denial | undefined {
  for (const limits of resolved) {
    const { budget, maxFee } = limits;
    const cap = priceCap(limits, request);
    if (cap !== undefined && request.amountMsat > cap.msat) {
      return {
        code: 'over_price',
        message: `price ${formatMsat(request.amountMsat)} is above the ${cap.name} cap of ${budget.path} (${describeCap(cap.given, cap.msat)})`,
        details: { budget: budget.path, amountMsat: request.amountMsat, limitMsat: cap.msat },
      };
    }
    if (maxFee !== undefined && request.maxFeeMsat > maxFee) {
      return {
        code: 'fee_too_high',
        message: `fee allowance ${formatMsat(request.maxFeeMsat)} is above the fee cap of ${budget.path} (${describeCap(budget.limits.maxFee, maxFee)})`,
        details: { budget: budget.path, maxFeeMsat: request.maxFeeMsat, limitMsat: maxFee },
      };
    }
  }
  return undefined;
}

function exceeded(
  budget: string,
  window: string,
  origin: string | undefined,
  remainingMsat: bigint,
): Denial {
  const where = origin === undefined ? window : `${window} for ${origin}`;
  return {
    code: 'budget_exceeded',
    message: `budget ${budget} has ${formatLimit(remainingMsat)} left in its ${where} window`,
    details: { budget, window, ...(origin !== undefined ? { origin } : {}), remainingMsat },
  };
}

function holdsFor(
  resolved: readonly ResolvedLimits[],
  origin: string,
): Array<{ budget: string; window: RollingWindow; origin?: string; limitMsat: bigint }> {
  const holds: Array<{
    budget: string;
    window: RollingWindow;
    origin?: string;
    limitMsat: bigint;
  }> = [];
  for (const { budget, global, perOrigin } of resolved) {
    for (const window of ROLLING) {
      const limit = global[window];
      if (limit !== undefined) holds.push({ budget: budget.path, window, limitMsat: limit });
    }
    for (const window of ROLLING) {
      const limit = perOrigin[window];
      if (limit !== undefined)
        holds.push({ budget: budget.path, window, origin, limitMsat: limit });
    }
  }
  return holds;
}

function assertRequest(request: SpendRequest): void {
  if (request.amountMsat < 0n || request.maxFeeMsat < 0n) {
    throw new TollwayError('invalid_amount', 'a spend request must not have negative amounts');
  }
}

/**
 * Creates a budget over a {@link ClientStore}. Limits in USD need `rates` (or a parent's); they are
 * converted to msat at every decision with the current rate (rounded down), and the rate used is
 * returned on the reservation (`rate`) for the ledger. A child's limit above its parent's for the
 * same window is clamped to the parent's. Throws `invalid_config` or `invalid_amount` for a bad
 * configuration.
 *
 * @example
 * ```ts
 * const budget = createBudget({
 *   store: createSqliteClientStore(),
 *   limits: { perRequest: '100 sat', maxFee: '10 sat', day: '5000 sat', perOrigin: { hour: '1000 sat' } },
 *   policy: { denyOrigins: ['*.example.net'] },
 * });
 * const task = budget.child({ path: 'task-42', limits: { total: '500 sat' }, tags: { task: '42' } });
 * const held = await task.reserve({ origin, url, protocol: 'l402', amountMsat: 10_000n, maxFeeMsat: 1_000n });
 * await task.commit(held, { amountMsat: 10_000n, feeMsat: 12n });
 * ```
 */
export function createBudget(options: BudgetOptions): AgentBudget {
  const { store, parent } = options;
  const limits = options.limits ?? {};
  const policy = options.policy ?? {};
  const segment = options.path ?? 'agent';
  if (segment === '' || (parent !== undefined && segment.includes('/'))) {
    throw invalidConfig(
      `a budget path must be non-empty${parent ? ' and hold no "/"' : ''}: "${segment}"`,
    );
  }
  if (parent !== undefined && parent.store !== store) {
    throw invalidConfig('a child budget must use the store of its parent');
  }
  const path = parent === undefined ? segment : `${parent.path}/${segment}`;
  const now = options.now ?? parent?.now ?? Date.now;
  const rates = options.rates ?? parent?.rates;
  const parsed = parseLimits(limits, policy);
  if (hasUsd(parsed) && rates === undefined) {
    throw invalidConfig(`budget ${path} has limits in USD but no rate source (rates)`);
  }
  const tags = { ...parent?.tags, ...options.tags };

  const budget: AgentBudget = {
    path,
    store,
    parent,
    limits,
    policy,
    tags,
    now,
    rates,
    child: (child) =>
      createBudget({ ...child, store, parent: budget, now, ...(rates ? { rates } : {}) }),
    disable: () => store.setBudgetDisabled(path, true),
    enable: () => store.setBudgetDisabled(path, false),
    reserve,
    commit,
    release: (reservation) => store.releaseHold(reservation.id),
    refund,
    check,
    status,
  };

  /** Root first. */
  function chain(): AgentBudget[] {
    const list: AgentBudget[] = [];
    for (let b: AgentBudget | undefined = budget; b !== undefined; b = b.parent) list.unshift(b);
    return list;
  }

  /** Every budget's limits in msat now, clamped top-down, and the rate string when one was used. */
  async function resolve(): Promise<{ resolved: ResolvedLimits[]; rate?: string }> {
    const list = chain();
    const all = list.map((b) => ({
      budget: b,
      parsed: b === budget ? parsed : parseLimits(b.limits, b.policy),
    }));
    const rate =
      all.some((b) => hasUsd(b.parsed)) && rates !== undefined
        ? await currentRate(rates)
        : undefined;
    const resolved: ResolvedLimits[] = [];
    let above: Bounds = {
      perRequest: undefined,
      perBalance: undefined,
      maxFee: undefined,
      global: {},
      perOrigin: {},
    };
    for (const { budget: b, parsed: p } of all) {
      const perRequest = toMsat(p.perRequest, rate);
      const perBalance = toMsat(p.perBalance, rate);
      const maxFee = toMsat(p.maxFee, rate);
      const own: ResolvedLimits = {
        budget: b,
        perRequest: perRequest === undefined ? undefined : smaller(perRequest, above.perRequest),
        perBalance: perBalance === undefined ? undefined : smaller(perBalance, above.perBalance),
        maxFee: maxFee === undefined ? undefined : smaller(maxFee, above.maxFee),
        approveAbove: toMsat(p.approveAbove, rate),
        global: clampWindows(p.global, above.global, rate),
        perOrigin: clampWindows(p.perOrigin, above.perOrigin, rate),
      };
      resolved.push(own);
      // A clamped limit is never above the one it replaces, so the tightest bounds so far merge.
      above = {
        perRequest: own.perRequest ?? above.perRequest,
        perBalance: own.perBalance ?? above.perBalance,
        maxFee: own.maxFee ?? above.maxFee,
        global: { ...above.global, ...own.global },
        perOrigin: { ...above.perOrigin, ...own.perOrigin },
      };
    }
    return rate === undefined ? { resolved } : { resolved, rate: formatRate(rate) };
  }

  async function disabledDenial(list: readonly AgentBudget[]): Promise<Denial | undefined> {
    const disabled = new Set(await store.disabledBudgets());
    const off = list.find((b) => disabled.has(b.path));
    return (
      off && {
        code: 'payments_disabled',
        message: `payments are disabled for budget ${off.path}`,
        details: { budget: off.path },
      }
    );
  }

  /** Every check that needs no hold, in the order `reserve` applies them. */
  async function precheck(
    request: SpendRequest,
  ): Promise<{ denial?: Denial; resolved: ResolvedLimits[]; rate?: string }> {
    assertRequest(request);
    const list = chain();
    const denial = (await disabledDenial(list)) ?? policyDenial(list, request);
    const { resolved, rate } = await resolve();
    const result = { resolved, ...(rate !== undefined ? { rate } : {}) };
    const found = denial ?? capDenial(resolved, request);
    return found === undefined ? result : { ...result, denial: found };
  }

  async function approve(
    request: SpendRequest,
    resolved: readonly ResolvedLimits[],
  ): Promise<void> {
    for (const { budget: b, approveAbove } of resolved) {
      const ask = b.policy.approve;
      const needed =
        approveAbove === undefined ? ask !== undefined : request.amountMsat > approveAbove;
      if (!needed) continue;
      let yes = false;
      let cause: unknown;
      try {
        yes = ask !== undefined && (await ask(request)) === true;
      } catch (error) {
        cause = error;
      }
      if (!yes) {
        throw new TollwayError(
          'approval_denied',
          `budget ${b.path} needs approval and it was not given`,
          {
            details: { budget: b.path, amountMsat: request.amountMsat },
            ...(cause !== undefined ? { cause } : {}),
          },
        );
      }
    }
  }

  async function reserve(request: SpendRequest): Promise<Reservation> {
    const { denial, resolved, rate } = await precheck(request);
    if (denial !== undefined)
      throw new TollwayError(denial.code, denial.message, { details: denial.details });
    const createdAt = now();
    const reservation: Reservation = {
      id: globalThis.crypto.randomUUID(),
      request: { ...request, tags: { ...tags, ...request.tags } },
      heldMsat: request.amountMsat + request.maxFeeMsat,
      createdAt,
      ...(rate !== undefined ? { rate } : {}),
    };
    const held = await store.tryHold(reservation, holdsFor(resolved, request.origin), createdAt);
    if (!held.ok) {
      const d = exceeded(held.budget, held.window, held.origin, held.remainingMsat);
      throw new TollwayError(d.code, d.message, { details: d.details });
    }
    try {
      await approve(reservation.request, resolved);
    } catch (error) {
      await store.releaseHold(reservation.id);
      throw error;
    }
    return reservation;
  }

  async function commit(
    reservation: Reservation,
    actual: { amountMsat: bigint; feeMsat: bigint },
  ): Promise<void> {
    if (actual.amountMsat < 0n || actual.feeMsat < 0n) {
      throw new TollwayError('invalid_amount', 'a committed amount must not be negative');
    }
    await store.commitHold(reservation.id, actual.amountMsat + actual.feeMsat, now());
  }

  async function refund(reservationId: string, amountMsat: bigint): Promise<bigint> {
    if (amountMsat < 0n) throw new TollwayError('invalid_amount', 'a refund must not be negative');
    return store.refundHold(reservationId, amountMsat);
  }

  async function check(
    request: SpendRequest,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
    try {
      const { denial, resolved } = await precheck(request);
      if (denial !== undefined) return { ok: false, code: denial.code, message: denial.message };
      const t = now();
      const wanted = request.amountMsat + request.maxFeeMsat;
      for (const hold of holdsFor(resolved, request.origin)) {
        const { spentMsat, heldMsat } = await store.windowStatus(
          hold.budget,
          hold.window,
          hold.origin,
          t,
        );
        const used = spentMsat + heldMsat;
        if (used + wanted > hold.limitMsat) {
          const d = exceeded(
            hold.budget,
            hold.window,
            hold.origin,
            hold.limitMsat > used ? hold.limitMsat - used : 0n,
          );
          return { ok: false, code: d.code, message: d.message };
        }
      }
      return { ok: true };
    } catch (error) {
      if (isTollwayError(error)) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
  }

  async function status(origin?: string): Promise<BudgetWindowStatus[]> {
    const { resolved } = await resolve();
    const t = now();
    const out: BudgetWindowStatus[] = [];
    const add = async (
      b: string,
      window: BudgetWindowStatus['window'],
      limitMsat: bigint,
      o?: string,
    ) => {
      const { spentMsat, heldMsat } = await store.windowStatus(b, window, o, t);
      const used = spentMsat + heldMsat;
      out.push({
        budget: b,
        window,
        ...(o !== undefined ? { origin: o } : {}),
        limitMsat,
        spentMsat,
        heldMsat,
        remainingMsat: limitMsat > used ? limitMsat - used : 0n,
      });
    };
    for (const { budget: b, perRequest, global, perOrigin } of resolved) {
      if (perRequest !== undefined) await add(b.path, 'request', perRequest);
      for (const window of ROLLING) {
        const limit = global[window];
        if (limit !== undefined) await add(b.path, window, limit);
      }
      for (const window of ROLLING) {
        const limit = perOrigin[window];
        if (origin !== undefined && limit !== undefined) await add(b.path, window, limit, origin);
      }
    }
    return out;
  }

  return budget;
}
