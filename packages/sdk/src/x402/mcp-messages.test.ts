import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findMcpResponse, readMcpResponse, readMcpToolCall } from './mcp-messages.js';

const response = (id: number | string, result: unknown) => ({ jsonrpc: '2.0', id, result });
const note = { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } };

/** A live answer: `parts` sent one by one; the stream stays open after them unless `close`. */
function answer(type: string, parts: readonly string[], close = true): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      if (close) controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': type } });
}

describe('readMcpToolCall', () => {
  it('reads a single tools/call request, and nothing else', () => {
    const call = { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'a' } };
    expect(readMcpToolCall(call)).toEqual({ id: 4, params: { name: 'a' }, message: call });
    expect(readMcpToolCall({ ...call, id: 'x' })?.id).toBe('x');
    for (const other of [
      [call],
      { ...call, method: 'tools/list' },
      { ...call, id: undefined },
      { ...call, id: null },
      { ...call, params: 'a' },
      { ...call, params: [] },
      null,
      'tools/call',
    ]) {
      expect(readMcpToolCall(other)).toBeUndefined();
    }
  });
});

describe('findMcpResponse', () => {
  it('finds and replaces the response in a JSON answer, alone or in a batch', () => {
    const one = JSON.stringify(response(1, { content: [] }));
    const found = findMcpResponse('application/json; charset=utf-8', one, 1);
    expect(found?.message.result).toEqual({ content: [] });
    expect(found?.replace(response(1, 'new'))).toBe(JSON.stringify(response(1, 'new')));
    const batch = JSON.stringify([note, response(2, 'x'), response(1, 'y')]);
    expect(findMcpResponse('application/json', batch, 1)?.replace(response(1, 'z'))).toBe(
      JSON.stringify([note, response(2, 'x'), response(1, 'z')]),
    );
    // A request from the server that happens to use the same id is not the response.
    const request = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sampling/createMessage' });
    expect(findMcpResponse('application/json', request, 1)).toBeUndefined();
    expect(findMcpResponse('application/json', one, 2)).toBeUndefined();
    expect(findMcpResponse('application/json', '{', 1)).toBeUndefined();
    expect(findMcpResponse('text/plain', one, 1)).toBeUndefined();
    expect(findMcpResponse(undefined, one, 1)).toBeUndefined();
  });

  it('finds an error response too', () => {
    const failed = { jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'bad' } };
    expect(findMcpResponse('application/json', JSON.stringify(failed), 3)?.message).toEqual(failed);
  });

  it('replaces the event of an SSE answer that holds the response, the rest as sent', () => {
    const text = [
      `: comment\r\nevent: message\r\ndata: ${JSON.stringify(note)}`,
      `event: message\r\nid: 9\r\ndata: ${JSON.stringify([note, response('a', 1)])}`,
      '',
    ].join('\r\n\r\n');
    const found = findMcpResponse('text/event-stream', text, 'a');
    expect(found?.message).toEqual(response('a', 1));
    expect(found?.replace(response('a', 2))).toBe(
      [
        `: comment\r\nevent: message\r\ndata: ${JSON.stringify(note)}`,
        `event: message\nid: 9\ndata: ${JSON.stringify([note, response('a', 2)])}`,
        '',
      ].join('\r\n\r\n'),
    );
  });

  it('puts back an SSE answer byte for byte when the response is replaced by itself', () => {
    const event = fc
      .tuple(
        fc.array(fc.constantFrom('event: message', 'id: 7', ': keep-alive'), { maxLength: 2 }),
        fc.jsonValue(),
      )
      .map(([lines, progress]) => {
        const message = { jsonrpc: '2.0', method: 'notifications/progress', params: { progress } };
        return [...lines, `data: ${JSON.stringify(message)}`].join('\n');
      });
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 4 }),
        fc.array(event, { maxLength: 4 }),
        fc.jsonValue(),
        fc.oneof(fc.integer(), fc.string()),
        (before, after, result, id) => {
          const message = response(id, result);
          const text = [...before, `event: message\ndata: ${JSON.stringify(message)}`, ...after]
            .map((e) => `${e}\n\n`)
            .join('');
          const found = findMcpResponse('text/event-stream', text, id);
          expect(found?.message).toEqual(JSON.parse(JSON.stringify(message)));
          expect(found?.replace(found.message)).toBe(text);
        },
      ),
    );
  });
});

describe('readMcpResponse', () => {
  it('reads a JSON answer whole, from a copy', async () => {
    const text = JSON.stringify(response(1, { content: [] }));
    const live = answer('application/json', [text.slice(0, 9), text.slice(9)]);
    expect(await readMcpResponse(live, 1, 1024)).toEqual(response(1, { content: [] }));
    expect(await live.text()).toBe(text);
    expect(await readMcpResponse(answer('application/json', [text]), 2, 1024)).toBeUndefined();
    expect(await readMcpResponse(answer('text/plain', [text]), 1, 1024)).toBeUndefined();
  });

  it('reads an SSE answer up to the event with the response, though the stream stays open', async () => {
    const data = JSON.stringify(response('a', { ok: true }));
    // Data on two lines, cut between two members.
    const cut = data.indexOf('"id"');
    const parts = [
      `event: message\ndata: ${JSON.stringify(note)}\n\nevent: mess`,
      `age\ndata: ${data.slice(0, cut)}\ndata: ${data.slice(cut)}`,
      '\n\n',
    ];
    const live = answer('text/event-stream', parts, false);
    expect(await readMcpResponse(live, 'a', 1024)).toEqual(response('a', { ok: true }));
  });

  it('gives up past the limit', async () => {
    const text = JSON.stringify(response(1, 'x'.repeat(100)));
    expect(await readMcpResponse(answer('application/json', [text]), 1, 50)).toBeUndefined();
    const sse = `data: ${JSON.stringify(note)}\n\ndata: ${text}\n\n`;
    expect(await readMcpResponse(answer('text/event-stream', [sse]), 1, 50)).toBeUndefined();
  });

  it('finds in a live answer what it finds in the same text, however the text is cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue(), { maxLength: 3 }),
        fc.jsonValue(),
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 6 }),
        fc.constantFrom('\n', '\r\n'),
        async (progress, result, cuts, newline) => {
          const events = [
            ...progress.map((p) => ({ ...note, params: { progress: p } })),
            response(5, result),
          ].map((m) => `event: message${newline}data: ${JSON.stringify(m)}${newline}${newline}`);
          const text = events.join('');
          const parts: string[] = [];
          let at = 0;
          for (const cut of cuts) {
            parts.push(text.slice(at, at + cut));
            at += cut;
          }
          parts.push(text.slice(at));
          const live = await readMcpResponse(answer('text/event-stream', parts), 5, 1 << 20);
          expect(live).toEqual(findMcpResponse('text/event-stream', text, 5)?.message);
          expect(live).toBeDefined();
        },
      ),
      { numRuns: 50 },
    );
  });
});
