// Security of pricing by the request body (MCP tools, `pricing` rules): the body the gateway priced
// is the body the upstream runs (finding 9). A body on a method the engine does not read is not
// forwarded; a JSON body with duplicate keys (which parsers resolve differently) is refused; a tool
// name that a server may match to a priced tool (other case, surrounding spaces) costs its price.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { createHarness, type Harness, send } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

function mcpService(): Record<string, unknown> {
  return {
    services: [
      {
        name: 'tools',
        path: '/mcp',
        upstream: harness.upstream.url,
        mcp: { tools: { search: '5 sat' }, freeTools: ['echo'] },
      },
    ],
  };
}

const call = (name: string) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } });

function post(gateway: Gateway, body: string, method = 'POST') {
  return send(gateway.url, '/mcp', {
    method,
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  });
}

describe('the body priced is the body run (finding 9)', () => {
  it('does not forward a body sent with GET or HEAD, which the engine does not read', async () => {
    const gateway = await harness.start(mcpService());
    for (const method of ['GET', 'HEAD']) {
      const answer = await post(gateway, call('search'), method);
      expect([method, answer.status]).toEqual([method, 400]);
      if (method === 'GET')
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_request' });
    }
    const chunked = await send(gateway.url, '/mcp', {
      method: 'GET',
      headers: { 'transfer-encoding': 'chunked' },
      body: call('search'),
    });
    expect(chunked.status).toBe(400);
    expect(harness.received).toEqual([]);
    // A GET without a body (the MCP event stream) still passes free.
    expect((await send(gateway.url, '/mcp')).status).toBe(200);
  });

  it('refuses duplicate keys at any depth, however they are spelled', async () => {
    const gateway = await harness.start(mcpService());
    for (const body of [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"method":"ping"}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"echo"}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"\\u006dethod":"ping"}',
      '[{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"search"}}]',
    ]) {
      const answer = await post(gateway, body);
      expect([body, answer.status]).toEqual([body, 400]);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_json' });
    }
    expect(harness.received).toEqual([]);
  });

  it('prices a tool name that differs from a priced one only by case or surrounding spaces', async () => {
    const gateway = await harness.start(mcpService());
    for (const name of ['Search', 'SEARCH', 'search ', ' search', 'search\t', 'ｓｅａｒｃｈ']) {
      const answer = await post(gateway, call(name));
      expect([name, answer.status]).toEqual([name, 402]);
      expect(JSON.parse(answer.body)).toMatchObject({ price: { amount: '5000' } });
    }
    expect(harness.received).toEqual([]);
    expect((await post(gateway, call('Echo'))).status).toBe(200);
  });

  it('refuses a config whose tool names collide once case and spaces are ignored', async () => {
    await expect(
      harness.start({
        services: [
          {
            name: 'tools',
            upstream: harness.upstream.url,
            mcp: { tools: { search: '5 sat', Search: '1 sat' } },
          },
        ],
      }),
    ).rejects.toThrow(/mcp\.tools/);
  });

  it('applies the same rules to services priced by `pricing` rules on the body', async () => {
    const gateway = await harness.start({
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: harness.upstream.url,
          price: '50 sat',
          pricing: [{ method: 'POST', field: 'model', prices: { small: '2 sat' } }],
        },
      ],
    });
    const dup = await send(gateway.url, '/v1/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"small","model":"huge"}',
    });
    expect(dup.status).toBe(400);
    const get = await send(gateway.url, '/v1/chat', {
      method: 'GET',
      headers: { 'content-type': 'application/json', 'content-length': '17' },
      body: '{"model":"small"}',
    });
    expect(get.status).toBe(400);
    expect(harness.received).toEqual([]);
  });
});
