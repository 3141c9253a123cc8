/**
 * Strict JSON text for the MPP payloads. Internal: only the `JsonValue` and `JsonObject` types are
 * exported from the package.
 *
 * `JSON.parse` cannot be told to keep integers exact, silently lets a repeated member name win, and
 * throws `SyntaxError`. This reader follows RFC 8259 exactly, rejects repeated member names (two
 * readers of one credential must never see different values), limits nesting, can return integer
 * literals as `bigint`, and throws only `TollwayError('invalid_json')`.
 */
import { TollwayError } from '../errors.js';
import { utf8ToBytes } from '../internal/bytes.js';
import { decodeBase64Url, encodeBase64Url } from './base64url.js';

/** A JSON value; `bigint` stands for an integer kept exact. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;

/** A JSON object. */
export type JsonObject = { [name: string]: JsonValue };

/** The deepest nesting of arrays and objects {@link parseJson} accepts. */
export const MAX_JSON_DEPTH = 32;

/** Options of {@link parseJson}. */
export interface ParseJsonOptions {
  /** Return integer literals (no fraction, no exponent) as `bigint` instead of `number`. */
  bigints?: boolean;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};
const HEX4 = /^[0-9a-fA-F]{4}$/;

interface Reader {
  text: string;
  pos: number;
  bigints: boolean;
}

function invalid(reader: Reader, message: string): TollwayError {
  return new TollwayError('invalid_json', `${message} at offset ${reader.pos}`);
}

function skipWhitespace(reader: Reader): void {
  const { text } = reader;
  while (reader.pos < text.length) {
    const c = text.charCodeAt(reader.pos);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
    reader.pos++;
  }
}

function expect(reader: Reader, char: string): void {
  skipWhitespace(reader);
  if (reader.text[reader.pos] !== char) throw invalid(reader, `expected '${char}'`);
  reader.pos++;
}

function readString(reader: Reader): string {
  const { text } = reader;
  reader.pos++; // the opening quote
  let out = '';
  let run = reader.pos;
  while (reader.pos < text.length) {
    const c = text.charCodeAt(reader.pos);
    if (c === 0x22) {
      out += text.slice(run, reader.pos);
      reader.pos++;
      return out;
    }
    if (c < 0x20) throw invalid(reader, 'control character in a string');
    if (c !== 0x5c) {
      reader.pos++;
      continue;
    }
    out += text.slice(run, reader.pos);
    const kind = text.charAt(reader.pos + 1);
    const simple = ESCAPES[kind];
    if (simple !== undefined) {
      out += simple;
      reader.pos += 2;
    } else if (kind === 'u' && HEX4.test(text.slice(reader.pos + 2, reader.pos + 6))) {
      out += String.fromCharCode(Number.parseInt(text.slice(reader.pos + 2, reader.pos + 6), 16));
      reader.pos += 6;
    } else {
      throw invalid(reader, 'bad escape');
    }
    run = reader.pos;
  }
  throw invalid(reader, 'unterminated string');
}

function readNumber(reader: Reader): number | bigint {
  NUMBER.lastIndex = reader.pos;
  const match = NUMBER.exec(reader.text);
  if (match === null) throw invalid(reader, 'unexpected character');
  reader.pos = NUMBER.lastIndex;
  const literal = match[0];
  if (reader.bigints && match[1] === undefined && match[2] === undefined) return BigInt(literal);
  const value = Number(literal);
  if (!Number.isFinite(value)) throw invalid(reader, 'number out of range');
  return value;
}

function readLiteral(reader: Reader, word: string, value: JsonValue): JsonValue {
  if (!reader.text.startsWith(word, reader.pos)) throw invalid(reader, 'unexpected character');
  reader.pos += word.length;
  return value;
}

function readValue(reader: Reader, depth: number): JsonValue {
  skipWhitespace(reader);
  const char = reader.text[reader.pos];
  if (char === '"') return readString(reader);
  if (char === '{' || char === '[') {
    if (depth >= MAX_JSON_DEPTH) throw invalid(reader, 'nested too deeply');
    return char === '{' ? readObject(reader, depth + 1) : readArray(reader, depth + 1);
  }
  if (char === 't') return readLiteral(reader, 'true', true);
  if (char === 'f') return readLiteral(reader, 'false', false);
  if (char === 'n') return readLiteral(reader, 'null', null);
  return readNumber(reader);
}

function readArray(reader: Reader, depth: number): JsonValue[] {
  reader.pos++;
  const items: JsonValue[] = [];
  skipWhitespace(reader);
  if (reader.text[reader.pos] === ']') {
    reader.pos++;
    return items;
  }
  for (;;) {
    items.push(readValue(reader, depth));
    skipWhitespace(reader);
    if (reader.text[reader.pos] === ']') {
      reader.pos++;
      return items;
    }
    expect(reader, ',');
  }
}

function readObject(reader: Reader, depth: number): JsonObject {
  reader.pos++;
  const object: JsonObject = Object.create(null);
  skipWhitespace(reader);
  if (reader.text[reader.pos] === '}') {
    reader.pos++;
    return object;
  }
  for (;;) {
    skipWhitespace(reader);
    if (reader.text[reader.pos] !== '"') throw invalid(reader, 'expected a member name');
    const name = readString(reader);
    if (Object.hasOwn(object, name))
      throw invalid(reader, `repeated member ${JSON.stringify(name)}`);
    expect(reader, ':');
    // A null-prototype object and defineProperty: a member named "__proto__" stays a plain member.
    Object.defineProperty(object, name, {
      value: readValue(reader, depth),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    skipWhitespace(reader);
    if (reader.text[reader.pos] === '}') {
      reader.pos++;
      return object;
    }
    expect(reader, ',');
  }
}

/**
 * Parses JSON text strictly (RFC 8259; no repeated member names; at most {@link MAX_JSON_DEPTH}
 * levels). Objects have a null prototype. Throws `invalid_json` on anything else.
 */
export function parseJson(text: string, options: ParseJsonOptions = {}): JsonValue {
  const reader: Reader = { text, pos: 0, bigints: options.bigints === true };
  const value = readValue(reader, 0);
  skipWhitespace(reader);
  if (reader.pos !== text.length) throw invalid(reader, 'trailing characters');
  return value;
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Writes JSON text with members in each object's own order; a `bigint` is written as its exact
 * decimal digits. Throws `invalid_json` for a number that is not finite.
 */
export function stringifyJson(value: JsonValue): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TollwayError('invalid_json', 'JSON cannot carry a non-finite number');
  }
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(',')}]`;
  if (isJsonObject(value)) {
    const members = Object.entries(value).map(
      ([name, member]) => `${JSON.stringify(name)}:${stringifyJson(member)}`,
    );
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** base64url of the UTF-8 JSON text of `value` (members in their own order). */
export function encodeJsonBase64Url(value: JsonValue): string {
  return encodeBase64Url(utf8ToBytes(stringifyJson(value)));
}

/**
 * The JSON value in base64url text. Throws `invalid_base64`, or `invalid_json` when the
 * bytes are not UTF-8 JSON.
 */
export function decodeJsonBase64Url(text: string, options: ParseJsonOptions = {}): JsonValue {
  const bytes = decodeBase64Url(text);
  let json: string;
  try {
    json = utf8.decode(bytes);
  } catch (cause) {
    throw new TollwayError('invalid_json', 'not UTF-8', { cause });
  }
  return parseJson(json, options);
}
