// `tollway mcp` driven by a real MCP client: over stdio as a child process (the built CLI), and
// in-process over Streamable HTTP. The paid API is Tollway's own paywall behind the node adapter on
// loopback; its node and the agent's wallets are on one dev Lightning node, the agents reaching it
// over its HTTP API.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { wrapBackend } from '@tollway/sdk/lightning';
import {
  createDevNetwork,
  createDevServer,
  createDevWallet,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { type PaidRequest, withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, openAgent } from '../../src/mcp/agent.js';
import { type McpHttpServer, serveHttp } from '../../src/mcp/server.js';
import { runCli } from '../run-cli.js';

const BIN = new URL('../../bin/tollway.js', import.meta.url).pathname;
const FUNDS = 1_000_000_000n;
const PNG = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) % 256);

let network: DevNetwork;
let devServer: DevServer;
let api: Server;
let base: string;
const dir = mkdtempSync(join(tmpdir(), 'tollway-mcp-'));

async function echo(req: PaidRequest, res: ServerResponse): Promise<void> {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, protocol: req.payment.protocol }));
}

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  devServer = await createDevServer({ network, port: 0 });
  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
    sessions: { idleTimeout: 600 },
  });
  const paid = new Map([
    [
      '/forecast',
      withPaywall(
        paywall,
        paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' }),
        echo,
      ),
    ],
    ['/other', withPaywall(paywall, paywall.route({ service: 'other', price: '10 sat' }), echo)],
    [
      '/calls',
      withPaywall(
        paywall,
        paywall.route({ service: 'calls', price: '10 sat', balance: '50 sat' }),
        echo,
      ),
    ],
    [
      '/pricey',
      withPaywall(paywall, paywall.route({ service: 'pricey', price: '1500 sat' }), echo),
    ],
  ]);
  api = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    const handler = paid.get(path);
    if (handler !== undefined) void handler(req, res);
    else if (path === '/big')
      res.writeHead(200, { 'content-type': 'text/plain' }).end('a'.repeat(100_000));
    else if (path === '/png') res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});

afterAll(async () => {
  api?.closeAllConnections();
  await new Promise((resolve) => api?.close(resolve));
  await devServer?.close();
  network?.close();
});

/** A funded dev wallet reached over the dev node's HTTP API, and what it has spent. */
async function newWallet(name: string) {
  const created = await createDevWallet({
    url: devServer.url,
    adminToken: network.adminToken,
    name,
    balanceMsat: FUNDS,
  });
  return {
    connection: created.connectionString,
    spent: () => FUNDS - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const first = result.content[0];
  return {
    result,
    isError: result.isError === true,
    text: first?.type === 'text' ? first.text : '',
    data: (result.structuredContent ?? {}) as Record<string, unknown>,
  };
}

/**
 * The agent's story, for either transport. The agent runs with `--max-cost 100 --max-fee 10
 * --budget-day 25`: 10 sat spent leaves 15 sat, less than the 20 sat a 10 sat payment holds.
 */
async function payWithinBudget(client: Client, spent: () => bigint): Promise<void> {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual([
    'budget',
    'discover',
    'fetch',
    'payments',
    'quote',
  ]);
  const fetchTool = tools.find((t) => t.name === 'fetch');
  expect(fetchTool?.description).toContain('per-request cap (100 sat)');
  expect(fetchTool?.inputSchema.properties).toHaveProperty('max_cost');

  const quote = await call(client, 'quote', { url: `${base}/forecast` });
  expect(quote.isError).toBe(false);
  expect(quote.data).toMatchObject({
    status: 402,
    payment_required: true,
    would_pay: { protocol: 'l402', amount: '10 sat' },
    verdict: expect.stringContaining('would pay 10 sat'),
  });
  expect(quote.data.offers).toContainEqual(
    expect.objectContaining({ protocol: 'l402', amount: '10 sat' }),
  );
  expect(spent()).toBe(0n);
  expect((await call(client, 'payments')).data.payments).toEqual([]);

  const first = await call(client, 'fetch', {
    url: `${base}/forecast`,
    agent: 'scout',
    task: 'weather',
  });
  expect(first.isError).toBe(false);
  expect(first.data).toMatchObject({
    status: 200,
    headers: { 'content-type': 'application/json' },
    payment: { protocol: 'l402', amount: '10 sat', fee: '0 sat' },
  });
  const { proof, payment_hash } = first.data.payment as { proof: string; payment_hash: string };
  expect(createHash('sha256').update(Buffer.from(proof, 'hex')).digest('hex')).toBe(payment_hash);
  const body = first.result.content[1];
  expect(body?.type === 'text' && JSON.parse(body.text)).toEqual({
    path: '/forecast',
    protocol: 'l402',
  });
  expect(spent()).toBe(10_000n);

  const second = await call(client, 'fetch', { url: `${base}/forecast` });
  expect(second.data).toMatchObject({ status: 200, payment: null });
  expect(second.data.payment_note).toContain('reused');
  expect(spent()).toBe(10_000n);

  const pricey = await call(client, 'fetch', { url: `${base}/pricey` });
  expect(pricey.isError).toBe(true);
  expect(pricey.text).toMatch(
    /^over_price: this costs 1500 sat, above your per-request cap of 100 sat; nothing was paid\. .*--max-cost/,
  );
  // The forecast token is cached for the whole origin: fetch tries it first.
  expect((await call(client, 'quote', { url: `${base}/pricey` })).data).toMatchObject({
    cached_credential: true,
    verdict: expect.stringMatching(
      /credential bought earlier .* if it does not, fetch would refuse: over_price, 1500 sat is above the cap of 100 sat$/,
    ),
  });
  const capped = await call(client, 'fetch', { url: `${base}/other`, max_cost: 5 });
  expect(capped.text).toMatch(
    /^over_price: this costs 10 sat, above the max_cost of 5 sat you gave/,
  );
  const over = await call(client, 'fetch', { url: `${base}/other` });
  expect(over.isError).toBe(true);
  expect(over.text).toMatch(/^budget_exceeded: the day budget has 15 sat left, .*--budget-day/);
  expect(spent()).toBe(10_000n);

  const budget = await call(client, 'budget');
  expect(budget.data).toMatchObject({
    per_request_cap: '100 sat',
    max_fee: '10 sat',
    windows: [
      { window: 'day', limit: '25 sat', spent: '10 sat', held: '0 sat', remaining: '15 sat' },
    ],
    payments_disabled: false,
    wallet_balance: `${(FUNDS - 10_000n) / 1000n} sat`,
  });

  const payments = await call(client, 'payments');
  expect(payments.data.payments).toEqual([
    expect.objectContaining({
      url: `${base}/forecast`,
      origin: base,
      protocol: 'l402',
      amount: '10 sat',
      status: 'succeeded',
      kind: 'purchase',
      tags: { via: 'mcp', agent: 'scout', task: 'weather' },
      payment_hash,
      proof,
    }),
  ]);
  expect((await call(client, 'payments', { by: 'task' })).data.spend).toEqual([
    {
      key: 'weather',
      purchases: 1,
      paid: '10 sat',
      fees: '0 sat',
      refunded: '0 sat',
      net: '10 sat',
      requests_charged: 0,
      charged: '0 sat',
      unsettled_at_most: '0 sat',
      released: 0,
    },
  ]);
  expect(payments.data.totals).toEqual([
    { origin: base, payments: 1, amount: '10 sat', fee: '0 sat' },
  ]);
  expect(
    (await call(client, 'payments', { since: '1h', origin: `${base}/forecast` })).data.payments,
  ).toHaveLength(1);
  expect((await call(client, 'payments', { status: 'failed' })).data.payments).toEqual([]);
  expect(
    (await call(client, 'payments', { origin: 'https://elsewhere.example' })).data.payments,
  ).toEqual([]);
  expect((await call(client, 'payments', { since: 'yesterday' })).isError).toBe(true);
}

const AGENT_FLAGS = ['--max-cost', '100', '--max-fee', '10', '--budget-day', '25'];

describe('tollway mcp over stdio (child process of the built CLI)', () => {
  it('pays within the budget, reuses the credential, refuses over budget, and exits when the host goes', async () => {
    const wallet = await newWallet('mcp-stdio');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', ...AGENT_FLAGS],
      env: {
        ...getDefaultEnvironment(),
        TOLLWAY_WALLET: wallet.connection,
        TOLLWAY_AGENT_DB: join(dir, 'stdio.sqlite'),
      },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(transport);
    expect(client.getInstructions()).toContain('402');
    await payWithinBudget(client, wallet.spent);
    // The client ends stdin, and sends SIGTERM only if the process is still there 2 s later.
    await client.close();
    expect(stderr).toContain('tollway mcp: the client closed stdin; stopping');
    expect(stderr).toContain(
      'tollway mcp: serving on stdio (wallet dev on regtest; at most 100 sat per request)',
    );
  });
});

describe('tollway mcp over Streamable HTTP (in process)', () => {
  let agent: Agent;
  let http: McpHttpServer;
  let client: Client;
  let wallet: Awaited<ReturnType<typeof newWallet>>;

  beforeAll(async () => {
    wallet = await newWallet('mcp-http');
    agent = await openAgent({
      wallet: wallet.connection,
      db: join(dir, 'http.sqlite'),
      maxCostMsat: 100_000n,
      maxFeeMsat: 10_000n,
      windows: { day: 25_000n },
      timeoutMs: 10_000,
    });
    http = await serveHttp(agent, 0);
    client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(http.url)));
  });
  afterAll(async () => {
    await client?.close();
    await http?.close();
    await agent?.close();
  });

  it('pays within the budget, reuses the credential and refuses over budget', async () => {
    await payWithinBudget(client, wallet.spent);
    expect((await agent.store.list()).map((e) => e.tags)).toEqual([
      { via: 'mcp', agent: 'scout', task: 'weather' },
    ]);
  });

  it('refuses to pay while the agent store is paused (the kill switch of the ledger view), and says so', async () => {
    const before = wallet.spent();
    const entries = (await agent.store.list()).length;
    await agent.store.setPaused(true);
    try {
      const paused = await call(client, 'fetch', { url: `${base}/other` });
      expect(paused.isError).toBe(true);
      expect(paused.text).toMatch(
        /^payments_paused: the user paused every payment of this agent; nothing was paid\. .*tollway ledger --serve/,
      );
      expect((await call(client, 'quote', { url: `${base}/other` })).data.budget).toMatchObject({
        ok: false,
        code: 'payments_paused',
      });
      expect((await call(client, 'budget')).data.payments_disabled).toBe(true);
      expect(wallet.spent()).toBe(before);
      expect(await agent.store.list()).toHaveLength(entries);
    } finally {
      await agent.store.setPaused(false);
    }
    expect((await call(client, 'budget')).data.payments_disabled).toBe(false);
  });

  it('bounds bodies: cuts long text with a note, returns small binary as base64', async () => {
    const big = await call(client, 'fetch', { url: `${base}/big` });
    expect(big.data).toMatchObject({
      status: 200,
      payment: null,
      body_bytes: 65_536,
      body_truncated: true,
    });
    expect(big.data.body_note).toContain('cut after 65536 bytes');
    const text = big.result.content[1];
    expect(text?.type === 'text' && text.text).toBe('a'.repeat(65_536));
    const png = await call(client, 'fetch', { url: `${base}/png` });
    expect(png.data).toMatchObject({ body_bytes: 1024, body_truncated: false });
    expect(Buffer.from(String(png.data.body_base64), 'base64')).toEqual(Buffer.from(PNG));
    expect(png.result.content).toHaveLength(1);
  });

  it('answers bad input and unreachable servers with tool errors, not protocol errors', async () => {
    const file = await call(client, 'fetch', { url: 'file:///etc/passwd' });
    expect(file.isError).toBe(true);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await call(client, 'fetch', { url: `http://127.0.0.1:${port}/` });
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(/^fetch_failed: fetch failed: .*ECONNREFUSED/);
    expect(refused.data).toEqual({ error: { code: 'fetch_failed', message: expect.any(String) } });
  });

  it('refuses requests a web page could send: a foreign Origin or Host', async () => {
    const init = {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    };
    const foreign = await fetch(http.url, {
      ...init,
      headers: { ...init.headers, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    // fetch cannot send another Host; node:http can, as a DNS-rebinding page's browser would.
    const url = new URL(http.url);
    const rebound = await new Promise<number>((resolve, reject) => {
      request(
        url,
        { method: 'POST', headers: { ...init.headers, host: `evil.example:${url.port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
        .on('error', reject)
        .end(init.body);
    });
    expect(rebound).toBe(403);
    expect((await fetch(http.url)).status).toBe(405);
  });
});

describe('tollway mcp over Streamable HTTP with a token', () => {
  it('refuses calls without the bearer token and serves those with it', async () => {
    const wallet = await newWallet('mcp-token');
    const agent = await openAgent({
      wallet: wallet.connection,
      db: join(dir, 'token.sqlite'),
      maxCostMsat: 100_000n,
      maxFeeMsat: 10_000n,
      windows: {},
      timeoutMs: 10_000,
    });
    const http = await serveHttp(agent, 0, { token: 's3cret-token' });
    try {
      const list = (authorization?: string) =>
        fetch(http.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...(authorization === undefined ? {} : { authorization }),
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        });
      expect((await list()).status).toBe(401);
      expect((await list('Bearer wrong-token!')).status).toBe(401);
      const client = new Client({ name: 'test-host', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(http.url), {
          requestInit: { headers: { authorization: 'Bearer s3cret-token' } },
        }),
      );
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toContain('fetch');
      await client.close();
    } finally {
      await http.close();
      await agent.close();
    }
  });
});

describe('tollway mcp usage', () => {
  it('exits 64 without a wallet or with a malformed amount, 1 when the wallet cannot be reached', async () => {
    expect((await runCli('mcp', '--wallet', '')).code).toBe(64);
    const bad = await runCli(
      'mcp',
      '--wallet',
      'dev+http://127.0.0.1:1?wallet=x&token=00',
      '--max-cost',
      'lots',
    );
    expect([bad.code, bad.stderr]).toEqual([
      64,
      expect.stringContaining('--max-cost: not an amount'),
    ]);
    const dollars = await runCli(
      'mcp',
      '--wallet',
      'dev+http://127.0.0.1:1?wallet=x&token=00',
      '--budget-day',
      '$1',
    );
    expect([dollars.code, dollars.stderr]).toEqual([
      64,
      expect.stringContaining('--budget-day takes sats, not dollars'),
    ]);
    const unreachable = await runCli(
      'mcp',
      '--wallet',
      'dev+http://127.0.0.1:1?wallet=x&token=00',
      '--db',
      join(dir, 'none.sqlite'),
    );
    expect([unreachable.code, unreachable.stderr]).toEqual([
      1,
      expect.stringContaining('backend_unavailable'),
    ]);
    const x402 = await runCli(
      'mcp',
      '--wallet',
      'dev+http://127.0.0.1:1?wallet=x&token=00',
      '--prefer',
      'x402',
    );
    expect([x402.code, x402.stderr]).toEqual([
      64,
      expect.stringContaining('--prefer x402: give --evm-key'),
    ]);
  });

  it('exits 64 on a bad EVM key, asset, rate, RPC endpoint or call count, as tollway fetch does', async () => {
    const key = ['--evm-key', `0x${'22'.repeat(32)}`];
    const asset = ['--evm-asset', `eip155:31337:0x${'33'.repeat(20)}`];
    const rate = ['--usd-per-btc', '100000'];
    const db = ['--db', join(dir, 'evm-usage.sqlite')];
    const refused = async (args: string[], message: string) => {
      const run = await runCli('mcp', ...args, ...db);
      expect([run.code, run.stderr]).toEqual([64, expect.stringContaining(message)]);
    };
    await refused(['--evm-key', 'zz', ...asset, ...rate], '--evm-key: ');
    await refused([...key, ...rate], '--evm-key needs at least one --evm-asset');
    await refused([...key, '--evm-asset', '0xabc', ...rate], '--evm-asset takes');
    await refused([...key, ...asset, '--usd-per-btc', 'lots'], '--usd-per-btc takes');
    await refused([...key, ...asset], '--evm-key needs --usd-per-btc');
    await refused(['--evm-key', 'env:TOLLWAY_NO_SUCH_VAR', ...asset, ...rate], 'is not set');
    await refused(['--evm-rpc', 'http://127.0.0.1:8545', ...asset], '--evm-rpc needs --evm-key');
    await refused(
      [...key, ...asset, ...rate, '--evm-rpc', 'ws://x'],
      '--evm-rpc takes an http(s) URL',
    );
    await refused(
      [...key, ...asset, ...rate, '--expect-calls', '0'],
      '--expect-calls takes a whole number of calls',
    );
    await refused([], 'name a wallet with --wallet');
  });

  it('--prefer mpp-session pays a session, draws on it, and closes it with its refund on shutdown', async () => {
    const wallet = await newWallet('mcp-session');
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--prefer', 'mpp-session'],
        env: {
          ...getDefaultEnvironment(),
          TOLLWAY_WALLET: wallet.connection,
          TOLLWAY_AGENT_DB: join(dir, 'session.sqlite'),
        },
      }),
    );
    const first = await call(client, 'fetch', { url: `${base}/calls` });
    expect(first.data).toMatchObject({ status: 200, payment: { protocol: 'mpp-session' } });
    const second = await call(client, 'fetch', { url: `${base}/calls` });
    expect(second.data).toMatchObject({ status: 200, payment: null });
    expect(wallet.spent()).toBe(50_000n);
    // The host goes: the session is closed and its 30 sat unspent come back.
    await client.close();
    expect(wallet.spent()).toBe(20_000n);
  });

  it('--prefer mpp pays the MPP offer of a 402 that also offers L402', async () => {
    const wallet = await newWallet('mcp-prefer');
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--prefer', 'mpp'],
        env: {
          ...getDefaultEnvironment(),
          TOLLWAY_WALLET: wallet.connection,
          TOLLWAY_AGENT_DB: join(dir, 'prefer.sqlite'),
        },
      }),
    );
    try {
      const paid = await call(client, 'fetch', { url: `${base}/other` });
      expect(paid.data).toMatchObject({ status: 200, payment: { protocol: 'mpp' } });
    } finally {
      await client.close();
    }
  });
});
