/**
 * An error as a command prints it: a Tollway error's code and message, another error's message
 * (with its cause's), anything else as text.
 */
import { isTollwayError } from '@tollway/sdk';

/**
 * @example
 * ```ts
 * io.stderr(`tollway fetch: ${describeError(error)}\n`); // 'tollway fetch: payment_failed: …'
 * ```
 */
export function describeError(error: unknown): string {
  if (isTollwayError(error)) return `${error.code}: ${error.message}`;
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
