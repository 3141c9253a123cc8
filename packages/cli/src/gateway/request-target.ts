/**
 * The request target as the gateway decides on it and forwards it: one canonical path, so that the
 * service match, the allowlist, a token's path scope and the price are decided on exactly the path
 * the upstream receives.
 *
 * Upstreams read paths differently: some decode `%2F` or `%5C` into separators before routing, some
 * decode twice, Java servers drop `;parameters` from segments, some merge `//`, some resolve `..`.
 * A path that such a reading would move into another service or out of a token's scope must not
 * pass. So the gateway normalises what all readings agree on (percent-encoded unreserved
 * characters are decoded, hex escapes upper-cased, repeated slashes merged) and refuses the rest:
 * dot segments (also encoded or double encoded), encoded slashes and backslashes, raw backslashes,
 * `;` (also encoded), encoded control characters, double encoding (`%25` before two hex digits), malformed escapes
 * and fragments. An absolute-form target (`GET http://host/path`) is read as its path, its
 * authority replacing the Host header (RFC 9112 §3.2.2); the asterisk form is refused.
 */

/** A target the gateway serves, or why it refuses it. */
export type RequestTarget =
  | {
      ok: true;
      /** The canonical path. */
      path: string;
      /** `?` and the query as received, or `''`. */
      query: string;
      /** The authority of an absolute-form target, which replaces the Host header. */
      authority?: string;
    }
  | { ok: false; detail: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

function refused(detail: string): RequestTarget {
  return { ok: false, detail: `The request path is ambiguous: ${detail}.` };
}

/** Why an escape (`%` and two hex digits, upper case) must not stay in a path, or undefined. */
function refusedEscape(hex: string): string | undefined {
  const byte = Number.parseInt(hex, 16);
  if (hex === '2F' || hex === '5C') return 'an encoded slash or backslash';
  if (hex === '3B') return 'an encoded `;`';
  if (byte < 0x20 || byte === 0x7f) return 'an encoded control character';
  return undefined;
}

/** `%25` before two hex digits, in the normalised path: a second decoding makes an escape. */
const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;

/**
 * The canonical form of a path (see the module comment), or why it is refused.
 *
 * @example
 * ```ts
 * normalizePath('/v1//%7Euser/a%2a'); // { ok: true, path: '/v1/~user/a%2A' }
 * normalizePath('/paid/..%2Ffree');    // { ok: false, detail: '…encoded slash…' }
 * ```
 */
export function normalizePath(
  raw: string,
): { ok: true; path: string } | { ok: false; detail: string } {
  if (!/[%\\;.#]|\/\//.test(raw)) return { ok: true, path: raw };
  let path = '';
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i] ?? '';
    if (char === '\\') return refused('a backslash');
    if (char === ';') return refused('a `;` path parameter');
    if (char === '#') return refused('a fragment');
    if (char === '/' && path.endsWith('/')) continue;
    if (char !== '%') {
      path += char;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!HEX_PAIR.test(hex)) return refused('a malformed percent escape');
    const decoded = String.fromCharCode(Number.parseInt(hex, 16));
    i += 2;
    if (UNRESERVED.test(decoded)) {
      path += decoded;
      continue;
    }
    const reason = refusedEscape(hex.toUpperCase());
    if (reason !== undefined) return refused(reason);
    path += `%${hex.toUpperCase()}`;
  }
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    return refused('a `.` or `..` segment');
  }
  // Checked on the result: `%25` followed by `2%65` becomes `%252e` once `%65` is decoded.
  if (DOUBLE_ENCODED.test(path)) return refused('a double-encoded character');
  return { ok: true, path };
}

/**
 * Reads a request target (`req.url`): origin form or absolute form, normalised as the module
 * comment says.
 *
 * @example
 * ```ts
 * readRequestTarget('http://api.example/v1/x?y=1'); // { ok: true, path: '/v1/x', query: '?y=1', authority: 'api.example' }
 * ```
 */
export function readRequestTarget(target: string): RequestTarget {
  let rest = target;
  let authority: string | undefined;
  if (!target.startsWith('/')) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) return refused('only origin-form and absolute-form targets are served');
    authority = absolute[1] ?? '';
    if (authority === '' || authority.includes('@'))
      return refused('an absolute-form target needs a plain host');
    rest = absolute[2] || '/';
    if (rest.startsWith('?')) rest = `/${rest}`;
  }
  const question = rest.indexOf('?');
  const normalized = normalizePath(question < 0 ? rest : rest.slice(0, question));
  if (!normalized.ok) return normalized;
  const query = question < 0 ? '' : rest.slice(question);
  if (query.includes('#')) return refused('a fragment');
  return {
    ok: true,
    path: normalized.path,
    query,
    ...(authority === undefined ? {} : { authority: authority.toLowerCase() }),
  };
}
