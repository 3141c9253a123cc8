/**
 * JSON Canonicalization Scheme (RFC 8785), which MPP uses for the `request` and `opaque` parameters
 * so that every implementation derives the same bytes, and so the same challenge id.
 */
import { TollwayError } from '../errors.js';
import { isJsonObject, type JsonValue } from './json.js';

/**
 * Writes `value` as canonical JSON (RFC 8785): no whitespace; object members sorted by the UTF-16
 * code units of their names; strings escaped as ECMAScript `JSON.stringify` does (only `"`, `\` and
 * control characters; `<`, `&`, U+2028 and U+2029 are left as they are); numbers in ECMAScript's
 * shortest round-trip form (`1e+21`, `1e-7`, `-0` → `0`). Throws `invalid_json` for a `bigint` (JCS
 * numbers are IEEE-754 doubles; convert deliberately) or a non-finite number.
 *
 * @example
 * ```ts
 * canonicalizeJson({ b: 1, a: [true, 'x'] }); // '{"a":[true,"x"],"b":1}'
 * ```
 */
export function canonicalizeJson(value: JsonValue): string {
  if (typeof value === 'bigint') {
    throw new TollwayError('invalid_json', 'JCS numbers are doubles; convert the bigint first');
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TollwayError('invalid_json', 'JSON cannot carry a non-finite number');
  }
  if (Array.isArray(value)) return `[${value.map(canonicalizeJson).join(',')}]`;
  if (isJsonObject(value)) {
    // The default sort compares UTF-16 code units, which is the order RFC 8785 §3.2.3 requires.
    const names = Object.keys(value).sort();
    const members = names.map(
      (name) => `${JSON.stringify(name)}:${canonicalizeJson(value[name] as JsonValue)}`,
    );
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}
