import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUsageChunkFilter } from './usage-chunk-filter.js';

const chunk = (content: string) =>
  `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}],"usage":null}\n\n`;
const USAGE =
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n';
const DONE = 'data: [DONE]\n\n';

/** Runs `text` through a filter in pieces cut at `cuts` (byte offsets). */
function run(text: string, cuts: readonly number[]): { out: string; pieces: string[] } {
  const bytes = Buffer.from(text);
  const filter = createUsageChunkFilter();
  const pieces: string[] = [];
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= from || cut >= bytes.length) continue;
    pieces.push(filter.write(bytes.subarray(from, cut)).toString());
    from = cut;
  }
  pieces.push(filter.write(bytes.subarray(from)).toString());
  pieces.push(filter.end().toString());
  return { out: pieces.join(''), pieces };
}

describe('the usage-chunk filter', () => {
  it('drops the usage-only chunk and nothing else, however the stream is cut', () => {
    const stream = [chunk('Hel'), chunk('lo'), USAGE, DONE].join('');
    const expected = [chunk('Hel'), chunk('lo'), DONE].join('');
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 12 }), (cuts) => {
        expect(run(stream, cuts).out).toBe(expected);
      }),
    );
  });

  it('reads CRLF streams, and keeps what only looks like usage', () => {
    const crlf = (text: string) => text.replaceAll('\n', '\r\n');
    const stream = crlf([chunk('a'), USAGE, DONE].join(''));
    expect(run(stream, [10, 200]).out).toBe(crlf([chunk('a'), DONE].join('')));
    const lookalikes = [
      chunk('"usage": {"prompt_tokens": 1}'),
      'data: {"choices":[{"index":0}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n',
      'event: note\ndata: not json "usage":{\n\n',
      ': a comment\n\n',
    ].join('');
    expect(run(lookalikes, [7, 50]).out).toBe(lookalikes);
  });

  it('passes complete events at once: only an event still arriving is held', () => {
    const { pieces } = run(`${chunk('one')}${chunk('two')}`, [chunk('one').length + 5]);
    expect(pieces[0]).toBe(chunk('one'));
    expect(pieces[1]).toBe(chunk('two'));
  });

  it('passes a long event on as it arrives, and still drops a usage chunk after it', () => {
    const long = chunk('x'.repeat(100_000));
    const stream = `${long}${USAGE}${DONE}`;
    const cuts = [70_000, 100_020, long.length + 3];
    const { out, pieces } = run(stream, cuts);
    expect(out).toBe(`${long}${DONE}`);
    expect(pieces[0]?.length).toBeGreaterThan(69_000);
  });
});
