/**
 * Discovery from one config: the gateway's L402 manifest, x402 manifest and OpenAPI document,
 * each checked against its published shape (discovery-schemas.ts) and walked — every listed
 * endpoint is requested, and its 402 must say what the document says. Then the agent side:
 * `tollway discover` and the MCP `discover` tool against the gateway, and `tollway discover`
 * against an independent server of each format.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { bytesToHex } from '@tollway/sdk';
import { decodeIdentifier, parseMacaroon } from '@tollway/sdk/l402';
import { decodeInvoice } from '@tollway/sdk/lightning';
import {
  createDevNetwork,
  createDevServer,
  createDevWallet,
  type DevNetwork,
} from '@tollway/sdk/lightning/dev';
import { decodeChargeRequest, parsePaymentChallenges } from '@tollway/sdk/mpp';
import { parsePaymentRequiredHeader } from '@tollway/sdk/x402';
import { validateDiscoveryExtension } from '@x402/extensions/bazaar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayConfig, parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { openAgent } from '../../src/mcp/agent.js';
import { serveHttp } from '../../src/mcp/server.js';
import { runCli } from '../run-cli.js';
import {
  l402ManifestSchema,
  paymentInfoSchema,
  validateOpenApi31,
  x402ManifestSchema,
} from './discovery-schemas.js';
import { startUpstream, type Upstream } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** Serves `documents` (path → JSON) on loopback: an independent server of one format. */
async function serveDocuments(
  documents: Record<string, unknown>,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const document = documents[req.url ?? ''];
    res.writeHead(document === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(document === undefined ? '{}' : JSON.stringify(document));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface Offer402 {
  protocol: string;
  amount: string;
}

describe('discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-discovery-'));
  let network: DevNetwork;
  let upstream: Upstream;
  let gateway: Gateway;
  let config: GatewayConfig;
  const servers: Server[] = [];

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('payer');
    upstream = await startUpstream((_req, res) => {
      res.end('ok');
    });
    config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        paywall: { usdPerBtc: '100000', rateLimits: { challenges: false } },
        discovery: { name: 'Weather and friends' },
        x402: {
          network: 'eip155:8453',
          asset: {
            address: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
            decimals: 6,
            name: 'USD Coin',
            version: '2',
          },
          payTo: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
          // Never called: discovery and 402s price without the facilitator.
          facilitator: { url: 'http://127.0.0.1:9' },
        },
        services: [
          {
            name: 'weather',
            path: '/weather',
            upstream: upstream.url,
            price: '$0.01',
            description: 'Forecasts',
          },
          {
            name: 'loop',
            path: '/looprpc.SwapServer/',
            upstream: upstream.url,
            price: '10 sat',
            grpc: { methods: { '/looprpc.SwapServer/LoopOut': '100 sat' } },
            x402: false,
          },
          {
            name: 'llm',
            path: '/v1',
            upstream: upstream.url,
            price: '50 sat',
            pricing: [
              { path: '/v1/cheap', method: 'POST', price: '5 sat' },
              { field: 'model', prices: { small: '1 sat' } },
            ],
            x402: false,
          },
          {
            name: 'prepaid',
            path: '/prepaid',
            upstream: upstream.url,
            price: '1 sat',
            balance: '20 sat',
          },
          {
            name: 'chat',
            path: '/chat',
            upstream: upstream.url,
            balance: '50 sat',
            llm: { models: { small: { input: '100 sat', output: '400 sat' } } },
            x402: false,
          },
          { name: 'open', path: '/open', upstream: upstream.url, auth: 'off' },
        ],
      },
      { env: {} },
    );
    gateway = await createGateway({
      config,
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    for (const server of servers) server.close();
    network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const json = async (path: string) => {
    const response = await fetch(`${gateway.url}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    return response.json();
  };

  interface OpenApiOperation {
    'x-payment-info': unknown;
    requestBody?: { content: { 'application/json': { example: unknown } } };
  }
  type OpenApi = { paths: Record<string, Record<string, OpenApiOperation>> };

  /** The example body the OpenAPI document gives an operation, as a request body. */
  function exampleBody(document: OpenApi, method: string, path: string): string | null {
    const operation = document.paths[path]?.[method.toLowerCase()];
    const example = operation?.requestBody?.content['application/json'].example;
    return example === undefined ? null : JSON.stringify(example);
  }

  /** The 402 of one endpoint: its status, body offers and x402 header. */
  async function requestListed(method: string, path: string, example: string | null = null) {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      body: example,
      ...(example === null ? {} : { headers: { 'content-type': 'application/json' } }),
    });
    const body = (await response.json()) as { offers: Offer402[] };
    return { response, body };
  }

  it('serves an L402 manifest of the published shape, each fixed price the invoice of its 402', async () => {
    const manifest = l402ManifestSchema.parse(await json('/.well-known/l402.json'));
    const openapi = (await json('/openapi.json')) as OpenApi;
    expect(manifest.provider.name).toBe('Weather and friends');
    const listed = manifest.services.flatMap((service) =>
      service.resources.map((resource) => ({ service: service.name, ...resource })),
    );
    expect(listed.map((resource) => `${resource.method} ${resource.path}`)).toEqual([
      'GET /weather',
      'POST /looprpc.SwapServer/LoopOut',
      'POST /looprpc.SwapServer/',
      'POST /v1/cheap',
      'GET /v1',
      'GET /prepaid',
      'POST /chat',
    ]);
    for (const resource of listed) {
      const method = resource.method ?? 'GET';
      const example = exampleBody(openapi, method, resource.path);
      const { response, body } = await requestListed(method, resource.path, example);
      expect(response.status, resource.path).toBe(402);
      const l402 = body.offers.find((offer) => offer.protocol === 'l402');
      if (resource.pricing.model === 'fixed') {
        expect(l402?.amount, resource.path).toBe(String(resource.pricing.price_msat));
      }
    }
    const byPath = Object.fromEntries(listed.map((resource) => [resource.path, resource.pricing]));
    expect(byPath['/looprpc.SwapServer/LoopOut']).toEqual({ model: 'fixed', price_msat: 100_000 });
    expect(byPath['/prepaid']).toEqual({ model: 'fixed', price_msat: 20_000 });
    expect(byPath['/v1']).toEqual({ model: 'dynamic' });
    // Priced per call by its model, but its token costs the balance it sells.
    expect(byPath['/chat']).toEqual({ model: 'fixed', price_msat: 50_000 });
  });

  it('serves an x402 manifest whose accepts and Bazaar metadata are those of each 402', async () => {
    const manifest = x402ManifestSchema.parse(await json('/.well-known/x402.json'));
    // Only dollar prices have an x402 offer.
    expect(manifest.items.map((item) => new URL(item.resource).pathname)).toEqual(['/weather']);
    for (const item of manifest.items) {
      const bazaar = item.extensions?.bazaar as { info: { input: { method: string } } };
      expect(validateDiscoveryExtension(bazaar as never)).toEqual({ valid: true });
      const response = await fetch(item.resource, { method: bazaar.info.input.method });
      expect(response.status).toBe(402);
      const required = parsePaymentRequiredHeader(response.headers.get('payment-required') ?? '');
      // The header's requirements, decoded (amounts as bigint), in their wire form.
      const wire = required.accepts.map((accept) => ({ ...accept, amount: String(accept.amount) }));
      expect(item.accepts).toEqual(wire);
      expect(required.extensions?.bazaar).toEqual(bazaar);
    }
  });

  it('serves OpenAPI 3.1 with x-payment-info, each amount that of the MPP offer of the 402', async () => {
    const document = (await json('/openapi.json')) as OpenApi;
    expect(validateOpenApi31(document)).toEqual(true);
    let walked = 0;
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const info = paymentInfoSchema.parse(operation['x-payment-info']);
        const [offer] = 'offers' in info ? info.offers : [info];
        const { response } = await requestListed(
          method.toUpperCase(),
          path,
          exampleBody(document, method, path),
        );
        expect(response.status).toBe(402);
        const challenge = parsePaymentChallenges(response.headers.get('www-authenticate') ?? '')[0];
        const invoice = decodeChargeRequest(challenge?.request ?? '').invoice;
        expect(offer).toMatchObject({ intent: 'charge', method: 'lightning', currency: 'sat' });
        if (offer?.amount !== null) {
          expect(BigInt(offer?.amount ?? '') * 1000n).toBe(decodeInvoice(invoice).amountMsat);
        }
        walked += 1;
      }
    }
    expect(walked).toBe(7);
  });

  it("quotes a fresh L402 challenge in Aperture's shape, within a budget", async () => {
    const quote = await fetch(`${gateway.url}/l402/quote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        service: 'prepaid',
        max_price_msat: 20_000,
        payment_method: 'bolt11',
      }),
    });
    expect(quote.status).toBe(200);
    const body = (await quote.json()) as Record<string, unknown>;
    expect(body.price_msat).toBe(20_000);
    expect(decodeInvoice(String(body.invoice)).amountMsat).toBe(20_000n);
    expect(body.quote_expiry).toBeGreaterThan(Date.now() / 1000);
    // What lnget's quote check reads: the token commits to the invoice's payment hash.
    const macaroon = parseMacaroon(String(body.macaroon));
    expect(bytesToHex(decodeIdentifier(macaroon.identifier).paymentHash)).toBe(
      decodeInvoice(String(body.invoice)).paymentHash,
    );
    // And it is a token like the 402's: paid, it buys the service.
    const paid = await network
      .backend('payer')
      .payInvoice({ paymentRequest: String(body.invoice) });
    const bought = await fetch(`${gateway.url}/prepaid`, {
      headers: { authorization: `L402 ${body.macaroon}:${paid.preimage}` },
    });
    expect(bought.status).toBe(200);
    expect(await bought.text()).toBe('ok');
    const over = await fetch(`${gateway.url}/l402/quote`, {
      method: 'POST',
      body: JSON.stringify({ service: 'prepaid', max_price_msat: 19_999 }),
    });
    expect(over.status).toBe(409);
    expect(await over.json()).toMatchObject({
      code: 'quote_over_budget',
      error: { code: 'unsatisfiable_budget', field: 'max_price_msat' },
    });
    const unknown = await fetch(`${gateway.url}/l402/quote`, {
      method: 'POST',
      body: JSON.stringify({ service: 'open' }),
    });
    expect(unknown.status).toBe(404);
    expect((await fetch(`${gateway.url}/l402/quote`)).status).toBe(405);
  });

  it('serves only the documents its config honours, and none when discovery is off', async () => {
    const status = async (path: string, method = 'GET') =>
      (await fetch(`${gateway.url}${path}`, { method, body: method === 'POST' ? '{}' : null }))
        .status;
    try {
      await gateway.reload({ ...config, paywall: { ...config.paywall, protocols: ['mpp'] } });
      expect(await status('/.well-known/l402.json')).toBe(404);
      expect(await status('/l402/quote', 'POST')).toBe(404);
      expect(await status('/openapi.json')).toBe(200);
      // A service at the root answers the documents' paths once discovery is off.
      await gateway.reload({
        ...config,
        discovery: { enabled: false },
        services: [{ ...config.services[0], name: 'root', path: '/', auth: false }],
      } as GatewayConfig);
      const served = await fetch(`${gateway.url}/openapi.json`);
      expect(served.status).toBe(200);
      expect(await served.text()).toBe('ok');
    } finally {
      await gateway.reload(config);
    }
    // A gateway without an x402 block has no x402 document.
    const { x402: _, ...noX402 } = config;
    const lightningOnly = await createGateway({
      config: { ...noX402, dataDir: join(dir, 'lightning-only') },
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
    });
    try {
      expect((await fetch(`${lightningOnly.url}/.well-known/x402.json`)).status).toBe(404);
      expect((await fetch(`${lightningOnly.url}/.well-known/l402.json`)).status).toBe(200);
    } finally {
      await lightningOnly.close();
    }
  });

  it('`tollway discover` reads the three documents of the gateway into one list', async () => {
    const table = await runCli('discover', gateway.url);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /GET\s+\/weather\s+l402 10000 msat, x402 10000 0x8335\S+ on eip155:8453, mpp 10 sat/,
    );
    const listed = await runCli('discover', gateway.url, '--json');
    const discovery = JSON.parse(listed.stdout) as {
      endpoints: Array<{ method: string; url: string; sources: string[]; prices: unknown[] }>;
    };
    const weather = discovery.endpoints.find((endpoint) => endpoint.url.endsWith('/weather'));
    expect(weather?.sources.sort()).toEqual(['l402', 'openapi', 'x402']);
    expect(weather?.prices).toEqual([
      { protocol: 'l402', unit: 'msat', amount: '10000' },
      {
        protocol: 'x402',
        unit: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
        network: 'eip155:8453',
        amount: '10000',
      },
      { protocol: 'mpp', unit: 'sat', amount: '10' },
    ]);
  });

  it('the MCP discover tool reads them too', async () => {
    const devServer = await createDevServer({ network, port: 0 });
    const wallet = await createDevWallet({
      url: devServer.url,
      adminToken: network.adminToken,
      name: 'agent',
      balanceMsat: 0n,
    });
    const agent = await openAgent({
      wallet: wallet.connectionString,
      db: join(dir, 'agent.sqlite'),
      maxCostMsat: 100_000n,
      maxFeeMsat: 10_000n,
      windows: {},
      timeoutMs: 10_000,
    });
    const http = await serveHttp(agent, 0);
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(http.url)));
      const result = (await client.callTool({
        name: 'discover',
        arguments: { url: gateway.url },
      })) as CallToolResult;
      const data = result.structuredContent as { endpoints: Array<{ url: string }> };
      expect(data.endpoints.map((endpoint) => new URL(endpoint.url).pathname)).toContain(
        '/looprpc.SwapServer/LoopOut',
      );
    } finally {
      await client.close();
      await http.close();
      await agent.close();
      await devServer.close();
    }
  });

  it('`tollway discover` reads an independent server of each format', async () => {
    // Aperture's own manifest form: path regexps, a formula price (aperture PR #241).
    const aperture = await serveDocuments({
      '/.well-known/l402.json': {
        version: '1.0',
        provider: { name: 'loop', uri: 'https://swap.example', node_pubkey: '02ab' },
        currencies: ['msat'],
        macaroon_versions: [0],
        payment_methods: ['bolt11'],
        quote_endpoint: '/l402/quote',
        services: [
          {
            name: 'loop',
            description: 'Lightning Loop',
            tiers: [{ tier: 0, name: 'base' }],
            capabilities: [],
            resources: [
              {
                path: '^/looprpc.SwapServer/LoopOutTerms.*$',
                pricing: { model: 'fixed', price_msat: 1000 },
              },
              {
                path: '^/looprpc.SwapServer/LoopOut$',
                method: 'POST',
                pricing: { model: 'formula', base_msat: 1000, components: [] },
              },
            ],
          },
        ],
        caveats: {},
      },
    });
    // A facilitator-style discovery list: a v2 item and a v1 item (maxAmountRequired).
    const bazaar = await serveDocuments({
      '/.well-known/x402.json': {
        x402Version: 2,
        items: [
          {
            resource: 'https://api.example/v2/quote',
            type: 'http',
            x402Version: 2,
            accepts: [
              {
                scheme: 'exact',
                network: 'eip155:8453',
                amount: '2500',
                asset: '0xA',
                payTo: '0xB',
                maxTimeoutSeconds: 60,
              },
            ],
            lastUpdated: '2026-06-09T00:00:00Z',
            extensions: {
              bazaar: { info: { input: { type: 'http', method: 'POST' } }, schema: {} },
            },
          },
          {
            resource: 'https://api.example/v1/data',
            type: 'http',
            x402Version: 1,
            accepts: [
              {
                scheme: 'exact',
                network: 'base',
                maxAmountRequired: '100',
                asset: '0xA',
                payTo: '0xB',
              },
            ],
            lastUpdated: '2026-06-09T00:00:00Z',
          },
        ],
        pagination: { limit: 2, offset: 0, total: 2 },
      },
    });
    // The MPP discovery draft's examples: one offer, and an offers list with a dynamic price.
    const mpp = await serveDocuments({
      '/openapi.json': {
        openapi: '3.1.0',
        info: { title: 'MPP API', version: '1' },
        paths: {
          '/search': {
            get: {
              summary: 'Search',
              'x-payment-info': {
                intent: 'charge',
                method: 'tempo',
                amount: '1000',
                currency: '0x20c0',
              },
              responses: { '402': { description: 'Payment Required' } },
            },
          },
          '/chat': {
            post: {
              'x-payment-info': {
                offers: [{ intent: 'session', method: 'lightning', amount: null, currency: 'sat' }],
              },
              responses: { '402': { description: 'Payment Required' } },
            },
          },
          '/free': { get: { responses: { '200': { description: 'ok' } } } },
        },
      },
    });
    servers.push(aperture.server, bazaar.server, mpp.server);

    const read = async (url: string) => {
      const ran = await runCli('discover', url, '--json');
      expect(ran.code).toBe(0);
      return (JSON.parse(ran.stdout) as { endpoints: unknown[] }).endpoints;
    };
    expect(await read(aperture.url)).toEqual([
      expect.objectContaining({
        method: 'GET',
        url: `${aperture.url}/looprpc.SwapServer/LoopOutTerms`,
        prices: [{ protocol: 'l402', unit: 'msat', amount: '1000' }],
      }),
      expect.objectContaining({
        method: 'POST',
        url: `${aperture.url}/looprpc.SwapServer/LoopOut`,
        prices: [{ protocol: 'l402', unit: 'msat' }],
      }),
    ]);
    expect(await read(bazaar.url)).toEqual([
      expect.objectContaining({
        method: 'POST',
        url: 'https://api.example/v2/quote',
        prices: [{ protocol: 'x402', unit: '0xA', network: 'eip155:8453', amount: '2500' }],
      }),
      expect.objectContaining({
        method: 'GET',
        url: 'https://api.example/v1/data',
        prices: [{ protocol: 'x402', unit: '0xA', network: 'base', amount: '100' }],
      }),
    ]);
    expect(await read(mpp.url)).toEqual([
      expect.objectContaining({
        method: 'GET',
        url: `${mpp.url}/search`,
        description: 'Search',
        prices: [{ protocol: 'tempo', unit: '0x20c0', amount: '1000' }],
      }),
      expect.objectContaining({
        method: 'POST',
        url: `${mpp.url}/chat`,
        prices: [{ protocol: 'mpp', unit: 'sat' }],
      }),
    ]);
    const nothing = await runCli('discover', upstream.url);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no_discovery');
  });
});
