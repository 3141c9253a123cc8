/**
 * `tollway fetch <url>`: curl for paid APIs. On a 402 it pays one offer with the wallet named by
 * `--wallet` (or `TOLLWAY_WALLET`), or x402 with `--evm-key`, within `--max-cost` and `--max-fee`,
 * retries, and prints the response. The ledger and cached credentials live in the agent's SQLite
 * file, so they persist across runs. Output, as curl's: the response body on stdout (or in the `-o`
 * file), wherever stdout goes, so `tollway fetch URL > out.json` saves the body; `--json` prints
 * one JSON object instead. Steps (`-v`), a line when it paid, and errors go to stderr.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fixedRate, isTollwayError, type TollwayErrorCode } from '@tollway/sdk';
import type { Command } from 'commander';
import { describeError } from '../describe-error.js';
import {
  addEvmOptions,
  type EvmFlags,
  openEvmWallet,
  parseEvmAsset,
  readExpectedCalls,
  readRate,
} from '../evm-flags.js';
import {
  closedLine,
  describeOffer,
  type FetchContext,
  formatQuote,
  paidLine,
  toJson,
  verboseLine,
} from '../fetch/output.js';
import type { Io } from '../io.js';
import {
  type Protocol,
  readAmountFlag,
  readMsatFlag,
  readPreferFlag,
  UsageError,
} from '../usage.js';

/** Exit codes of `tollway fetch`: documented in docs/reference/cli.md. */
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_OVER_BUDGET = 2;
const EXIT_PAYMENT_FAILED = 3;
const EXIT_HTTP = 4;
const EXIT_USAGE = 64;

/** Refusals of the price or the budget (exit 2); every other payment error is exit 3. */
const OVER_BUDGET: ReadonlySet<TollwayErrorCode> = new Set([
  'over_price',
  'budget_exceeded',
  'fee_too_high',
  'origin_denied',
  'payee_denied',
  'approval_denied',
  'payments_disabled',
  'payments_paused',
]);

/** Errors of the wallet itself, before any payment: reported with a pointer to `--wallet`. */
const WALLET_FAULTS: ReadonlySet<TollwayErrorCode> = new Set([
  'unauthorized',
  'backend_unavailable',
  'backend_error',
]);

interface FetchFlags extends EvmFlags {
  request?: string;
  header: string[];
  data?: string;
  output?: string;
  verbose?: boolean;
  maxCost: string;
  maxFee: string;
  pay: boolean;
  wallet?: string;
  db?: string;
  json?: boolean;
  prefer?: string;
  closeSessions?: boolean;
}

function parseHeaders(lines: readonly string[]): Headers {
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 1) throw new UsageError(`-H takes "Name: value", not "${line}"`);
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`-H "${line}" is not a valid header`);
    }
  }
  return headers;
}

function readData(data: string): Uint8Array | string {
  if (!data.startsWith('@')) return data;
  try {
    return new Uint8Array(readFileSync(data.slice(1)));
  } catch (cause) {
    throw new UsageError(`-d ${data}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** The protocols to pay by, in order: `--prefer` first; x402 only with an EVM key. */
function readPreferences(flags: FetchFlags, evm: boolean): Protocol[] {
  const available: Protocol[] = evm ? ['l402', 'mpp', 'x402'] : ['l402', 'mpp'];
  if (flags.prefer === undefined) return available;
  available.splice(2, 0, 'mpp-session');
  return readPreferFlag(
    flags.prefer,
    available,
    'give --evm-key (with --evm-asset and --usd-per-btc) to pay x402',
  );
}

function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (!isTollwayError(error)) return EXIT_HTTP;
  if (OVER_BUDGET.has(error.code)) return EXIT_OVER_BUDGET;
  if (error.code === 'invalid_connection_string') return EXIT_USAGE;
  if (error.code === 'store_error' || error.code === 'body_too_large') return EXIT_FAILED;
  return EXIT_PAYMENT_FAILED;
}

/** What to do about a failure, when the flags explain it; empty otherwise. */
function failureHint(error: unknown, context: FetchContext): string {
  if (isTollwayError(error) && WALLET_FAULTS.has(error.code)) {
    return '\ntollway fetch: the wallet could not be used: check --wallet (or TOLLWAY_WALLET)';
  }
  if (!isTollwayError(error, 'no_payable_offer')) return '';
  if (context.evm && !context.rate) {
    return '\ntollway fetch: x402 offers are refused without --usd-per-btc <rate> (needed to count token amounts against the sat budget)';
  }
  if (!context.lightning && !context.evm) {
    return '\ntollway fetch: no wallet: give --wallet <connection string> (or set TOLLWAY_WALLET), or --evm-key with --evm-asset and --usd-per-btc for x402';
  }
  return '';
}

/** The request of the flags: method, headers and body. */
function readRequest(flags: FetchFlags): RequestInit & { method: string } {
  const headers = parseHeaders(flags.header);
  const body = flags.data === undefined ? undefined : readData(flags.data);
  const method = (flags.request ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  return { method, headers, ...(body !== undefined ? { body } : {}) };
}

/** Registers `tollway fetch`. */
export function registerFetchCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  const command = program
    .command('fetch')
    .description('Fetch a URL, paying its HTTP 402 (L402, MPP or x402) within a budget, like curl.')
    .argument('<url>', 'the URL to fetch')
    .option('-X, --request <method>', 'HTTP method (default GET, or POST with -d)')
    .option(
      '-H, --header <header>',
      '"Name: value"; repeatable',
      (value: string, all: string[]) => [...all, value],
      [],
    )
    .option('-d, --data <data>', 'request body; @file reads it from a file')
    .option('-o, --output <file>', 'write the response body to a file instead of stdout')
    .option('-v, --verbose', 'print each step on stderr')
    .option(
      '--max-cost <amount>',
      'most one payment may cost: sats (100), "100 sat", "2500 msat", or "$0.01" with --usd-per-btc',
      '1000',
    )
    .option('--max-fee <amount>', 'routing-fee ceiling per payment: sats, or "2500 msat"', '10')
    .option(
      '--prefer <protocols>',
      'protocols to pay by first: l402, mpp, mpp-session, x402 (comma-separated)',
    )
    .option(
      '--close-sessions',
      "after the call, close the origin's open MPP sessions and x402 channels and collect their refunds",
    )
    .option(
      '--expect-calls <n>',
      'calls this agent expects to make to the origin: with --evm-rpc, x402 batch-settlement is paid by a channel holding that many; an MPP session is preferred to a balance token they would not use up',
    )
    .option('--no-pay', 'print the offers and what would be paid, and pay nothing')
    .option('--wallet <connection>', 'Lightning connection string (default: $TOLLWAY_WALLET)')
    .option('--db <path>', 'agent database (default: $TOLLWAY_AGENT_DB or ~/.tollway/agent.sqlite)')
    .option('--json', 'print one JSON object (status, headers, body, payment) instead of the body');
  addEvmOptions(command).action((url: string, flags: FetchFlags) => run(url, flags));

  async function run(url: string, flags: FetchFlags): Promise<void> {
    const verbose = (line: string): void => {
      if (flags.verbose) io.stderr(`${line}\n`);
    };
    const source = flags.wallet ?? process.env.TOLLWAY_WALLET;
    let context: FetchContext = {
      lightning: source !== undefined && source !== '',
      evm: false,
      rate: flags.usdPerBtc !== undefined,
      usdAssets: new Set(),
    };
    let close = async (): Promise<void> => undefined;
    try {
      const maxCost = readAmountFlag(flags.maxCost, '--max-cost');
      const maxFeeMsat = readMsatFlag(flags.maxFee, '--max-fee', 'routing fees are paid in sats');
      const init = readRequest(flags);
      if (!URL.canParse(url)) throw new UsageError(`not a URL: ${url}`);
      const evm = await openEvmWallet(flags);
      const rate = readRate(flags);
      const expectedCalls = readExpectedCalls(flags);
      if (maxCost.unit === 'usd' && rate === undefined) {
        throw new UsageError('--max-cost in dollars needs --usd-per-btc <rate> to compare prices');
      }
      const preferences = readPreferences(flags, evm !== undefined);
      context = {
        ...context,
        evm: evm !== undefined,
        usdAssets: new Set(
          flags.evmAsset.map((asset) => parseEvmAsset(asset).address.toLowerCase()),
        ),
      };
      const rates = rate === undefined ? undefined : fixedRate(rate);
      const x402 = evm !== undefined && rates !== undefined ? { wallet: evm, rates } : undefined;
      // Loaded here, so that other commands start without it. The paying fetch connects the
      // wallet when a payment needs it: a fetch answered with a saved credential loads no backend.
      const {
        createBudget,
        createPayingFetch,
        createSqliteClientStore,
        defaultAgentDbPath,
        getPayment,
      } = await import('@tollway/sdk/client');
      const store = createSqliteClientStore({ path: flags.db ?? defaultAgentDbPath() });
      close = () => store.close();
      const budget = createBudget({
        store,
        // The text as written, so that a refusal quotes the cap in the user's unit.
        limits: { perRequest: flags.maxCost, maxFee: maxFeeMsat },
        ...(rates !== undefined ? { rates } : {}),
      });
      const fetch402 = createPayingFetch({
        wallets: context.lightning ? [source ?? ''] : [],
        store,
        budget,
        maxFeeMsat,
        preferences,
        ...(x402 !== undefined ? { x402 } : {}),
        ...(expectedCalls !== undefined ? { sessions: { expectedCalls } } : {}),
        onEvent: (event) => verbose(verboseLine(event, context)),
      });
      // Sessions stay open for the next run; the wallet closes.
      close = async () => {
        await fetch402.close({ keepSessions: true });
        await store.close();
      };
      verbose(`> ${init.method} ${url}`);

      if (!flags.pay) {
        const quote = await fetch402.quote(url, init);
        io.stdout(
          flags.json === true
            ? toJson({
                ...quote,
                offers: quote.offers.map(describeOffer),
                choice: quote.choice && describeOffer(quote.choice),
              })
            : formatQuote(quote, context),
        );
        if (quote.status === 402) {
          if (quote.choice === undefined) setExitCode(EXIT_PAYMENT_FAILED);
          else if (quote.budget?.ok === false) setExitCode(EXIT_OVER_BUDGET);
        } else if (quote.status >= 400) {
          setExitCode(EXIT_HTTP);
        }
        return;
      }

      const response = await fetch402(url, init);
      verbose(`< ${response.status} ${response.statusText}`.trimEnd());
      const bytes = new Uint8Array(await response.arrayBuffer());
      const payment = getPayment(response) ?? null;
      // Sessions stay open for the next run on the agent database unless asked to close (the
      // wallets close at the end, in any case).
      const closed =
        flags.closeSessions === true ? await fetch402.close({ origin: new URL(url).origin }) : [];
      if (flags.output !== undefined) writeFileSync(flags.output, bytes);
      if (flags.json === true) {
        io.stdout(
          toJson({
            status: response.status,
            headers: Object.fromEntries(response.headers),
            ...bodyFields(bytes, flags.output),
            payment,
            ...(flags.closeSessions === true ? { closedSessions: closed } : {}),
          }),
        );
      } else {
        if (payment !== null) io.stderr(`tollway fetch: ${paidLine(payment)}\n`);
        for (const session of closed) io.stderr(`tollway fetch: ${closedLine(session)}\n`);
        if (flags.output === undefined) io.stdout(bytes);
      }
      setExitCode(response.ok ? EXIT_OK : EXIT_HTTP);
    } catch (error) {
      const code = exitCodeOf(error);
      io.stderr(`tollway fetch: ${describeError(error)}${failureHint(error, context)}\n`);
      if (flags.json === true && code !== EXIT_USAGE) {
        const details = isTollwayError(error)
          ? { code: error.code, message: error.message }
          : { code: 'network_error', message: describeError(error) };
        io.stdout(toJson({ error: details }));
      }
      setExitCode(code);
    } finally {
      await close();
    }
  }
}

/** The body as `--json` prints it: its file, its text, or base64 when it is not UTF-8. */
function bodyFields(bytes: Uint8Array, file: string | undefined): Record<string, string> {
  if (file !== undefined) return { bodyFile: file };
  try {
    return { body: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { bodyBase64: Buffer.from(bytes).toString('base64') };
  }
}
