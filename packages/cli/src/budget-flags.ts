/**
 * The budget windows of the agent commands, as flags: `tollway mcp` enforces them and
 * `tollway ledger --serve` shows what they leave, so both read them alike.
 */
import type { Command } from 'commander';
import { readMsatFlag } from './usage.js';

/** `--budget-hour`, `--budget-day`, `--budget-month`, `--budget-total`, as given. */
export interface BudgetWindowFlags {
  budgetHour?: string;
  budgetDay?: string;
  budgetMonth?: string;
  budgetTotal?: string;
}

/** Rolling budget windows in msat; absent ones are not limited. */
export interface BudgetWindows {
  hour?: bigint;
  day?: bigint;
  month?: bigint;
  total?: bigint;
}

const FLAGS = [
  ['hour', 'budgetHour', '--budget-hour', 'spend limit over the last hour'],
  ['day', 'budgetDay', '--budget-day', 'spend limit over the last 24 hours'],
  ['month', 'budgetMonth', '--budget-month', 'spend limit over the last 30 days'],
  ['total', 'budgetTotal', '--budget-total', 'spend limit over all time'],
] as const;

/**
 * Registers the four window flags on `command`.
 *
 * @example
 * ```ts
 * addBudgetWindowOptions(program.command('mcp'));
 * ```
 */
export function addBudgetWindowOptions(command: Command): Command {
  for (const [, , flag, description] of FLAGS) command.option(`${flag} <sats>`, description);
  return command;
}

/**
 * The windows the flags set, in msat; an amount in dollars is a usage error saying `why`.
 *
 * @example
 * ```ts
 * readBudgetWindows({ budgetDay: '5000' }, 'no rate'); // { day: 5_000_000n }
 * ```
 */
export function readBudgetWindows(flags: BudgetWindowFlags, why: string): BudgetWindows {
  const windows: BudgetWindows = {};
  for (const [window, key, flag] of FLAGS) {
    const text = flags[key];
    if (text !== undefined) windows[window] = readMsatFlag(text, flag, why);
  }
  return windows;
}
