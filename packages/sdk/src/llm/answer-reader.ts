/**
 * Reads an LLM answer's body as it streams, for the usage it reports: an SSE stream (each event's
 * `data:` parsed as JSON), or a JSON document, told apart by the body's first character. The
 * reader holds a bounded amount of text: SSE events one at a time, and at most `maxJsonBytes` of a
 * JSON answer (past that, its last 16 KiB, where the usage of every supported API sits).
 */
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
  const decoder = new TextDecoder('utf-8');
  const stream = createStreamUsage();
  let mode: 'unknown' | 'sse' | 'json' = 'unknown';
  let json = '';
  let truncated = false;
  let line = '';
  let data: string[] = [];
  let dataChars = 0;

  function dispatch(): void {
    const payload = data.join('\n');
    data = [];
    dataChars = 0;
    if (payload === '' || payload === '[DONE]') return;
    try {
      stream.event(JSON.parse(payload));
    } catch {
      // Not JSON: no usage in it.
    }
  }

  function sseLine(text: string): void {
    if (text === '') {
      dispatch();
      return;
    }
    if (!text.startsWith('data:')) return;
    const value = text.slice(text.charCodeAt(5) === 32 ? 6 : 5);
    dataChars += value.length;
    if (dataChars > MAX_EVENT_CHARS) {
      data = [];
      return;
    }
    data.push(value);
  }

  function sse(text: string): void {
    line += text;
    let newline = line.indexOf('\n');
    while (newline >= 0) {
      const full = line.slice(0, newline);
      sseLine(full.endsWith('\r') ? full.slice(0, -1) : full);
      line = line.slice(newline + 1);
      newline = line.indexOf('\n');
    }
    if (line.length > MAX_EVENT_CHARS) line = '';
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
      const text = decoder.decode(chunk, { stream: true });
      if (mode === 'unknown') {
        const first = text.trimStart()[0];
        if (first === undefined) return;
        mode = first === '{' || first === '[' ? 'json' : 'sse';
      }
      if (mode === 'sse') sse(text);
      else jsonText(text);
    },
    usage() {
      if (mode === 'sse') {
        if (line !== '') sseLine(line);
        line = '';
        dispatch();
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
