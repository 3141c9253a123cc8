// The gateway in front of a real MCP server (stateless Streamable HTTP) with the `mcp:` block: a
// real MCP client whose fetch is Tollway's paying fetch connects and lists tools free, calls a free
// tool free, pays once for a priced tool and reuses the credential for the next call. The shop's and
// the agent's wallets are on one dev Lightning node.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createPayingFetch, type PaymentInfo } from '@tollway/sdk/client';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { startUpstream, type Upstream } from './support.js';

let network: DevNetwork;
let upstream: Upstream;
let gateway: Gateway;
const dir = mkdtempSync(join(tmpdir(), 'tollway-gw-mcp-'));
/** The JSON-RPC methods the MCP server received, in order. */
const received: string[] = [];

function createMcpServer(): McpServer {
  const server = new McpServer({ name: 'weather', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echo the text.', inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool(
    'get_forecast',
    { description: 'The forecast of a city.', inputSchema: { city: z.string() } },
    ({ city }) => ({ content: [{ type: 'text', text: `${city}: sunny` }] }),
  );
  return server;
}

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop');
  network.openWallet('agent');
  upstream = await startUpstream(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body: unknown =
      chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString());
    for (const message of [body].flat()) {
      if (message !== undefined) received.push((message as { method?: string }).method ?? '');
    }
    const server = createMcpServer();
    // Stateless: no `sessionIdGenerator`, so no session ids.
    const transport = new StreamableHTTPServerTransport({});
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      dataDir: dir,
      lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
      services: [
        {
          name: 'weather-mcp',
          path: '/mcp',
          upstream: upstream.url,
          mcp: { tools: { get_forecast: '10 sat' }, freeTools: ['echo'] },
        },
      ],
    },
    { env: {} },
  );
  gateway = await createGateway({
    config,
    lightning: network.backend('shop'),
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    baseDir: dir,
    env: {},
  });
});

afterAll(async () => {
  await gateway.close();
  await upstream.close();
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

function text(result: unknown): string | undefined {
  const [first] = (result as CallToolResult).content;
  return first?.type === 'text' ? first.text : undefined;
}

describe('tollway gateway: charging for MCP tools', () => {
  it('lets initialize, tools/list and a free tool through, and charges a priced tool once', async () => {
    const payments: PaymentInfo[] = [];
    const fetch = createPayingFetch({
      wallets: network.backend('agent'),
      onPayment: (payment) => payments.push(payment),
    });
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), { fetch }),
    );
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(['echo', 'get_forecast']);
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('hi');
      expect(payments).toHaveLength(0);

      const first = await client.callTool({ name: 'get_forecast', arguments: { city: 'Oslo' } });
      expect(text(first)).toBe('Oslo: sunny');
      expect(payments).toHaveLength(1);
      expect(payments[0]?.amountMsat).toBe(10_000n);

      const second = await client.callTool({ name: 'get_forecast', arguments: { city: 'Rome' } });
      expect(text(second)).toBe('Rome: sunny');
      expect(payments).toHaveLength(1);
      expect(received).toEqual([
        'initialize',
        'notifications/initialized',
        'tools/list',
        'tools/call',
        'tools/call',
        'tools/call',
      ]);
    } finally {
      await client.close();
    }
  });

  it('answers 402 with L402 and MPP offers to an unpaid priced call, and refuses a priced batch', async () => {
    const call = (name: string, id: number) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: { city: 'Oslo' } },
    });
    const post = (body: unknown) =>
      fetch(`${gateway.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify(body),
      });
    const unpaid = await post(call('get_forecast', 1));
    expect(unpaid.status).toBe(402);
    const offers = unpaid.headers.get('www-authenticate') ?? '';
    expect(offers).toContain('L402 macaroon=');
    expect(offers).toContain('Payment ');
    const unlisted = await post(call('not_listed', 2));
    expect(unlisted.status).not.toBe(402);
    const batch = await post([{ jsonrpc: '2.0', id: 3, method: 'ping' }, call('get_forecast', 4)]);
    expect(batch.status).toBe(400);
    expect(await batch.json()).toMatchObject({ code: 'invalid_json' });
  });

  it('names the field of a wrong `mcp` block', () => {
    const parse = (mcp: unknown) => () =>
      parseGatewayConfig(
        {
          lightning: 'dev',
          services: [{ name: 'tools', upstream: 'http://127.0.0.1:1', mcp }],
        },
        { env: {} },
      );
    expect(parse({ tools: { get_forecast: 'ten' } })).toThrow(
      /services\[0\]\.mcp\.tools\.get_forecast: /,
    );
    expect(parse({ tools: {} })).toThrow(/services\[0\]\.mcp\.tools: must name at least one tool/);
    expect(parse({ tools: { a: '1 sat' }, freeTools: ['a'] })).toThrow(
      /services\[0\]\.mcp\.freeTools\[0\]: "a" is also priced/,
    );
    expect(parse({ tools: { a: '1 sat' }, extra: 1 })).toThrow(/services\[0\]\.mcp/);
  });
});
