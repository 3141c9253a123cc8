/**
 * The one check that an `unknown` from `JSON.parse` is an object whose members can be read.
 * Internal: not exported from the package.
 */

/** True for an object that is neither `null` nor an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
