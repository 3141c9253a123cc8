// x402 over MCP (transports-v2/mcp.md) through the gateway, on a real chain (anvil with TestUSDC)
// and real MCP servers (one answering POSTs with SSE, one with JSON): an unpaid priced tools/call
// gets the payment-required tool result; a stock MCP client whose fetch is Tollway's paying fetch
// pays it through `_meta` and gets the output with the settlement; replays, failing tools, forged
// payments, free tools, and `_meta` payments in http mode.
import { gzipSync } from 'node:zlib';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { fixedRate } from '@tollway/sdk';
import { createMemoryClientStore, createPayingFetch, type X402Offer } from '@tollway/sdk/client';
import {
  createEvmWallet,
  parsePaymentRequiredHeader,
  readMcpPaymentRequired,
} from '@tollway/sdk/x402';
import { createWalletClient, type Hex, http as httpTransport, parseSignature } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startTestChain, testUsdcAbi } from '../../../sdk/test/support/chain.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startUpstream, type Upstream } from './support.js';
import { payerAndPayTo, startX402Gateway, type X402Gateway } from './x402-gateway.js';

const PRICE = 10_000n; // $0.01 in TestUSDC base units

const chain = await startTestChain();
afterAll(() => chain?.close());

type Payment = { payload: { authorization: { from: string; nonce: string } } };

describe.skipIf(chain === undefined)('gateway: x402 over MCP', () => {
  const c = chain!;
  let upstream: Upstream;
  let started: X402Gateway;
  let gateway: Gateway;
  /** The payment the `raced` tool submits on chain itself. */
  let frontRun: Payment | undefined;
  const deployer = createWalletClient({
    account: privateKeyToAccount(c.accounts.deployer.privateKey),
    chain: c.chain,
    transport: httpTransport(c.rpcUrl),
  });
  /** The Accept-Encoding of each request to the compressing endpoint. */
  const acceptedEncodings: string[] = [];
  /** Tool runs on the MCP servers, and the `_meta` each call arrived with. */
  const runs: Array<{ tool: string; meta: unknown }> = [];
  const wallet = createEvmWallet({
    privateKey: c.accounts.payer.privateKey,
    allowedAssets: [{ network: c.network, address: c.token }],
  });

  function createMcpServer(): McpServer {
    const server = new McpServer({ name: 'weather', version: '1.0.0' });
    server.registerTool(
      'echo',
      { description: 'Echo the text.', inputSchema: { text: z.string() } },
      ({ text }, extra) => {
        runs.push({ tool: 'echo', meta: extra._meta });
        return { content: [{ type: 'text', text }] };
      },
    );
    server.registerTool(
      'get_forecast',
      { description: 'The forecast of a city.', inputSchema: { city: z.string() } },
      ({ city }, extra) => {
        runs.push({ tool: 'get_forecast', meta: extra._meta });
        return { content: [{ type: 'text', text: `${city}: sunny` }] };
      },
    );
    server.registerTool('broken', { description: 'Always fails.' }, (extra) => {
      runs.push({ tool: 'broken', meta: extra._meta });
      return { content: [{ type: 'text', text: 'the tool failed' }], isError: true };
    });
    server.registerTool(
      'raced',
      { description: 'Its payment is spent while it runs.' },
      async () => {
        // Someone else submits the authorization first: the gateway's settlement must then fail.
        const { payload } = frontRun as Payment & { payload: { signature: Hex } };
        const { from, to, value, validAfter, validBefore, nonce } = payload.authorization as {
          [member in 'from' | 'to' | 'value' | 'validAfter' | 'validBefore' | 'nonce']: Hex;
        };
        const { v, r, s } = parseSignature(payload.signature);
        const hash = await deployer.writeContract({
          address: c.token,
          abi: testUsdcAbi,
          functionName: 'transferWithAuthorization',
          args: [
            from,
            to,
            BigInt(value),
            BigInt(validAfter),
            BigInt(validBefore),
            nonce,
            Number(v),
            r,
            s,
          ],
        });
        await c.client.waitForTransactionReceipt({ hash });
        return { content: [{ type: 'text', text: 'the secret output' }] };
      },
    );
    return server;
  }

  beforeAll(async () => {
    upstream = await startUpstream(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body: unknown =
        chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString());
      if ((req.url ?? '').startsWith('/gz')) {
        // A hand-written endpoint that compresses whenever the client accepts it.
        acceptedEncodings.push(req.headers['accept-encoding'] ?? '');
        const { id } = body as { id: number };
        const answer = JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } });
        const gzip = (req.headers['accept-encoding'] ?? '').includes('gzip');
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        });
        res.end(gzip ? gzipSync(answer) : answer);
        return;
      }
      const server = createMcpServer();
      const transport = new StreamableHTTPServerTransport({
        enableJsonResponse: (req.url ?? '').startsWith('/json'),
      });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    });
    const mcp = (paymentRequired: string) => ({
      tools: { get_forecast: '$0.01', broken: '$0.01', raced: '$0.01' },
      freeTools: ['echo'],
      paymentRequired,
    });
    started = await startX402Gateway(c, {
      services: [
        { name: 'sse', path: '/sse', upstream: upstream.url, mcp: mcp('tool-result') },
        { name: 'json', path: '/json', upstream: upstream.url, mcp: mcp('tool-result') },
        { name: 'http', path: '/http', upstream: upstream.url, mcp: mcp('http') },
        {
          name: 'dear',
          path: '/dear',
          upstream: upstream.url,
          mcp: { tools: { get_forecast: '$0.02' } },
        },
        { name: 'gz', path: '/gz', upstream: upstream.url, mcp: mcp('tool-result') },
      ],
    });
    gateway = started.gateway;
  });
  afterAll(async () => {
    await started?.close();
    await upstream?.close();
  });

  const balances = () => payerAndPayTo(c);

  async function connect(path: string, fetch: typeof globalThis.fetch = globalThis.fetch) {
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}${path}`), { fetch }),
    );
    return client;
  }

  function text(result: unknown): string | undefined {
    const [first] = (result as CallToolResult).content;
    return first?.type === 'text' ? first.text : undefined;
  }

  /** A payment of the first offer of a payment-required result, signed by the payer's wallet. */
  async function sign(result: unknown): Promise<Payment> {
    const structured = (result as CallToolResult).structuredContent as {
      accepts: Array<Record<string, string | number | object>>;
    };
    const accept = structured.accepts[0] as Record<string, string | number | object>;
    const offer = {
      protocol: 'x402',
      x402Version: 2,
      scheme: accept.scheme,
      network: accept.network,
      asset: accept.asset,
      amount: BigInt(accept.amount as string),
      payTo: accept.payTo,
      maxTimeoutSeconds: accept.maxTimeoutSeconds,
      requirement: accept,
    } as X402Offer;
    const signed = await wallet.sign(offer);
    return JSON.parse(Buffer.from(signed.header.value, 'base64').toString('utf8')) as Payment;
  }

  function settledOnChain(payment: Payment): Promise<unknown> {
    const { from, nonce } = payment.payload.authorization;
    return c.client.readContract({
      address: c.token,
      abi: testUsdcAbi,
      functionName: 'authorizationState',
      args: [from, nonce],
    });
  }

  const forecast = (payment?: Payment) => ({
    name: 'get_forecast',
    arguments: { city: 'Oslo' },
    ...(payment === undefined ? {} : { _meta: { 'x402/payment': payment } }),
  });

  it.each(['/sse', '/json'])(
    'answers an unpaid priced call with the payment-required tool result (%s upstream)',
    async (path) => {
      const client = await connect(path);
      try {
        const calls = runs.length;
        const result = await client.callTool(forecast());
        expect(result.isError).toBe(true);
        const structured = result.structuredContent as Record<string, unknown>;
        expect(structured).toMatchObject({
          x402Version: 2,
          error: 'Payment required',
          resource: { url: 'mcp://tool/get_forecast', mimeType: 'application/json' },
          accepts: [
            {
              scheme: 'exact',
              network: c.network,
              amount: PRICE.toString(),
              asset: c.token,
              payTo: c.accounts.payTo.address,
              extra: c.tokenDomain,
            },
          ],
        });
        expect(JSON.parse(text(result) ?? '')).toEqual(structured);
        expect(readMcpPaymentRequired(result)?.accepts[0]?.amount).toBe(PRICE);
        expect(runs.length).toBe(calls);
      } finally {
        await client.close();
      }
    },
  );

  it.each(['/sse', '/json'])(
    "is paid by a stock MCP client on Tollway's paying fetch, money moved on chain (%s upstream)",
    async (path) => {
      const store = createMemoryClientStore();
      const pay = createPayingFetch({
        wallets: [],
        store,
        preferences: ['x402'],
        x402: { wallet, rates: fixedRate('100000') },
      });
      const client = await connect(path, pay);
      try {
        const before = await balances();
        const result = await client.callTool(forecast());
        expect(result.isError).toBeFalsy();
        expect(text(result)).toBe('Oslo: sunny');
        const receipt = result._meta?.['x402/payment-response'] as Record<string, unknown>;
        expect(receipt).toMatchObject({
          success: true,
          network: c.network,
          payer: c.accounts.payer.address,
        });
        expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);
        expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
        // The upstream never sees the payment.
        expect(runs.at(-1)).toEqual({ tool: 'get_forecast', meta: undefined });
        const ledger = await store.list({ kind: 'purchase' });
        expect(ledger).toHaveLength(1);
        expect(ledger[0]).toMatchObject({
          protocol: 'x402',
          status: 'succeeded',
          amount: PRICE,
          proof: receipt.transaction,
        });
        // And the charge the answer's receipt stated: the payment, spent.
        expect(await store.list({ kind: 'draw' })).toEqual([
          expect.objectContaining({ protocol: 'x402', amount: PRICE, account: ledger[0]?.account }),
        ]);
      } finally {
        await client.close();
      }
    },
  );

  it('takes one payment once: a replay is refused, and of concurrent duplicates one passes', async () => {
    const client = await connect('/sse');
    try {
      const payment = await sign(await client.callTool(forecast()));
      const before = await balances();
      const first = await client.callTool(forecast(payment));
      expect(text(first)).toBe('Oslo: sunny');
      const replay = await client.callTool(forecast(payment));
      expect(replay.isError).toBe(true);
      // Settled, the nonce is spent on chain too: the facilitator refuses it before the claim.
      expect(readMcpPaymentRequired(replay)?.error).toMatch(
        /^(credential_replayed: |x402_payment_invalid: .*nonce_already_used)/,
      );
      expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);

      const twice = await sign(await client.callTool(forecast()));
      const results = await Promise.all([1, 2, 3, 4].map(() => client.callTool(forecast(twice))));
      expect(results.filter((result) => !result.isError).map(text)).toEqual(['Oslo: sunny']);
      // The others lost the claim of the nonce: the paywall's, or the facilitator's when the
      // winner's settlement had begun before their check.
      const refusals = results.map((result) => readMcpPaymentRequired(result)?.error);
      expect(
        refusals.filter((error) =>
          /^(credential_replayed: |x402_payment_invalid: .*nonce_already_used)/.test(error ?? ''),
        ),
      ).toHaveLength(3);
      expect(await balances()).toEqual([before[0] - 2n * PRICE, before[1] + 2n * PRICE]);
    } finally {
      await client.close();
    }
  });

  it('does not charge for a tool that returns isError: the authorization stays unsettled', async () => {
    const client = await connect('/json');
    try {
      const unpaid = await client.callTool({ name: 'broken', arguments: {} });
      const payment = await sign(unpaid);
      const before = await balances();
      const result = await client.callTool({
        name: 'broken',
        arguments: {},
        _meta: { 'x402/payment': payment },
      });
      expect(result.isError).toBe(true);
      expect(text(result)).toBe('the tool failed');
      expect(result._meta?.['x402/payment-response']).toBeUndefined();
      expect(runs.at(-1)?.tool).toBe('broken');
      expect(await balances()).toEqual(before);
      expect(await settledOnChain(payment)).toBe(false);
    } finally {
      await client.close();
    }
  });

  it('withholds the tool output when settlement fails, and says why in the result', async () => {
    const client = await connect('/sse');
    try {
      const unpaid = await client.callTool({ name: 'raced', arguments: {} });
      frontRun = await sign(unpaid);
      const result = await client.callTool({
        name: 'raced',
        arguments: {},
        _meta: { 'x402/payment': frontRun },
      });
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result)).not.toContain('the secret output');
      expect(readMcpPaymentRequired(result)).toMatchObject({
        error: expect.stringMatching(/^x402_settlement_failed: /),
        resource: { url: 'mcp://tool/raced' },
      });
      const structured = result.structuredContent as Record<string, unknown>;
      expect(structured['x402/payment-response']).toMatchObject({
        success: false,
        transaction: '',
        network: c.network,
        errorReason: expect.any(String),
      });
      expect(JSON.parse(text(result) ?? '')).toEqual(result.structuredContent);
      // Spent once, by the front-runner.
      expect(await settledOnChain(frontRun)).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('answers a forged or malformed payment with a typed payment-required result, never a 500', async () => {
    const client = await connect('/sse');
    try {
      const payment = await sign(await client.callTool(forecast()));
      const before = await balances();
      const forged = {
        ...payment,
        payload: {
          ...payment.payload,
          authorization: { ...payment.payload.authorization, nonce: `0x${'11'.repeat(32)}` },
        },
      };
      const refused = await client.callTool(forecast(forged as Payment));
      expect(readMcpPaymentRequired(refused)?.error).toMatch(/^x402_payment_invalid: /);
      for (const junk of [{ x402Version: 2 }, 'not a payment', null]) {
        const result = await client.callTool(forecast(junk as unknown as Payment));
        expect(readMcpPaymentRequired(result)?.error).toMatch(/^invalid_x402_payload: /);
      }
      const raw = await fetch(`${gateway.url}/json`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 'x',
          method: 'tools/call',
          params: { ...forecast(), _meta: { 'x402/payment': [1, 2] } },
        }),
      });
      expect(raw.status).toBe(200);
      const answer = (await raw.json()) as { id: string; result: CallToolResult };
      expect(answer.id).toBe('x');
      expect(readMcpPaymentRequired(answer.result)?.error).toMatch(/^invalid_x402_payload: /);
      expect(await balances()).toEqual(before);
      expect(await settledOnChain(payment)).toBe(false);
    } finally {
      await client.close();
    }
  });

  it('keeps tools/list and free tools free, even with a payment attached', async () => {
    const client = await connect('/sse');
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual([
        'broken',
        'echo',
        'get_forecast',
        'raced',
      ]);
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('hi');
      const payment = await sign(await client.callTool(forecast()));
      const before = await balances();
      const echoed = await client.callTool({
        name: 'echo',
        arguments: { text: 'free' },
        _meta: { 'x402/payment': payment },
      });
      expect(text(echoed)).toBe('free');
      expect(echoed._meta).toBeUndefined();
      expect(runs.at(-1)).toEqual({ tool: 'echo', meta: undefined });
      expect(await balances()).toEqual(before);
      // Unused there, the payment still pays for a priced call.
      expect(text(await client.callTool(forecast(payment)))).toBe('Oslo: sunny');
      expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
    } finally {
      await client.close();
    }
  });

  it('asks the upstream for an uncompressed answer, so that a paid one can be read and settled', async () => {
    const client = await connect('/sse');
    let payment: Payment;
    try {
      payment = await sign(await client.callTool(forecast()));
    } finally {
      await client.close();
    }
    const before = await balances();
    const response = await fetch(`${gateway.url}/gz`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'accept-encoding': 'gzip',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 5,
        method: 'tools/call',
        params: forecast(payment),
      }),
    });
    expect(response.status).toBe(200);
    const { result } = (await response.json()) as { result: CallToolResult };
    expect(result._meta?.['x402/payment-response']).toMatchObject({ success: true });
    expect(acceptedEncodings).toEqual(['identity']);
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  it("in http mode offers x402 at the tool's price in the 402, paid by a stock MCP client on Tollway's paying fetch", async () => {
    const unpaid = (path: string) =>
      fetch(`${gateway.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: forecast() }),
      });
    for (const [path, amount] of [
      ['/http', PRICE],
      ['/dear', 2n * PRICE],
    ] as const) {
      const response = await unpaid(path);
      expect(response.status).toBe(402);
      const required = parsePaymentRequiredHeader(response.headers.get('payment-required') ?? '');
      expect(required.accepts).toEqual([
        {
          scheme: 'exact',
          network: c.network,
          asset: c.token,
          amount,
          payTo: c.accounts.payTo.address,
          maxTimeoutSeconds: 60,
          extra: { ...c.tokenDomain },
        },
      ]);
      const body = (await response.json()) as { offers: Array<{ protocol: string }> };
      expect(body.offers.map((offer) => offer.protocol)).toEqual(['l402', 'x402']);
    }

    const store = createMemoryClientStore();
    const pay = createPayingFetch({
      wallets: [],
      store,
      preferences: ['x402'],
      x402: { wallet, rates: fixedRate('100000') },
    });
    const client = await connect('/dear', pay);
    try {
      const before = await balances();
      const calls = runs.length;
      const result = await client.callTool(forecast());
      expect(result.isError).toBeFalsy();
      expect(text(result)).toBe('Oslo: sunny');
      expect(runs.length).toBe(calls + 1);
      expect(await balances()).toEqual([before[0] - 2n * PRICE, before[1] + 2n * PRICE]);
      const ledger = await store.list({ kind: 'purchase' });
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({
        protocol: 'x402',
        status: 'succeeded',
        amount: 2n * PRICE,
      });
      const entries = (await store.list()).length;
      // Free messages stay free on the same service.
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('hi');
      expect(await store.list()).toHaveLength(entries);
    } finally {
      await client.close();
    }
  });

  it('in http mode answers 402 to an unpaid call, and accepts a _meta payment too', async () => {
    const post = (params: unknown) =>
      fetch(`${gateway.url}/http`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params }),
      });
    const unpaid = await post(forecast());
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get('www-authenticate')).toContain('L402 macaroon=');
    await unpaid.arrayBuffer();

    const client = await connect('/sse');
    let payment: Payment;
    try {
      payment = await sign(await client.callTool(forecast()));
    } finally {
      await client.close();
    }
    const before = await balances();
    const http = await connect('/http');
    try {
      const paid = await http.callTool(forecast(payment));
      expect(text(paid)).toBe('Oslo: sunny');
      expect(paid._meta?.['x402/payment-response']).toMatchObject({ success: true });
      expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
      // A refused _meta payment gets the engine's usual answer in http mode.
      const replayed = await post(forecast(payment));
      expect(replayed.status).toBe(402);
      expect(await replayed.json()).toMatchObject({
        code: 'x402_payment_invalid',
        detail: expect.stringContaining('nonce_already_used'),
      });
    } finally {
      await http.close();
    }
  });

  it('mints no Lightning invoice for a payment-required tool result (it works with the node down)', async () => {
    const offline = await startX402Gateway(c, {
      lightningDown: true,
      paywall: { usdPerBtc: '100000' },
      services: [
        {
          name: 'sse',
          path: '/sse',
          upstream: upstream.url,
          mcp: { tools: { get_forecast: '$0.01' }, paymentRequired: 'tool-result' },
        },
        {
          name: 'http',
          path: '/http',
          upstream: upstream.url,
          mcp: { tools: { get_forecast: '$0.01' } },
        },
      ],
    });
    try {
      const client = new Client({ name: 'test-agent', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${offline.gateway.url}/sse`)),
      );
      const result = (await client.callTool(forecast())) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(result.structuredContent).toMatchObject({ accepts: [{ amount: PRICE.toString() }] });
      await client.close();
      // The http mode offers L402 and MPP too, which need an invoice: without the node, a 503.
      const unpaid = await fetch(`${offline.gateway.url}/http`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: forecast() }),
      });
      expect(unpaid.status).toBe(503);
    } finally {
      await offline.close();
    }
  });
});
