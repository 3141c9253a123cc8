/**
 * `tollway mcp`: an MCP server that lets an AI agent fetch paid URLs from the user's wallets within
 * a budget, over stdio (default, for an MCP host that spawns it) or Streamable HTTP on loopback
 * (`--http [port]`): a Lightning wallet (`--wallet`), an EVM key for x402 (`--evm-key`, with the
 * flags `tollway fetch` takes), or both. Budget state, cached credentials and the ledger live in
 * the agent's SQLite file, shared with `tollway ledger`.
 */
import { fixedRate, formatMsat, isTollwayError } from '@tollway/sdk';
import type { Command } from 'commander';
import {
  addBudgetWindowOptions,
  type BudgetWindowFlags,
  readBudgetWindows,
} from '../budget-flags.js';
import {
  addEvmOptions,
  type EvmFlags,
  openEvmWallet,
  readExpectedCalls,
  readRate,
} from '../evm-flags.js';
import type { Io } from '../io.js';
import type { Agent, AgentConfig } from '../mcp/agent.js';
import { asPortInUse } from '../port-in-use.js';
import { nextSignal } from '../signals.js';
import { type Protocol, readMsatFlag, readPreferFlag, UsageError } from '../usage.js';

/** Exit codes of `tollway mcp`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

/** The port of `--http` without a value. */
const DEFAULT_HTTP_PORT = 3402;

interface McpFlags extends BudgetWindowFlags, EvmFlags {
  wallet?: string;
  db?: string;
  maxCost: string;
  maxFee: string;
  allowOrigin: string[];
  timeout: string;
  http?: string | true;
  token?: string;
  prefer?: string;
}

/** Why `tollway mcp` takes amounts in sats only. */
const SATS_ONLY = 'tollway mcp takes its amounts in sats';

/** An amount flag in msat. */
function parseMsatFlag(text: string, flag: string): bigint {
  return readMsatFlag(text, flag, SATS_ONLY);
}

/**
 * `--prefer`: L402, MPP charges, MPP sessions (only when named) and, with an EVM key, x402 in the
 * order wanted.
 */
function readPreferences(text: string, evm: boolean): Protocol[] {
  const available: Protocol[] = evm
    ? ['l402', 'mpp', 'mpp-session', 'x402']
    : ['l402', 'mpp', 'mpp-session'];
  return readPreferFlag(
    text,
    available,
    'give --evm-key (with --evm-asset and --usd-per-btc) to pay x402',
  );
}

function parseWholeNumber(text: string, flag: string, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value <= max)) throw new UsageError(`${flag} takes a whole number up to ${max}`);
  return value;
}

/**
 * The x402 part of the agent's config: the EVM wallet and the rate its token amounts are counted
 * at; undefined without `--evm-key`.
 */
async function readX402(flags: McpFlags): Promise<AgentConfig['x402']> {
  const wallet = await openEvmWallet(flags);
  const rate = readRate(flags);
  if (wallet === undefined) return undefined;
  if (rate === undefined) {
    throw new UsageError(
      '--evm-key needs --usd-per-btc <rate>: the budget counts x402 token amounts in sats',
    );
  }
  return { wallet, rates: fixedRate(rate) };
}

/** The agent's config from the flags; `defaultDb` names the database when `--db` does not. */
async function toConfig(flags: McpFlags, defaultDb: () => string): Promise<AgentConfig> {
  const wallet = flags.wallet ?? process.env.TOLLWAY_WALLET ?? '';
  const x402 = await readX402(flags);
  const expectedCalls = readExpectedCalls(flags);
  if (wallet === '' && x402 === undefined) {
    throw new UsageError(
      'name a wallet with --wallet <connection string> or TOLLWAY_WALLET, or an EVM key with --evm-key',
    );
  }
  return {
    ...(wallet === '' ? {} : { wallet }),
    ...(x402 === undefined ? {} : { x402 }),
    ...(expectedCalls === undefined ? {} : { expectedCalls }),
    db: flags.db ?? defaultDb(),
    maxCostMsat: parseMsatFlag(flags.maxCost, '--max-cost'),
    maxFeeMsat: parseMsatFlag(flags.maxFee, '--max-fee'),
    windows: readBudgetWindows(flags, SATS_ONLY),
    ...(flags.allowOrigin.length > 0 ? { allowOrigins: flags.allowOrigin } : {}),
    timeoutMs: parseWholeNumber(flags.timeout, '--timeout', 3600) * 1000,
    ...(flags.prefer !== undefined
      ? { preferences: readPreferences(flags.prefer, x402 !== undefined) }
      : {}),
  };
}

/** The wallets the agent pays from, for the line that says it is serving. */
function describeWallets(agent: Agent): string {
  const wallets: string[] = [];
  if (agent.lightning !== undefined) {
    wallets.push(`wallet ${agent.lightning.wallet.kind} on ${agent.lightning.node.network}`);
  }
  const evm = agent.config.x402;
  if (evm !== undefined) {
    wallets.push(
      `x402 from ${evm.wallet.address}${evm.wallet.batch === undefined ? '' : ' (channels too)'}`,
    );
  }
  return wallets.join(', ');
}

/** Registers `tollway mcp`. */
export function registerMcpCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  const command = program
    .command('mcp')
    .description('Serve MCP tools that let an AI agent pay for HTTP 402 APIs within a budget.')
    .option('--wallet <connection>', 'Lightning connection string (default: $TOLLWAY_WALLET)')
    .option('--db <path>', 'agent database (default: $TOLLWAY_AGENT_DB or ~/.tollway/agent.sqlite)')
    .option('--max-cost <sats>', 'largest price of one request', '1000')
    .option('--max-fee <sats>', 'largest routing fee of one payment', '10');
  addBudgetWindowOptions(command)
    .option(
      '--allow-origin <origin>',
      'only pay this origin, host or *.domain (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option('--timeout <seconds>', 'time limit of one fetch or quote, payment included', '60')
    .option(
      '--prefer <protocols>',
      'protocols to pay by first: l402, mpp, mpp-session, x402 (comma-separated)',
    )
    .option(
      '--expect-calls <n>',
      'calls the agent expects to make to an origin: with --evm-rpc, x402 batch-settlement is paid by a channel holding that many',
    )
    .option(
      '--http [port]',
      `serve Streamable HTTP on 127.0.0.1 (default port ${DEFAULT_HTTP_PORT}) instead of stdio`,
    )
    .option(
      '--token <token>',
      'with --http: require Authorization: Bearer <token> (default: $TOLLWAY_MCP_TOKEN)',
    );
  addEvmOptions(command).action(async (flags: McpFlags) => {
    try {
      // Loaded when the command runs, so that other commands start without the MCP server.
      const [{ defaultAgentDbPath }, { openAgent }, { serveHttp, serveStdio }] = await Promise.all([
        import('@tollway/sdk/client'),
        import('../mcp/agent.js'),
        import('../mcp/server.js'),
      ]);
      const config = await toConfig(flags, defaultAgentDbPath);
      const port =
        flags.http === undefined
          ? undefined
          : flags.http === true
            ? DEFAULT_HTTP_PORT
            : parseWholeNumber(flags.http, '--http', 65535);
      const agent = await openAgent(config);
      try {
        const where = `${describeWallets(agent)}; at most ${formatMsat(config.maxCostMsat)} per request`;
        if (port === undefined) {
          io.stderr(`tollway mcp: serving on stdio (${where})\n`);
          await serveStdio(agent);
          io.stderr('tollway mcp: the client closed stdin; stopping\n');
        } else {
          const token = flags.token ?? (process.env.TOLLWAY_MCP_TOKEN || undefined);
          const http = await serveHttp(agent, port, { token });
          const guard =
            token === undefined
              ? 'no token: any local program can call it'
              : 'bearer token required';
          io.stderr(`tollway mcp: serving Streamable HTTP at ${http.url} (${where}; ${guard})\n`);
          await nextSignal(['SIGINT', 'SIGTERM']);
          await http.close();
        }
      } finally {
        await agent.close();
      }
    } catch (caught) {
      if (caught instanceof UsageError) {
        io.stderr(`tollway mcp: ${caught.message}\n`);
        setExitCode(EXIT_USAGE);
        return;
      }
      const error = asPortInUse(caught, 'stop it, or give --http another port');
      io.stderr(
        `tollway mcp: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
      );
      setExitCode(EXIT_FAILED);
    }
  });
}
