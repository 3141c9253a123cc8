/**
 * HTTP authentication header lists (RFC 9110 §11): `WWW-Authenticate` challenge lists parsed
 * leniently and formatted strictly, and `Authorization` values split into credentials.
 * Internal: the L402 and MPP modules build on it.
 *
 * Parsing rules, in the order a reader meets them:
 * - Several header lines may be passed as an array; they are joined with `", "`, as the Fetch
 *   standard does, so one comma-joined string and separate lines parse alike.
 * - A list element that is `token [BWS] "=" …` is a parameter of the challenge before it; any other
 *   token starts a new challenge. A comma between elements may be missing or followed by no space;
 *   empty elements (`, ,`) are skipped.
 * - Scheme names keep their spelling in `scheme` and are compared through `schemeLower`. Parameter
 *   names are lower-cased. When a name repeats within one challenge the first value wins, so an
 *   element on the path cannot override a value the origin set by appending its own.
 * - Values are a quoted-string (quoted-pairs unescaped; commas, `=` and scheme names inside are
 *   data) or a bare value, read up to the next comma, space or quote. Bare values are accepted
 *   beyond RFC 9110's token syntax because servers in the wild send unquoted base64 (`/`, `=`).
 * - A challenge with a syntax error (a stray character where a name belongs, an unterminated
 *   quoted-string) is dropped, and reading resumes at the next comma outside quotes; parameters
 *   that follow still belong to the dropped challenge, so they cannot leak into another one.
 *
 * Work is linear in the input: every character is visited a bounded number of times.
 */
import { TollwayError } from '../errors.js';

/** The longest header text {@link parseChallenges} and {@link parseCredentials} read (16 KiB). */
export const MAX_AUTH_HEADER_LENGTH = 16_384;

/** The most list elements (challenges plus parameters, or credential parts) read from one header. */
export const MAX_AUTH_HEADER_ELEMENTS = 256;

/** One challenge of a `WWW-Authenticate` list. */
export interface AuthChallenge {
  /** The scheme as written. */
  scheme: string;
  /** The scheme lower-cased; compare on this. */
  schemeLower: string;
  /** Parameters by lower-cased name (first occurrence wins); a null-prototype object. */
  params: Readonly<Record<string, string>>;
  /** The token68 form (`Scheme abc==`), when the challenge uses it instead of parameters. */
  token68?: string;
}

/** One credential of an `Authorization` value. */
export interface AuthCredential {
  /** The scheme as written. */
  scheme: string;
  /** The scheme lower-cased; compare on this. */
  schemeLower: string;
  /**
   * What follows the scheme, trimmed; list elements that continue it (such as the discharge
   * macaroons of `L402 a,b:preimage`) are re-joined with `,`.
   */
  rest: string;
}

const SPACE = 0x20;
const TAB = 0x09;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;

/** RFC 9110 tchar: ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;
const SCHEME_THEN_SPACE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]+/;
/** What a quoted-string may carry: HTAB, SP, VCHAR and obs-text. */
const QUOTABLE = /^[\t\x20-\x7e\x80-\xff]*$/;

function invalidChallenge(message: string): TollwayError {
  return new TollwayError('invalid_challenge', message);
}

function isTchar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

function isSpace(code: number): boolean {
  return code === SPACE || code === TAB;
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

function tokenEnd(text: string, i: number): number {
  while (i < text.length && isTchar(text.charCodeAt(i))) i++;
  return i;
}

/** Index just past the quoted-string that starts at `i` (a `"`), or -1 when it never ends. */
function quotedEnd(text: string, i: number): number {
  for (let k = i + 1; k < text.length; k++) {
    const code = text.charCodeAt(k);
    if (code === QUOTE) return k + 1;
    if (code === BACKSLASH) k++;
  }
  return -1;
}

function unquote(text: string, start: number, end: number): string {
  let out = '';
  let run = start + 1;
  for (let k = start + 1; k < end - 1; k++) {
    if (text.charCodeAt(k) === BACKSLASH) {
      out += text.slice(run, k) + text.charAt(k + 1);
      k++;
      run = k + 1;
    }
  }
  return out + text.slice(run, end - 1);
}

/** Index of the next comma outside a quoted-string, or the end of the text. */
function nextComma(text: string, i: number): number {
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === COMMA) return i;
    if (code === QUOTE) {
      const end = quotedEnd(text, i);
      if (end < 0) return text.length;
      i = end;
    } else {
      i++;
    }
  }
  return text.length;
}

/** Joins header lines as Fetch does, refusing text longer than {@link MAX_AUTH_HEADER_LENGTH}. */
function joinLines(
  value: string | readonly string[],
  code: 'invalid_challenge' | 'invalid_credential',
): string {
  const text = typeof value === 'string' ? value : value.join(', ');
  if (text.length > MAX_AUTH_HEADER_LENGTH) {
    throw new TollwayError(code, `header is longer than ${MAX_AUTH_HEADER_LENGTH} characters`);
  }
  return text;
}

interface Draft {
  challenge: AuthChallenge;
  params: Record<string, string>;
  broken: boolean;
}

/**
 * Parses a `WWW-Authenticate` value (or several lines) into its challenges, in order. Challenges
 * with a syntax error are dropped (see the module notes); throws `invalid_challenge` only when the
 * text is longer than {@link MAX_AUTH_HEADER_LENGTH} or has more than
 * {@link MAX_AUTH_HEADER_ELEMENTS} elements.
 *
 * @example
 * ```ts
 * parseChallenges('Basic realm="x", L402 macaroon="AgE…", invoice="lnbc…"');
 * // [{ scheme: 'Basic', … }, { scheme: 'L402', schemeLower: 'l402', params: { macaroon, invoice } }]
 * ```
 */
export function parseChallenges(value: string | readonly string[]): AuthChallenge[] {
  const text = joinLines(value, 'invalid_challenge');
  const out: AuthChallenge[] = [];
  let draft: Draft | undefined;
  let elements = 0;
  const finish = (): void => {
    if (draft !== undefined && !draft.broken) out.push(draft.challenge);
    draft = undefined;
  };
  const fail = (at: number): number => {
    if (draft !== undefined) draft.broken = true;
    return nextComma(text, at);
  };

  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === COMMA || isSpace(code)) {
      i++;
      continue;
    }
    if (++elements > MAX_AUTH_HEADER_ELEMENTS) {
      throw invalidChallenge(`more than ${MAX_AUTH_HEADER_ELEMENTS} challenge list elements`);
    }
    const nameStart = i;
    const nameEnd = tokenEnd(text, i);
    if (nameEnd === nameStart) {
      i = fail(i);
      continue;
    }
    const afterName = skipSpaces(text, nameEnd);

    if (text.charCodeAt(afterName) === EQUALS) {
      // An auth-param of the current challenge.
      if (draft === undefined) {
        i = nextComma(text, i);
        continue;
      }
      const valueStart = skipSpaces(text, afterName + 1);
      let valueText: string;
      if (text.charCodeAt(valueStart) === QUOTE) {
        const end = quotedEnd(text, valueStart);
        if (end < 0) {
          draft.broken = true;
          break;
        }
        valueText = unquote(text, valueStart, end);
        i = end;
      } else {
        let end = valueStart;
        while (end < text.length) {
          const c = text.charCodeAt(end);
          if (c === COMMA || c === QUOTE || isSpace(c)) break;
          end++;
        }
        valueText = text.slice(valueStart, end);
        i = end;
      }
      const key = text.slice(nameStart, nameEnd).toLowerCase();
      if (!(key in draft.params)) draft.params[key] = valueText;
      continue;
    }

    // A new challenge: `scheme [ 1*SP ( token68 / #auth-param ) ]`.
    finish();
    const scheme = text.slice(nameStart, nameEnd);
    const params: Record<string, string> = Object.create(null);
    draft = {
      challenge: { scheme, schemeLower: scheme.toLowerCase(), params },
      params,
      broken: false,
    };
    i = afterName;
    if (afterName > nameEnd) {
      TOKEN68.lastIndex = afterName;
      if (TOKEN68.test(text)) {
        const after = skipSpaces(text, TOKEN68.lastIndex);
        if (after === text.length || text.charCodeAt(after) === COMMA) {
          draft.challenge.token68 = text.slice(afterName, TOKEN68.lastIndex);
          i = after;
        }
      }
    }
  }
  finish();
  return out;
}

/**
 * Formats one challenge: `scheme name="value", …` with every value a quoted-string, `"` and `\`
 * escaped as quoted-pairs (RFC 9110 §5.6.4), parameters in the object's order, `undefined` values
 * left out. Throws `invalid_challenge` when the scheme or a name is not a token, or a value holds a
 * character a quoted-string cannot carry (a control character other than HTAB, so CR and LF too, or
 * a code point above U+00FF), so a value can never split the header.
 *
 * @example
 * ```ts
 * formatChallenge('Payment', { id: 'x', realm: 'say "hi"' }); // 'Payment id="x", realm="say \"hi\""'
 * ```
 */
export function formatChallenge(
  scheme: string,
  params: Readonly<Record<string, string | undefined>>,
): string {
  if (!TOKEN.test(scheme)) throw invalidChallenge('the scheme is not a token');
  const parts: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (!TOKEN.test(name))
      throw invalidChallenge(`parameter name ${JSON.stringify(name)} is not a token`);
    if (!QUOTABLE.test(value)) {
      throw invalidChallenge(`parameter ${name} holds a character a quoted-string cannot carry`);
    }
    parts.push(`${name}="${value.replace(/["\\]/g, '\\$&')}"`);
  }
  return parts.length === 0 ? scheme : `${scheme} ${parts.join(', ')}`;
}

/**
 * Splits `Authorization` values into credentials. Each value is split on commas outside
 * quoted-strings; an element of the form `scheme 1*SP …` starts a credential, and any other
 * non-empty element continues the credential before it in the same value (or, first in a value,
 * is a credential of its own with nothing after the scheme). Throws `invalid_credential` when the
 * text is longer than {@link MAX_AUTH_HEADER_LENGTH} or has more than
 * {@link MAX_AUTH_HEADER_ELEMENTS} elements.
 *
 * @example
 * ```ts
 * parseCredentials('L402 mac1,mac2:abcd…, Bearer x');
 * // [{ scheme: 'L402', rest: 'mac1,mac2:abcd…' }, { scheme: 'Bearer', rest: 'x' }]
 * ```
 */
export function parseCredentials(value: string | readonly string[]): AuthCredential[] {
  const lines = typeof value === 'string' ? [value] : value;
  joinLines(lines, 'invalid_credential');
  const out: AuthCredential[] = [];
  let elements = 0;
  for (const line of lines) {
    let current: AuthCredential | undefined;
    for (let i = 0; i < line.length; ) {
      const end = nextComma(line, i);
      const element = line.slice(i, end).trim();
      i = end + 1;
      if (element === '') continue;
      if (++elements > MAX_AUTH_HEADER_ELEMENTS) {
        throw new TollwayError(
          'invalid_credential',
          `more than ${MAX_AUTH_HEADER_ELEMENTS} credential list elements`,
        );
      }
      const start = SCHEME_THEN_SPACE.exec(element);
      if (start !== null || current === undefined) {
        const scheme = start?.[1] ?? element;
        current = {
          scheme,
          schemeLower: scheme.toLowerCase(),
          rest: start === null ? '' : element.slice(start[0].length),
        };
        out.push(current);
      } else {
        current.rest += `,${element}`;
      }
    }
  }
  return out;
}
