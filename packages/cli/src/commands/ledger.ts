/**
 * `tollway ledger`: prints the agent's ledger from its SQLite file (`--db`, else
 * `$TOLLWAY_AGENT_DB`, else `~/.tollway/agent.sqlite`) as a table with totals per origin, as JSON,
 * or as CSV, newest entry first; with `--by`, its spend grouped by origin, account, agent, task,
 * model or any tag; with `--serve`, a local web page of it for the agent's owner (spend over
 * time, budget left, recent entries, and a switch that pauses every payment).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { formatMsat, isTollwayError } from '@tollway/sdk';
import type {
  ClientStore,
  LedgerEntry,
  LedgerGrouping,
  LedgerKind,
  LedgerQuery,
} from '@tollway/sdk/client';
import type { Command } from 'commander';
import {
  addBudgetWindowOptions,
  type BudgetWindowFlags,
  readBudgetWindows,
} from '../budget-flags.js';
import type { Io } from '../io.js';
import { GROUPINGS, parseGrouping, type SpendRow, spendRow } from '../ledger-spend.js';
import { asPortInUse } from '../port-in-use.js';
import { nextSignal } from '../signals.js';
import { UsageError } from '../usage.js';

/** Exit codes of `tollway ledger`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

const URL_WIDTH = 48;
const STATUSES: ReadonlyArray<LedgerEntry['status']> = ['pending', 'succeeded', 'failed'];
const KINDS: readonly LedgerKind[] = ['purchase', 'draw', 'release', 'refund'];
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const CSV_COLUMNS = [
  'id',
  'time',
  'origin',
  'url',
  'protocol',
  'amount',
  'unit',
  'amount_msat',
  'fee_msat',
  'rate',
  'status',
  'reference',
  'proof',
  'payee',
  'tags',
  'kind',
  'account',
] as const;

/** The address and port of `--serve` without `--host` and `--port`. */
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 3403;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

interface LedgerFlags extends BudgetWindowFlags {
  db?: string;
  serve?: boolean;
  host?: string;
  port?: string;
  token?: string;
  json?: boolean;
  csv?: boolean;
  since?: string;
  origin?: string;
  status?: string;
  tag?: string;
  kind?: string;
  by?: string;
  limit?: string;
}

/**
 * Reads `--since`: a duration back from `now` (`30s`, `15m`, `1h`, `7d`) or an ISO 8601 date or
 * date-time (`2026-03-14`, `2026-03-14T10:00:00Z`).
 */
function parseSince(text: string, now: number): number {
  const relative = /^(\d+)([smhd])$/.exec(text.trim());
  if (relative !== null) return now - Number(relative[1]) * (UNIT_MS[relative[2] ?? ''] ?? 0);
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new UsageError(`--since takes a duration (30m, 1h, 7d) or an ISO date, not "${text}"`);
  }
  return time;
}

function toQuery(flags: LedgerFlags, now: number): LedgerQuery {
  const query: LedgerQuery = {};
  if (flags.since !== undefined) query.since = parseSince(flags.since, now);
  if (flags.origin !== undefined) query.origin = flags.origin;
  if (flags.status !== undefined) {
    const status = STATUSES.find((s) => s === flags.status);
    if (status === undefined) throw new UsageError(`--status is one of ${STATUSES.join(', ')}`);
    query.status = status;
  }
  if (flags.kind !== undefined) {
    const kind = KINDS.find((k) => k === flags.kind);
    if (kind === undefined) throw new UsageError(`--kind is one of ${KINDS.join(', ')}`);
    query.kind = kind;
  }
  if (flags.tag !== undefined) {
    const equals = flags.tag.indexOf('=');
    if (equals < 1) throw new UsageError('--tag takes key=value');
    query.tag = { key: flags.tag.slice(0, equals), value: flags.tag.slice(equals + 1) };
  }
  if (flags.limit !== undefined) {
    if (!/^\d+$/.test(flags.limit)) throw new UsageError('--limit takes a whole number');
    query.limit = Number(flags.limit);
  }
  return query;
}

/** `2026-03-14 10:00:00Z`. */
function formatTime(time: number): string {
  return new Date(time)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** Left-aligned columns separated by two spaces, no trailing spaces. */
function formatTable(rows: ReadonlyArray<readonly string[]>): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** JSON with bigints as decimal strings. */
function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

/** One RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function toCsv(entries: readonly LedgerEntry[]): string {
  const rows = entries.map((e) => [
    e.id,
    new Date(e.time).toISOString(),
    e.origin,
    e.url,
    e.protocol,
    e.amount.toString(),
    e.unit,
    e.amountMsat.toString(),
    e.feeMsat.toString(),
    e.rate ?? '',
    e.status,
    e.reference,
    e.proof ?? '',
    e.payee ?? '',
    JSON.stringify(e.tags),
    e.kind,
    e.account ?? '',
  ]);
  return [CSV_COLUMNS, ...rows].map((row) => `${row.map(csvField).join(',')}\r\n`).join('');
}

/** The table, then the totals of succeeded payments per origin (over every match, not only `--limit`). */
function formatReport(
  entries: readonly LedgerEntry[],
  totals: ReadonlyArray<{ origin: string; count: number; amountMsat: bigint; feeMsat: bigint }>,
  filtered: boolean,
): string {
  if (entries.length === 0) return filtered ? 'no payments match\n' : 'no payments yet\n';
  const table = formatTable([
    ['TIME', 'KIND', 'ORIGIN', 'PROTOCOL', 'AMOUNT', 'FEE', 'STATUS', 'URL'],
    ...entries.map((e) => [
      formatTime(e.time),
      e.kind,
      e.origin,
      e.protocol,
      formatMsat(e.amountMsat),
      formatMsat(e.feeMsat),
      e.status,
      truncate(e.url, URL_WIDTH),
    ]),
  ]);
  if (totals.length === 0) return table;
  const sums = formatTable([
    ['ORIGIN', 'PAYMENTS', 'AMOUNT', 'FEE'],
    ...totals.map((t) => [
      t.origin,
      String(t.count),
      formatMsat(t.amountMsat),
      formatMsat(t.feeMsat),
    ]),
  ]);
  return `${table}\nTotals of succeeded payments per origin:\n${sums}`;
}

/** The spend table of `--by`: one row per group. */
function formatSpend(rows: readonly SpendRow[], by: string): string {
  if (rows.length === 0) return 'no payments match\n';
  const header = by.replace(/^tag:/, '').toUpperCase();
  return formatTable([
    [header, 'PAID', 'FEES', 'REFUNDED', 'NET', 'CALLS', 'CHARGED', 'UNSETTLED', 'RELEASED'],
    ...rows.map((r) => [
      r.key === '' ? '(none)' : r.key,
      `${formatMsat(r.paidMsat)} (${r.purchases})`,
      formatMsat(r.feeMsat),
      formatMsat(r.refundedMsat),
      formatMsat(r.netMsat),
      String(r.calls),
      formatMsat(r.chargedMsat),
      formatMsat(r.unsettledMsat),
      String(r.released),
    ]),
  ]);
}

/** `--by`'s grouping, when given; throws a usage error for one it does not name. */
function groupingOf(flags: LedgerFlags): LedgerGrouping | undefined {
  if (flags.by === undefined) return undefined;
  if (flags.csv) throw new UsageError('--by prints a table or --json');
  const grouping = parseGrouping(flags.by);
  if (grouping === undefined) {
    throw new UsageError(`--by is one of ${GROUPINGS.join(', ')}, or tag:<key>`);
  }
  return grouping;
}

/** Prints what `flags` ask for, from `store`. */
async function print(
  io: Io,
  store: ClientStore,
  flags: LedgerFlags,
  query: LedgerQuery,
): Promise<void> {
  const grouping = groupingOf(flags);
  if (grouping !== undefined) {
    const { limit: _limit, ...all } = query;
    const rows = (await store.summary(all, grouping)).map(spendRow);
    io.stdout(flags.json ? toJson(rows) : formatSpend(rows, flags.by ?? ''));
    return;
  }
  const entries = await store.list(query);
  if (flags.json) io.stdout(toJson(entries));
  else if (flags.csv) io.stdout(toCsv(entries));
  else io.stdout(formatReport(entries, await store.totals(query), Object.keys(query).length > 0));
}

/** The flags that only print, which `--serve` does not take. */
const PRINT_FLAGS = [
  'json',
  'csv',
  'since',
  'origin',
  'status',
  'tag',
  'kind',
  'by',
  'limit',
] as const;
/** The flags of `--serve` alone. */
const SERVE_FLAGS = [
  'host',
  'port',
  'token',
  'budgetHour',
  'budgetDay',
  'budgetMonth',
  'budgetTotal',
] as const;

/** `--` and the kebab-case of a flag's key. */
function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Throws a usage error when `--serve` is mixed with printing flags, or its flags come without it. */
function assertServeFlags(flags: LedgerFlags): void {
  const [mixed, stray] = flags.serve
    ? [PRINT_FLAGS.find((key) => flags[key] !== undefined), undefined]
    : [undefined, SERVE_FLAGS.find((key) => flags[key] !== undefined)];
  if (mixed !== undefined)
    throw new UsageError(`--serve shows the page; ${flagName(mixed)} prints`);
  if (stray !== undefined) throw new UsageError(`${flagName(stray)} goes with --serve`);
}

function readPort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(port <= 65535)) throw new UsageError('--port takes a whole number up to 65535');
  return port;
}

/** Serves the ledger view of the store at `path` until SIGINT or SIGTERM. */
async function serve(io: Io, path: string, flags: LedgerFlags): Promise<void> {
  const windows = readBudgetWindows(flags, 'the agent budgets count sats');
  const host = flags.host ?? DEFAULT_HOST;
  const port = readPort(flags.port);
  const token =
    flags.token ?? (process.env.TOLLWAY_LEDGER_TOKEN || randomBytes(24).toString('base64url'));
  // Loaded when the command runs, so that other commands start without them.
  const [{ createBudget, createSqliteClientStore }, { startLedgerView }] = await Promise.all([
    import('@tollway/sdk/client'),
    import('../ledger-view/server.js'),
  ]);
  const store = createSqliteClientStore({ path });
  try {
    // The budget of tollway fetch and tollway mcp: the default path, the windows they are given.
    const budget = createBudget({ store, limits: windows });
    const view = await startLedgerView({
      store,
      budget,
      host,
      port,
      token,
      logError: (error) => io.stderr(`tollway ledger: ${String(error)}\n`),
    });
    io.stderr(`tollway ledger: the ledger view of ${path} is at ${view.url}\n`);
    if (!LOOPBACK.has(host)) {
      io.stderr(
        `tollway ledger: listening on ${host}, beyond this machine: whoever has the link can see the ledger and pause payments\n`,
      );
    }
    io.stderr(`tollway ledger: open ${view.signInUrl} (it signs the browser in); Ctrl-C stops\n`);
    await nextSignal(['SIGINT', 'SIGTERM']);
    await view.close();
  } finally {
    await store.close();
  }
}

/** Registers `tollway ledger`. */
export function registerLedgerCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  const command = program
    .command('ledger')
    .description(
      "Print the agent's ledger (payments, what calls were charged, refunds): a table with totals per origin, JSON or CSV; or its spend grouped with --by.",
    )
    .option('--db <path>', `agent database (default: $TOLLWAY_AGENT_DB or ~/.tollway/agent.sqlite)`)
    .option('--json', 'print a JSON array (amounts as decimal strings)')
    .option('--csv', 'print CSV (RFC 4180) with a header row')
    .option('--since <when>', 'only payments since a duration ago (30m, 1h, 7d) or an ISO date')
    .option('--origin <origin>', 'only payments to this origin, e.g. https://api.example.com')
    .option('--status <status>', 'only pending, succeeded or failed payments')
    .option('--tag <key=value>', 'only entries with this tag, e.g. task=42')
    .option('--kind <kind>', 'only purchase, draw, release or refund entries')
    .option(
      '--by <grouping>',
      'spend grouped by origin, account, agent, task, model, or tag:<key> (with --json: JSON)',
    )
    .option('--limit <n>', 'at most n entries (the newest)')
    .option(
      '--serve',
      "serve a web page of the ledger for the agent's owner: spend over time, budget left, a pause switch",
    )
    .option('--host <address>', `with --serve: the address to listen on (default ${DEFAULT_HOST})`)
    .option('--port <port>', `with --serve: the port (default ${DEFAULT_PORT}; 0: any free one)`)
    .option(
      '--token <token>',
      'with --serve: the secret of the sign-in link (default: $TOLLWAY_LEDGER_TOKEN, else a new one each run)',
    );
  addBudgetWindowOptions(command).action(async (flags: LedgerFlags) => {
    try {
      assertServeFlags(flags);
      if (flags.json && flags.csv) throw new UsageError('choose one of --json and --csv');
      groupingOf(flags);
      const query = toQuery(flags, Date.now());
      // Loaded when the command runs, so that other commands start without the client.
      const { createSqliteClientStore, defaultAgentDbPath } = await import('@tollway/sdk/client');
      const path = flags.db ?? defaultAgentDbPath();
      if (flags.serve) {
        await serve(io, path, flags);
        return;
      }
      if (!existsSync(path)) {
        io.stdout(flags.json ? '[]\n' : flags.csv ? toCsv([]) : 'no payments yet\n');
        return;
      }
      const store = createSqliteClientStore({ path });
      try {
        await print(io, store, flags, query);
      } finally {
        await store.close();
      }
    } catch (error) {
      if (error instanceof UsageError) {
        io.stderr(`tollway ledger: ${error.message}\n`);
        setExitCode(EXIT_USAGE);
        return;
      }
      const failure = asPortInUse(error, 'stop it, or give --port another port');
      io.stderr(
        `tollway ledger: ${isTollwayError(failure) ? `${failure.code}: ${failure.message}` : String(failure)}\n`,
      );
      setExitCode(EXIT_FAILED);
    }
  });
}
