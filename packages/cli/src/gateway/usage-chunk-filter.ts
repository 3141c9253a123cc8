/**
 * Drops the usage-only chunk of an OpenAI-style event stream — the one that
 * `stream_options.include_usage` adds before `data: [DONE]`, with `choices: []` and a `usage`
 * object — from the bytes passed on to a client that did not ask for it. Every other byte passes
 * as it came: complete events at once, and only the start of an event still arriving is held. An
 * event longer than {@link MAX_HELD_BYTES} (never a usage chunk) is passed on as it arrives.
 * Events end at a blank line (`\n\n` or `\r\n\r\n`).
 */
import { isRecord } from './is-record.js';

/** The most of one event held while it arrives; a usage chunk is a few hundred bytes. */
const MAX_HELD_BYTES = 64 * 1024;
/** Bytes kept back from an event passed on as it arrives, to find its end across chunks. */
const KEPT_BACK = 3;
const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** See the module comment. */
export interface UsageChunkFilter {
  /** The bytes of `chunk` (and of what was held) to pass on now. */
  write(chunk: Buffer): Buffer;
  /** The stream ended: what is still held. */
  end(): Buffer;
}

/** The index after the blank line that ends the event starting at `from`, or -1. */
function eventEnd(data: Buffer, from: number): number {
  let at = data.indexOf(LF, from);
  while (at >= 0) {
    const next = data[at + 1] === CR ? at + 2 : at + 1;
    if (data[next] === LF) return next + 1;
    at = data.indexOf(LF, at + 1);
  }
  return -1;
}

/** True when the event is a chunk with `choices: []` and a `usage` object. */
function isUsageOnly(event: Buffer): boolean {
  const at = event.indexOf('"usage"');
  if (at < 0) return false;
  // Cheap test first: every other chunk of such a stream says `"usage":null`.
  const value = /^\s*:\s*\{/.exec(event.toString('latin1', at + 7, at + 32));
  if (value === null) return false;
  const data = event
    .toString('utf8')
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(line.charCodeAt(5) === 32 ? 6 : 5))
    .join('\n');
  try {
    const parsed: unknown = JSON.parse(data);
    return (
      isRecord(parsed) &&
      Array.isArray(parsed.choices) &&
      parsed.choices.length === 0 &&
      isRecord(parsed.usage)
    );
  } catch {
    return false;
  }
}

/**
 * Creates a filter for one stream.
 *
 * @example
 * ```ts
 * const filter = createUsageChunkFilter();
 * res.write(filter.write(chunk));
 * res.end(filter.end());
 * ```
 */
export function createUsageChunkFilter(): UsageChunkFilter {
  let held: Buffer | undefined;
  /** The event under way is too long to be a usage chunk: it is passed on as it arrives. */
  let passing = false;
  return {
    write(chunk) {
      const data = held === undefined ? chunk : Buffer.concat([held, chunk]);
      held = undefined;
      let start = 0;
      if (passing) {
        const end = eventEnd(data, 0);
        if (end < 0) {
          held = data.subarray(Math.max(0, data.length - KEPT_BACK));
          return data.subarray(0, data.length - held.length);
        }
        passing = false;
        start = end;
      }
      const parts: Buffer[] = [];
      let passedTo = 0;
      for (let end = eventEnd(data, start); end >= 0; end = eventEnd(data, start)) {
        if (isUsageOnly(data.subarray(start, end))) {
          parts.push(data.subarray(passedTo, start));
          passedTo = end;
        }
        start = end;
      }
      let upTo = start;
      if (data.length - start > MAX_HELD_BYTES) {
        passing = true;
        upTo = data.length - KEPT_BACK;
      }
      if (upTo < data.length) held = data.subarray(upTo);
      parts.push(data.subarray(passedTo, upTo));
      return parts.length === 1 ? (parts[0] ?? EMPTY) : Buffer.concat(parts);
    },
    end() {
      const rest = held ?? EMPTY;
      held = undefined;
      return rest;
    },
  };
}
