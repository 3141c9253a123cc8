/**
 * Reads an LLM answer's body as it streams, for the usage it reports: an SSE stream (each event's
 * `data:` parsed as JSON), or a JSON document, told apart by the body's first character. The
 * reader holds a bounded amount of text: SSE events one at a time, and at most `maxJsonBytes` of a
 * JSON answer (past that, its last 16 KiB, where the usage of every supported API sits).
 */
import { sseField } from '../internal/sse.js';
import { createStreamUsage, type LlmUsage, usageOfAnswer } from './usage.js';

/** See {@link createAnswerReader}. */
export interface AnswerReader {
  /** A chunk of the body, in order. */
  write(chunk: Uint8Array): void;
  /** The usage the body reported, or undefined when it reported none (yet). */
  usage(): LlmUsage | undefined;
}

const DEFAULT_MAX_JSON_BYTES = 4 * 1024 * 1024;
const TAIL_CHARS = 16 * 1024;
/** An SSE event larger than this is skipped (no supported API sends one with its usage). */
const MAX_EVENT_CHARS = 1024 * 1024;
/**
 * Every event that reports usage holds a `"usage"` object; the others (most of a stream, and
 * OpenAI's `"usage":null` chunks) are not split into lines or parsed at all.
 */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
const USAGE_OBJECTS = new RegExp(USAGE_OBJECT.source, 'g');
const LF = 0x0a;
const CR = 0x0d;

/**
 * Creates a reader.
 *
 * @example
 * ```ts
 * const reader = createAnswerReader();
 * reader.write(new TextEncoder().encode('{"usage":{"prompt_tokens":3,"completion_tokens":5}}'));
 * reader.usage(); // { inputTokens: 3, cachedInputTokens: 0, outputTokens: 5 }
 * ```
 */
export function createAnswerReader(options: { maxJsonBytes?: number } = {}): AnswerReader {
  const maxJson = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const text = createUtf8Text();
  const stream = createStreamUsage();
  let mode: 'unknown' | 'sse' | 'json' = 'unknown';
  let json = '';
  let truncated = false;
  /** SSE text after the last complete event. */
  let pending = '';
  /** The event under way is longer than MAX_EVENT_CHARS: skipped up to its end. */
  let skipping = false;

  /** One event's `data:` lines, parsed (an event holding a usage object). */
  function readEvent(text: string): void {
    const data: string[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const value = sseField(line, 'data');
      if (value !== undefined) data.push(value);
    }
    try {
      stream.event(JSON.parse(data.join('\n')));
    } catch {
      // Not JSON: no usage in it.
    }
  }

  /**
   * Reads the events of `text` (whole events) that hold a usage object, found by one search: the
   * others are neither cut out nor looked at again.
   */
  function readUsageEvents(text: string): void {
    USAGE_OBJECTS.lastIndex = 0;
    for (let found = USAGE_OBJECTS.exec(text); found !== null; found = USAGE_OBJECTS.exec(text)) {
      const end = eventEndAfter(text, found.index);
      readEvent(text.slice(eventStartBefore(text, found.index), end));
      USAGE_OBJECTS.lastIndex = end;
    }
  }

  /**
   * Reads the events `text` completes. A run of events without a usage object (most of a
   * stream) is passed over by one test, without splitting it into lines.
   */
  function sse(text: string): void {
    // The usual chunk: whole events, nothing pending. Read as it is, neither joined nor cut.
    if (pending === '' && !skipping && endsWithBlankLine(text)) {
      readUsageEvents(text);
      return;
    }
    pending += text;
    if (skipping) {
      const first = eventEnd(pending, 'first');
      if (first < 0) {
        pending = pending.slice(-3);
        return;
      }
      skipping = false;
      pending = pending.slice(first);
    }
    const end = eventEnd(pending, 'last');
    if (end >= 0) {
      const complete = pending.slice(0, end);
      pending = pending.slice(end);
      readUsageEvents(complete);
    }
    if (pending.length > MAX_EVENT_CHARS) {
      skipping = true;
      pending = pending.slice(-3);
    }
  }

  function jsonText(text: string): void {
    json += text;
    if (json.length > maxJson) {
      truncated = true;
      json = json.slice(-TAIL_CHARS);
    } else if (truncated && json.length > 2 * TAIL_CHARS) {
      json = json.slice(-TAIL_CHARS);
    }
  }

  return {
    write(chunk) {
      const decoded = text.decode(chunk);
      if (mode === 'unknown') {
        const first = decoded.trimStart()[0];
        if (first === undefined) return;
        mode = first === '{' || first === '[' ? 'json' : 'sse';
      }
      if (mode === 'sse') sse(decoded);
      else jsonText(decoded);
    },
    usage() {
      if (mode === 'sse') {
        if (!skipping && USAGE_OBJECT.test(pending)) readEvent(pending);
        pending = '';
        return stream.usage();
      }
      if (mode !== 'json') return undefined;
      if (!truncated) {
        try {
          return usageOfAnswer(JSON.parse(json));
        } catch {
          // An unfinished answer: read the usage object alone, if it arrived.
        }
      }
      return usageInTail(json);
    },
  };
}

/** Whether `text` ends an event: it ends with a blank line. */
function endsWithBlankLine(text: string): boolean {
  return text.endsWith('\n\n') || text.endsWith('\n\r\n');
}

/**
 * Decodes a body's chunks as UTF-8, a character cut between two chunks joined again, the body's
 * byte-order mark dropped. A `TextDecoder` does this itself with `{ stream: true }`, but only
 * through its slower streaming path (~0.8 µs per SSE chunk in Node 20, against ~0.2 µs for whole
 * text): the cut character is carried here instead, and each chunk decoded whole.
 */
function createUtf8Text(): { decode(chunk: Uint8Array): string } {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  let carried: Uint8Array | undefined;
  let first = true;
  return {
    decode(chunk) {
      let bytes = chunk;
      if (carried !== undefined) {
        bytes = new Uint8Array(carried.length + chunk.length);
        bytes.set(carried);
        bytes.set(chunk, carried.length);
        carried = undefined;
      }
      const cut = unfinishedTail(bytes);
      if (cut > 0) {
        carried = bytes.slice(bytes.length - cut);
        bytes = bytes.subarray(0, bytes.length - cut);
      }
      let text = decoder.decode(bytes);
      if (first && text !== '') {
        first = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      return text;
    },
  };
}

/** How many bytes at the end of `bytes` start a UTF-8 character they do not finish (0 to 3). */
function unfinishedTail(bytes: Uint8Array): number {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const byte = bytes[bytes.length - back] ?? 0;
    if (byte < 0x80) return 0;
    if (byte >= 0xc0) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return length > back ? back : 0;
    }
  }
  return 0;
}

/** The index after the first (from `from` on) or last blank line of `text`, or -1. */
function eventEnd(text: string, which: 'first' | 'last', from = 0): number {
  if (which === 'first') {
    const lf = text.indexOf('\n\n', from);
    const crlf = text.indexOf('\n\r\n', from);
    if (lf < 0) return crlf < 0 ? -1 : crlf + 3;
    return crlf < 0 || lf + 2 <= crlf + 3 ? lf + 2 : crlf + 3;
  }
  const lf = text.lastIndexOf('\n\n');
  const crlf = text.lastIndexOf('\n\r\n');
  return Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 3);
}

/**
 * The start of the event holding `at`: after the blank line before it, or 0. Scanned back by hand
 * over the one event: `lastIndexOf('\n\r\n')` on a stream with LF line ends would run back
 * through the whole text.
 */
function eventStartBefore(text: string, at: number): number {
  for (let i = at - 1; i > 0; i--) {
    if (text.charCodeAt(i) !== LF) continue;
    const before = text.charCodeAt(i - 1);
    if (before === LF || (before === CR && i > 1 && text.charCodeAt(i - 2) === LF)) return i + 1;
  }
  return 0;
}

/** The end of the event holding `at`: after the blank line that ends it, or the text's end. */
function eventEndAfter(text: string, at: number): number {
  const end = eventEnd(text, 'first', at);
  return end < 0 ? text.length : end;
}

/**
 * The last `"usage": {…}` object in `text`, brace-matched (strings and escapes skipped), read as
 * an answer's usage.
 */
function usageInTail(text: string): LlmUsage | undefined {
  let at = text.lastIndexOf('"usage"');
  while (at >= 0) {
    const open = text.indexOf('{', at);
    const colon = text.indexOf(':', at);
    if (open > colon && colon > at && text.slice(colon + 1, open).trim() === '') {
      const close = matchingBrace(text, open);
      if (close >= 0) {
        try {
          return usageOfAnswer({ usage: JSON.parse(text.slice(open, close + 1)) });
        } catch {
          // Not an object after all: look further back.
        }
      }
    }
    at = text.lastIndexOf('"usage"', at - 1);
  }
  return undefined;
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{') depth++;
    else if (char === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}
