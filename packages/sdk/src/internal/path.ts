/**
 * Path prefixes on segment boundaries, and the dot-segment check every path scope applies: shared
 * by the engine (allowlist) and the `tollway_paths` caveat.
 *
 * @internal
 */

const ESCAPE = /%([0-9A-Fa-f]{2})/g;

function decodeEscapes(text: string): string {
  return text.replace(ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** True when a segment (split on `/` and `\`, `;parameters` dropped) is `.` or `..`. */
function hasLiteralDotSegment(text: string): boolean {
  return text.split(/[\\/]/).some((segment) => {
    const name = segment.split(';', 1)[0];
    return name === '.' || name === '..';
  });
}

/**
 * True when some reading of `path` that a server may make has a `.` or `..` segment: as written,
 * percent-decoded once or twice, with `\` read as `/`, and `;parameters` dropped from segments.
 * A server may resolve such a path somewhere else than where it seems to be, so it lies under no
 * prefix.
 *
 * @internal
 * @example
 * ```ts
 * hasDotSegment('/v1/..%2Fadmin');   // true
 * hasDotSegment('/v1/.well-known');  // false
 * ```
 */
export function hasDotSegment(path: string): boolean {
  if (!path.includes('.') && !path.includes('%')) return false;
  let reading = path;
  for (let decodings = 0; decodings <= 2; decodings++) {
    if (hasLiteralDotSegment(reading)) return true;
    const decoded = decodeEscapes(reading);
    if (decoded === reading) return false;
    reading = decoded;
  }
  return false;
}

/**
 * True when `path` is `prefix` or lies below it on a segment boundary (`/v1` covers `/v1` and
 * `/v1/x`, not `/v10`; `/v1/` covers only what is below it). Dot segments are not looked at.
 *
 * @internal
 * @example
 * ```ts
 * isBelowPrefix('/v1/x', '/v1'); // true
 * ```
 */
export function isBelowPrefix(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}
