import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAnswerReader } from './answer-reader.js';

const encoder = new TextEncoder();

function read(chunks: readonly string[] | readonly Uint8Array[]) {
  const reader = createAnswerReader({ maxJsonBytes: 256 });
  for (const chunk of chunks)
    reader.write(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
  return reader.usage();
}

/** `bytes` cut at `cuts` (offsets into it). */
function cut(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    parts.push(bytes.slice(start, offset));
    start = offset;
  }
  return parts;
}

const chatStream = [
  'data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"héllo"}}],"usage":null}',
  '',
  'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14}}',
  '',
  'data: [DONE]',
  '',
  '',
].join('\n');

const anthropicStream = [
  'event: message_start',
  'data: {"type":"message_start","message":{"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}',
  '',
  'event: message_delta',
  'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":33}}',
  '',
  'event: message_stop',
  'data: {"type":"message_stop"}',
  '',
  '',
].join('\r\n');

describe('createAnswerReader', () => {
  it('reads SSE streams of each API, with LF or CRLF line ends', () => {
    expect(read([chatStream])).toEqual({ inputTokens: 10, cachedInputTokens: 0, outputTokens: 4 });
    expect(read([anthropicStream])).toEqual({
      inputTokens: 20,
      cachedInputTokens: 5,
      outputTokens: 33,
    });
  });

  it('reads a JSON answer, and the usage at the end of one larger than it holds', () => {
    const small = JSON.stringify({
      choices: [],
      usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
    });
    expect(read([small])).toEqual({ inputTokens: 3, cachedInputTokens: 0, outputTokens: 5 });
    const large = JSON.stringify({
      choices: [{ message: { content: 'x'.repeat(5000) } }],
      usage: { prompt_tokens: 30, completion_tokens: 50, total_tokens: 80 },
    });
    expect(read([large])).toEqual({ inputTokens: 30, cachedInputTokens: 0, outputTokens: 50 });
  });

  it('reports nothing for a stream cut before its usage, or an empty body', () => {
    expect(read([chatStream.slice(0, chatStream.indexOf('\n\n') + 2)])).toBeUndefined();
    expect(read([])).toBeUndefined();
    expect(read(['   '])).toBeUndefined();
  });

  it('gives the same usage however the body is cut into chunks (even inside a UTF-8 character)', () => {
    for (const body of [chatStream, anthropicStream]) {
      const bytes = encoder.encode(body);
      const whole = read([bytes]);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
          expect(read(cut(bytes, cuts))).toEqual(whole);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('passes over an event longer than it holds, and reads the events after it', () => {
    const huge = (usage: string) =>
      `data: {"choices":[{"delta":{"content":"${'x'.repeat(2_200_000)}"}}],"usage":${usage}}\n\n`;
    const readAll = (...parts: string[]) => {
      const reader = createAnswerReader();
      const text = parts.join('');
      for (let at = 0; at < text.length; at += 65_536) {
        reader.write(encoder.encode(text.slice(at, at + 65_536)));
      }
      return reader.usage();
    };
    const chat = { inputTokens: 10, cachedInputTokens: 0, outputTokens: 4 };
    expect(readAll(huge('null'), chatStream)).toEqual(chat);
    expect(readAll(chatStream, huge('{"prompt_tokens":99,"completion_tokens":99}'))).toEqual(chat);
  });

  it('survives arbitrary bytes without throwing', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        read(chunks);
      }),
      { numRuns: 2000 },
    );
  });
});
