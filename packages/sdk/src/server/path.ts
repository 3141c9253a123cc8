/**
 * Path prefixes, matched the way the `tollway_paths` caveat matches them: on segment boundaries,
 * and never for a path with dot segments (which a server may resolve elsewhere).
 */

/** True when a segment of `path` is `.` or `..` (also percent-encoded). */
export function hasDotSegment(path: string): boolean {
  return path.split('/').some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment));
}

/**
 * True when `path` is `prefix` or lies below it on a segment boundary (`/v1` covers `/v1` and
 * `/v1/x`, not `/v10`; `/v1/` covers only what is below it), and has no dot segments.
 *
 * @example
 * ```ts
 * pathWithin('/health/live', '/health'); // true
 * pathWithin('/healthz', '/health');     // false
 * ```
 */
export function pathWithin(path: string, prefix: string): boolean {
  if (hasDotSegment(path)) return false;
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}
