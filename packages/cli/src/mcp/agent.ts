/**
 * The paying agent behind `tollway mcp`: one wallet, one budget and one SQLite client store, shared
 * by every tool call, with a per-call price cap (the `max_cost` argument of a tool) that can only
 * narrow the configured one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { formatMsat, TollwayError } from '@tollway/sdk';
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

/** What `tollway mcp` is configured with; amounts in msat. */
export interface AgentConfig {
  /** Lightning connection string of the paying wallet. */
  wallet: string;
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
  /** The protocols to pay by, most wanted first. Default: L402, then MPP charges. */
  preferences?: ReadonlyArray<'l402' | 'mpp' | 'mpp-session'>;
}

/** The state of one tool call, seen by the budget and the paying fetch's events. */
interface AgentCall {
  /** The call's own price cap, below the configured one; `undefined` when it sets none. */
  capMsat: bigint | undefined;
  /** A credential bought earlier was sent (cached, or shared with a concurrent call). */
  reused: boolean;
}

/** A connected agent; see {@link openAgent}. */
export interface Agent {
  readonly config: AgentConfig;
  readonly wallet: LightningBackend;
  /** The wallet's node, as it described itself when the agent opened. */
  readonly node: NodeInfo;
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
 * Connects the wallet (and asks it what it is, so a wrong connection string fails here rather than
 * at the first payment), opens the store and builds the budget and the paying fetch.
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
  const wallet = await connectLightning(config.wallet);
  let node: NodeInfo;
  try {
    node = await wallet.getInfo();
  } catch (error) {
    await wallet.close();
    throw error;
  }
  const store = createSqliteClientStore({ path: config.db });
  const budget = createBudget({
    store,
    limits: { perRequest: config.maxCostMsat, maxFee: config.maxFeeMsat, ...config.windows },
    ...(config.allowOrigins !== undefined ? { policy: { allowOrigins: config.allowOrigins } } : {}),
  });
  const calls = new AsyncLocalStorage<AgentCall>();
  const fetch = createPayingFetch({
    wallets: wallet,
    store,
    budget: withCallCap(budget, calls),
    maxFeeMsat: config.maxFeeMsat,
    ...(config.preferences !== undefined ? { preferences: config.preferences } : {}),
    sessions: { idleCloseMs: SESSION_IDLE_CLOSE_MS },
    tags: TAGS,
    onEvent: (event) => {
      const current = calls.getStore();
      if (current !== undefined && (event.type === 'cached' || event.type === 'shared')) {
        current.reused = true;
      }
    },
  });
  return {
    config,
    wallet,
    node,
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
      // The sessions this process used are closed and refunded; those of other processes on the
      // same database are theirs to close.
      try {
        await fetch.close({ usedHere: true });
      } finally {
        await store.close();
        await wallet.close();
      }
    },
  };
}
