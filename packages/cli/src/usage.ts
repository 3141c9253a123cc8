/**
 * What every command reads the same way: usage mistakes (printed as they are, exit 64) and amount
 * flags in the one amount grammar of `@tollway/sdk` (docs/reference/amounts.md): `100` (sats),
 * `'100 sat'`, `'2500 msat'`, `'0.5 sat'`, `'$0.01'`.
 */
import { type Amount, isTollwayError, parseAmount } from '@tollway/sdk';

/** A usage mistake: printed as is, exit 64. */
export class UsageError extends Error {}

/** Reads an amount flag; a malformed one is a {@link UsageError} naming the flag. */
export function readAmountFlag(text: string, flag: string): Amount {
  try {
    return parseAmount(text);
  } catch (error) {
    if (!isTollwayError(error, 'invalid_amount')) throw error;
    throw new UsageError(
      `${flag}: ${error.message}; write sats ("100"), "100 sat", "2500 msat" or "$0.01" (docs/reference/amounts.md)`,
    );
  }
}

/** Reads a Lightning amount flag, in msat; dollars are a {@link UsageError} saying `why` not. */
export function readMsatFlag(text: string, flag: string, why: string): bigint {
  const amount = readAmountFlag(text, flag);
  if (amount.unit !== 'msat') throw new UsageError(`${flag} takes sats, not dollars: ${why}`);
  return amount.msat;
}

/** The protocols a paying command knows, in its default order. */
export const PROTOCOLS = ['l402', 'mpp', 'mpp-session', 'x402'] as const;

/** Paid only when `--prefer` names it: a session's deposit is more than one call costs. */
const NAMED_ONLY: readonly Protocol[] = ['mpp-session'];

/** One of {@link PROTOCOLS}. */
export type Protocol = (typeof PROTOCOLS)[number];

/**
 * Reads `--prefer`: protocols to pay by first, comma-separated (`x402`, `mpp,l402`,
 * `mpp-session`). The result is every protocol of `available`, those named first in the order
 * given, the others after them in their default order — but `mpp-session` only when named. A
 * protocol outside `available` is a {@link UsageError} saying `why`.
 */
export function readPreferFlag<P extends Protocol>(
  text: string,
  available: readonly P[],
  why: string,
): P[] {
  const named = text
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '');
  const wanted: P[] = [];
  for (const name of named) {
    if (!PROTOCOLS.some((p) => p === name)) {
      throw new UsageError(
        `--prefer takes ${PROTOCOLS.join(', ')} (comma-separated), not "${name}"`,
      );
    }
    const protocol = available.find((p) => p === name);
    if (protocol === undefined) throw new UsageError(`--prefer ${name}: ${why}`);
    if (!wanted.includes(protocol)) wanted.push(protocol);
  }
  if (wanted.length === 0) throw new UsageError(`--prefer takes ${PROTOCOLS.join(', ')}`);
  return [...wanted, ...available.filter((p) => !wanted.includes(p) && !NAMED_ONLY.includes(p))];
}
