/**
 * Duplicate object keys in JSON text. `JSON.parse` keeps the last of two equal keys; other parsers
 * keep the first, or refuse the text. A body priced on one reading and run on another is the
 * gap between them, so bodies the engine reads are refused when a key repeats.
 *
 * Hand-written rather than taken from a library: `jsonc-parser`'s visitor costs about three times
 * `JSON.parse` on a 1 MB body, this scan about half of it, and it runs on every body a route
 * prices by.
 *
 * @internal
 */

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const COMMA = 44;

/** The index of the quote that closes the string opened at `start`. */
function closingQuote(text: string, start: number): number {
  let end = start;
  for (;;) {
    end = text.indexOf('"', end + 1);
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return end;
  }
}

/**
 * The first key that appears twice in one object of `text`, compared after unescaping (`"a"` and
 * `"\u0061"` are the same key), or undefined. `text` must be JSON that `JSON.parse` accepted.
 *
 * @internal
 * @example
 * ```ts
 * findDuplicateKey('{"method":"tools/call","method":"ping"}'); // 'method'
 * findDuplicateKey('{"a":{"a":1}}');                           // undefined
 * ```
 */
export function findDuplicateKey(text: string): string | undefined {
  /** Per open container: the keys of an object so far, or null for an array. */
  const open: Array<Set<string> | null> = [];
  let atKey = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      const end = closingQuote(text, i);
      const keys = open[open.length - 1];
      if (atKey && keys) {
        const raw = text.slice(i + 1, end);
        const key: string = raw.includes('\\') ? JSON.parse(text.slice(i, end + 1)) : raw;
        if (keys.has(key)) return key;
        keys.add(key);
        atKey = false;
      }
      i = end;
    } else if (code === OPEN_OBJECT) {
      open.push(new Set());
      atKey = true;
    } else if (code === OPEN_ARRAY) {
      open.push(null);
      atKey = false;
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      open.pop();
      atKey = false;
    } else if (code === COMMA) {
      atKey = open[open.length - 1] !== null;
    }
  }
  return undefined;
}
