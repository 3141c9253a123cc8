/**
 * Spend of an agent's ledger, grouped: the groupings `tollway ledger --by` and the MCP `payments`
 * tool accept, and what one group's row says (money out, money back, what its calls were
 * charged).
 */
import type { LedgerGrouping, LedgerSummary } from '@tollway/sdk/client';

/** The groupings by name: `origin`, `account`, the tags `agent`, `task`, `model`, or `tag:<key>`. */
export const GROUPINGS = ['origin', 'account', 'agent', 'task', 'model'] as const;

/**
 * The ledger grouping a name asks for, or undefined when it names none.
 *
 * @example
 * ```ts
 * parseGrouping('task'); // { tag: 'task' }
 * parseGrouping('tag:team'); // { tag: 'team' }
 * ```
 */
export function parseGrouping(text: string): LedgerGrouping | undefined {
  if (text === 'origin' || text === 'account') return text;
  if (text === 'agent' || text === 'task' || text === 'model') return { tag: text };
  const tag = /^tag:([\w.-]{1,64})$/.exec(text)?.[1];
  return tag === undefined ? undefined : { tag };
}

/** One group's spend, msat. */
export interface SpendRow {
  key: string;
  /** Succeeded purchases: their amounts, and routing fees apart. */
  purchases: number;
  paidMsat: bigint;
  feeMsat: bigint;
  refundedMsat: bigint;
  /** What left the wallet for good: paid + fees − refunded. */
  netMsat: bigint;
  /** Calls charged, and what their receipts said they cost. */
  calls: number;
  chargedMsat: bigint;
  /** Metered calls whose receipt told only what they held: at most this much. */
  unsettledMsat: bigint;
  /** Calls charged nothing. */
  released: number;
}

/**
 * The row of one summary group.
 *
 * @example
 * ```ts
 * (await store.summary({}, { tag: 'task' })).map(spendRow);
 * ```
 */
export function spendRow(summary: LedgerSummary): SpendRow {
  const { purchases, draws, unsettledDraws, refunds } = summary;
  return {
    key: summary.key,
    purchases: purchases.count,
    paidMsat: purchases.amountMsat,
    feeMsat: purchases.feeMsat,
    refundedMsat: refunds.amountMsat,
    netMsat: purchases.amountMsat + purchases.feeMsat - refunds.amountMsat,
    calls: draws.count + unsettledDraws.count,
    chargedMsat: draws.amountMsat,
    unsettledMsat: unsettledDraws.amountMsat,
    released: summary.releases,
  };
}
