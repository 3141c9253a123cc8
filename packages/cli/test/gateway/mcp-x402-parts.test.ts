// The socket-free parts of the gateway's x402 over MCP: reading the call and its payment, and
// finding and rewriting the tool's response in JSON and SSE answers.
import { describe, expect, it } from 'vitest';
import { findResponse, readToolCall, stripPayment } from '../../src/gateway/mcp-x402.js';

const response = (id: number | string, result: unknown) => ({ jsonrpc: '2.0', id, result });

describe('gateway x402 over MCP parts', () => {
  it('reads a single tools/call and its payment, and nothing else', () => {
    const call = (params: unknown, extra: Record<string, unknown> = {}) => ({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params,
      ...extra,
    });
    expect(readToolCall(call({ name: 'a' }))).toEqual({ id: 4, name: 'a' });
    expect(readToolCall(call({ name: 'a', _meta: { 'x402/payment': { p: 1 } } }))).toEqual({
      id: 4,
      name: 'a',
      payment: { p: 1 },
    });
    expect(readToolCall(call({ name: 'a', _meta: { 'x402/payment': null } }))).toHaveProperty(
      'payment',
      null,
    );
    for (const other of [
      [call({ name: 'a' })],
      call({ name: 'a' }, { method: 'tools/list' }),
      call({ name: 'a' }, { id: undefined }),
      call({ name: 1 }),
      call('a'),
      null,
    ]) {
      expect(readToolCall(other)).toBeUndefined();
    }
  });

  it('strips the payment and keeps the rest of the body', () => {
    const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
    const body = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'a', arguments: { x: 1 }, _meta: { 'x402/payment': {}, progressToken: 2 } },
    };
    expect(decode(stripPayment(body))).toEqual({
      ...body,
      params: { name: 'a', arguments: { x: 1 }, _meta: { progressToken: 2 } },
    });
    const alone = { ...body, params: { name: 'a', _meta: { 'x402/payment': {} } } };
    expect(decode(stripPayment(alone))).toEqual({ ...body, params: { name: 'a' } });
  });

  it('finds and replaces the response in a JSON answer, alone or in a batch', () => {
    const one = JSON.stringify(response(1, { content: [] }));
    const found = findResponse('application/json; charset=utf-8', one, 1);
    expect(found?.message.result).toEqual({ content: [] });
    expect(found?.replace(response(1, 'new'))).toBe(JSON.stringify(response(1, 'new')));
    const batch = JSON.stringify([response(2, 'x'), response(1, 'y')]);
    expect(findResponse('application/json', batch, 1)?.replace(response(1, 'z'))).toBe(
      JSON.stringify([response(2, 'x'), response(1, 'z')]),
    );
    expect(findResponse('application/json', one, 2)).toBeUndefined();
    expect(findResponse('application/json', '{', 1)).toBeUndefined();
    expect(findResponse('text/plain', one, 1)).toBeUndefined();
    expect(findResponse(undefined, one, 1)).toBeUndefined();
  });

  it('finds and replaces the response event of an SSE answer, leaving the other events as sent', () => {
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: {} });
    const answer = JSON.stringify(response('a', { content: [] }));
    // Multi-line data, cut between two members.
    const cut = answer.indexOf('"id"');
    const split = `${answer.slice(0, cut)}\ndata: ${answer.slice(cut)}`;
    for (const newline of ['\n', '\r\n']) {
      const stream = [
        `: comment${newline}event: message${newline}data: ${note}`,
        `event: message${newline}id: 9${newline}data: ${split}`,
        `data: {"jsonrpc":"2.0","id":"b","result":{}}`,
        '',
      ].join(newline + newline);
      const found = findResponse('text/event-stream', stream, 'a');
      expect(found?.message).toEqual(JSON.parse(answer));
      const replaced = found?.replace(response('a', { paid: true })) ?? '';
      expect(replaced).toBe(
        [
          `: comment${newline}event: message${newline}data: ${note}`,
          `event: message\nid: 9\ndata: ${JSON.stringify(response('a', { paid: true }))}`,
          `data: {"jsonrpc":"2.0","id":"b","result":{}}`,
          '',
        ].join(newline + newline),
      );
      expect(findResponse('text/event-stream', stream, 'c')).toBeUndefined();
    }
  });
});
