/**
 * What the demos of `tollway dev` share: numbered steps printed as they happen, a failure that
 * stops at a step, and how a failure is told.
 */
import { isTollwayError } from '@tollway/sdk';

/** Routing-fee ceiling of the demos' payments (the dev node charges none). */
export const MAX_FEE_MSAT = 10_000n;
const INDENT = '       ';

/** Thrown inside a demo to stop at a step; never escapes it. */
export class StepFailure extends Error {}

/** A failure as the demo prints it. */
export function describe(error: unknown): string {
  if (error instanceof StepFailure) return error.message;
  if (isTollwayError(error)) return `${error.code}: ${error.message}`;
  if (!(error instanceof Error)) return String(error);
  // fetch() reports a refused connection as "fetch failed" with the reason in `cause`.
  return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message;
}

/**
 * Numbered steps (`next`) and their indented detail lines (`more`), printed through `print`;
 * `step` is the current step's number.
 */
export function narrator(print: (line: string) => void) {
  let step = 0;
  return {
    get step(): number {
      return step;
    },
    next(title: string, detail: string): void {
      step += 1;
      print(`  ${step}. ${title.padEnd(22)} ${detail}`);
    },
    more(line: string): void {
      print(`${INDENT}${line}`);
    },
  };
}

/** The msat of a receipt header (`5000 msat`). */
export function msatOf(response: Response, header: string): bigint {
  const match = /^(\d+) msat$/.exec(response.headers.get(header) ?? '');
  if (match?.[1] === undefined) throw new StepFailure(`the answer has no ${header} in msat`);
  return BigInt(match[1]);
}
