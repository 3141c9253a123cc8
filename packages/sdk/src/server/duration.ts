/**
 * Lengths of time in paywall and route options: whole seconds, or text such as `'90s'`, `'15m'`,
 * `'1h'`, `'7d'`.
 */
import { TollwayError } from '../errors.js';

/** A length of time: whole seconds, or a whole number followed by `s`, `m`, `h` or `d`. */
export type Duration = number | string;

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const DURATION = /^(\d{1,9})\s*([smhd])$/i;
/** Ten years: longer durations are almost certainly a mistake (milliseconds given as seconds). */
const MAX_SECONDS = 10 * 365 * 86_400;

/**
 * Reads a {@link Duration} as whole seconds. Throws `invalid_config` (naming `what`) unless it is a
 * positive whole number of seconds, at most ten years.
 *
 * @example
 * ```ts
 * parseDuration('1h', 'validFor'); // 3600
 * parseDuration(90, 'validFor');   // 90
 * ```
 */
export function parseDuration(value: Duration, what: string): number {
  let seconds: number | undefined;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string') {
    const match = DURATION.exec(value.trim());
    const unit = SECONDS_PER_UNIT[match?.[2]?.toLowerCase() ?? ''];
    if (match !== null && unit !== undefined) seconds = Number(match[1]) * unit;
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new TollwayError(
      'invalid_config',
      `${what} must be a positive whole number of seconds or text such as '15m', '1h', '7d'`,
    );
  }
  if (seconds > MAX_SECONDS) {
    throw new TollwayError('invalid_config', `${what} is longer than ten years`);
  }
  return seconds;
}
