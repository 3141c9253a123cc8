/**
 * Path prefixes, matched the way the `tollway_paths` caveat matches them: on segment boundaries,
 * and never for a path some server could read as having dot segments (which it may resolve
 * elsewhere).
 */
import { hasDotSegment, isBelowPrefix } from '../internal/path.js';

export { hasDotSegment };

/**
 * True when `path` is `prefix` or lies below it on a segment boundary (`/v1` covers `/v1` and
 * `/v1/x`, not `/v10`; `/v1/` covers only what is below it), and has no dot segments in any
 * reading (see `hasDotSegment`).
 *
 * @example
 * ```ts
 * pathWithin('/health/live', '/health'); // true
 * pathWithin('/healthz', '/health');     // false
 * ```
 */
export function pathWithin(path: string, prefix: string): boolean {
  return !hasDotSegment(path) && isBelowPrefix(path, prefix);
}
