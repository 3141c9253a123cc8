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
