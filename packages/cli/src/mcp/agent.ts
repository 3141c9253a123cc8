/**
 * The paying agent behind `tollway mcp`: its wallets (Lightning, an EVM key for x402, or both), one
 * budget and one SQLite client store, shared by every tool call, with a per-call price cap (the
 * `max_cost` argument of a tool) that can only narrow the configured one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { formatMsat, type RateSource, TollwayError } from '@tollway/sdk';
import {
  type AgentBudget,
  type Budget,
  type ClientStore,
  createBudget,
  createPayingFetch,
  createSqliteClientStore,
  type PayingFetch,
  type SpendRequest,
} from '@tollway/sdk/client';
import { connectLightning, type LightningBackend, type NodeInfo } from '@tollway/sdk/lightning';
import type { EvmWallet } from '@tollway/sdk/x402';

/** What `tollway mcp` is configured with; amounts in msat. */
export interface AgentConfig {
  /** Lightning connection string of the paying wallet; none: x402 only. */
  wallet?: string;
  /** Pays x402 too: the EVM wallet, and the rate its token amounts count at against the budget. */
  x402?: { wallet: EvmWallet; rates: RateSource };
  /**
   * The calls the agent expects to make to an origin: an x402 channel's deposit holds that many
   * (with an EVM wallet that has an RPC URL); an MPP session is preferred to a balance they would
   * not use up.
   */
  expectedCalls?: number;
  /** The agent's SQLite file (budget state, ledger, cached credentials). */
  db: string;
  /** Largest price of one request. */
  maxCostMsat: bigint;
  /** Largest routing fee one payment may take; held in the budget with the price. */
  maxFeeMsat: bigint;
  /** Rolling budget windows; absent ones are not limited. */
  windows: { hour?: bigint; day?: bigint; month?: bigint; total?: bigint };
  /** When set, only these origins (or hosts, or `*.example.com`) are paid. */
  allowOrigins?: readonly string[];
  /** Time limit of one `fetch` or `quote` call, payment included, in ms. */
  timeoutMs: number;
  /**
   * The protocols to pay by, most wanted first. Default: L402, then MPP charges, then x402 (with
   * an EVM wallet).
   */
  preferences?: ReadonlyArray<'l402' | 'mpp' | 'mpp-session' | 'x402'>;
}

/** The state of one tool call, seen by the budget and the paying fetch's events. */
interface AgentCall {
  /** The call's own price cap, below the configured one; `undefined` when it sets none. */
  capMsat: bigint | undefined;
  /** A credential bought earlier was sent (cached, or shared with a concurrent call). */
  reused: boolean;
  /** The x402 channel the call drew on with a voucher, deposited into earlier. */
  channelId?: string;
}

/** A connected agent; see {@link openAgent}. */
export interface Agent {
  readonly config: AgentConfig;
  /** The Lightning wallet and its node, as it described itself when the agent opened; if any. */
  readonly lightning?: { wallet: LightningBackend; node: NodeInfo };
  readonly store: ClientStore;
  readonly budget: AgentBudget;
  readonly fetch: PayingFetch;
  /**
   * Runs `work` as one tool call: payments it makes are refused (`over_price`) above `maxCostMsat`
   * when that is below the configured cap.
   */
  call<T>(maxCostMsat: bigint | undefined, work: (call: AgentCall) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * A session this process has not used for a minute is closed and refunded: an agent's tool calls
 * come in bursts, and a server closes an idle session itself after its own timeout (5 minutes by
 * the draft's recommendation), refunding it where the ledger does not see.
 */
const SESSION_IDLE_CLOSE_MS = 60_000;

/** Tags written on every payment `tollway mcp` makes (`tollway ledger --tag via=mcp`). */
const TAGS = { via: 'mcp' } as const;

/**
 * The budget with the current call's cap checked first. The cap is the `max_cost` a model passed,
 * so its refusal says so in `details.argument`.
 */
function withCallCap(budget: AgentBudget, calls: AsyncLocalStorage<AgentCall>): Budget {
  function refusal(request: SpendRequest): TollwayError | undefined {
    const cap = calls.getStore()?.capMsat;
    if (cap === undefined || request.amountMsat <= cap) return undefined;
    return new TollwayError(
      'over_price',
      `price ${formatMsat(request.amountMsat)} is above the max_cost of this call (${formatMsat(cap)})`,
      { details: { argument: 'max_cost', amountMsat: request.amountMsat, limitMsat: cap } },
    );
  }
  return {
    path: budget.path,
    reserve: (request) => {
      const refused = refusal(request);
      return refused === undefined ? budget.reserve(request) : Promise.reject(refused);
    },
    commit: (reservation, actual) => budget.commit(reservation, actual),
    release: (reservation) => budget.release(reservation),
    refund: (reservationId, amountMsat) => budget.refund(reservationId, amountMsat),
    check: async (request) => {
      const refused = refusal(request);
      return refused === undefined
        ? budget.check(request)
        : { ok: false, code: refused.code, message: refused.message };
    },
    status: () => budget.status(),
  };
}

/**
 * Connects the Lightning wallet and asks it what it is, so that a wrong connection string fails
 * here rather than at the first payment.
 */
async function connectWallet(
  connection: string,
): Promise<{ wallet: LightningBackend; node: NodeInfo }> {
  const wallet = await connectLightning(connection);
  try {
    return { wallet, node: await wallet.getInfo() };
  } catch (error) {
    await wallet.close();
    throw error;
  }
}

/**
 * Connects the Lightning wallet, if any, opens the store and builds the budget and the paying
 * fetch.
 *
 * @example
 * ```ts
 * const agent = await openAgent({
 *   wallet: process.env.TOLLWAY_WALLET ?? '',
 *   db: defaultAgentDbPath(),
 *   maxCostMsat: 100_000n,
 *   maxFeeMsat: 10_000n,
 *   windows: { day: 5_000_000n },
 *   timeoutMs: 60_000,
 * });
 * const response = await agent.call(undefined, () => agent.fetch('https://api.example.com/forecast'));
 * ```
 */
export async function openAgent(config: AgentConfig): Promise<Agent> {
  const lightning = config.wallet === undefined ? undefined : await connectWallet(config.wallet);
  const { x402 } = config;
  const store = createSqliteClientStore({ path: config.db });
  const budget = createBudget({
    store,
    limits: { perRequest: config.maxCostMsat, maxFee: config.maxFeeMsat, ...config.windows },
    ...(config.allowOrigins !== undefined ? { policy: { allowOrigins: config.allowOrigins } } : {}),
    ...(x402 === undefined ? {} : { rates: x402.rates }),
  });
  const calls = new AsyncLocalStorage<AgentCall>();
  const fetch = createPayingFetch({
    wallets: lightning === undefined ? [] : lightning.wallet,
    store,
    budget: withCallCap(budget, calls),
    maxFeeMsat: config.maxFeeMsat,
    // x402 after Lightning by default, when the agent has an EVM wallet.
    ...(config.preferences !== undefined
      ? { preferences: config.preferences }
      : x402 === undefined
        ? {}
        : { preferences: ['l402', 'mpp', 'x402'] as const }),
    ...(x402 === undefined ? {} : { x402 }),
    sessions: {
      idleCloseMs: SESSION_IDLE_CLOSE_MS,
      ...(config.expectedCalls === undefined ? {} : { expectedCalls: config.expectedCalls }),
    },
    tags: TAGS,
    onEvent: (event) => {
      const current = calls.getStore();
      if (current === undefined) return;
      if (event.type === 'cached' || event.type === 'shared') current.reused = true;
      if (event.type === 'voucher') current.channelId = event.channelId;
    },
  });
  return {
    config,
    ...(lightning === undefined ? {} : { lightning }),
    store,
    budget,
    fetch,
    call: (maxCostMsat, work) => {
      const capMsat =
        maxCostMsat !== undefined && maxCostMsat < config.maxCostMsat ? maxCostMsat : undefined;
      const current: AgentCall = { capMsat, reused: false };
      return calls.run(current, () => work(current));
    },
    close: async () => {
      // The sessions and channels this process used are closed and refunded; those of other
      // processes on the same database are theirs to close.
      try {
        await fetch.close({ usedHere: true });
      } finally {
        await store.close();
        await lightning?.wallet.close();
      }
    },
  };
}
