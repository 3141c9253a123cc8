import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightningBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import {
  payL402,
  payMpp,
  rawGet,
  readBody,
  startUpstream,
  tokenIdOf,
  type Upstream,
} from './support.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

let network: DevNetwork;
let shop: LightningBackend;
let agent: LightningBackend;
let upstream: Upstream;
/** What the upstream saw of each request, in order. */
const seen: Array<{
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}> = [];
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop');
  network.openWallet('agent');
  shop = network.backend('shop');
  agent = network.backend('agent');
  upstream = await startUpstream(async (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } });
    const body = await readBody(req);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ upstream: true, url: req.url, bytes: body.length }));
  });
});

afterAll(async () => {
  await upstream.close();
  await network.close();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  seen.length = 0;
});

async function startGateway(
  input: Record<string, unknown>,
  env: Record<string, string> = {},
  logger: GatewayLogger = quiet,
): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-gw-'));
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      dataDir: dir,
      lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
      admin: { token: ADMIN },
      ...input,
    },
    { env },
  );
  const gateway = await createGateway({
    config,
    lightning: shop,
    logger,
    baseDir: dir,
    env,
  });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => gateway.close());
  return gateway;
}

function admin(gateway: Gateway, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.adminUrl}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      'content-type': 'application/json',
      ...init.headers,
    },
  });
}

/** The value of one sample of the Prometheus text, found by name and labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find(
      (entry) =>
        entry.startsWith(`${name}{`) &&
        Object.entries(labels).every(([key, value]) => entry.includes(`${key}="${value}"`)),
    );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('tollway gateway: paying through it', () => {
  it('answers 402, then forwards an L402-paid request with X-Tollway-* headers and without the credential', async () => {
    const gateway = await startGateway({
      services: [
        {
          name: 'weather',
          path: '/weather',
          upstream: upstream.url,
          price: '10 sat',
          stripPrefix: true,
          uses: 5,
        },
      ],
    });
    const unpaid = await fetch(`${gateway.url}/weather/today?city=Oslo`);
    expect(unpaid.status).toBe(402);
    expect(seen).toHaveLength(0);
    const authorization = await payL402(unpaid, agent);
    const paid = await fetch(`${gateway.url}/weather/today?city=Oslo`, {
      headers: { authorization },
    });
    expect(paid.status).toBe(200);
    expect(await paid.json()).toMatchObject({ upstream: true, url: '/today?city=Oslo' });
    const headers = seen[0]?.headers ?? {};
    expect(headers.authorization).toBeUndefined();
    expect(headers).toMatchObject({
      'x-tollway-protocol': 'l402',
      'x-tollway-service': 'weather',
      'x-tollway-token-id': tokenIdOf(authorization),
      'x-tollway-tier': '0',
      'x-tollway-amount': '10000',
      'x-tollway-unit': 'msat',
      'x-tollway-remaining-uses': '4',
    });
  });

  it('accepts an MPP charge once and refuses its replay', async () => {
    const gateway = await startGateway({
      services: [{ name: 'api', upstream: upstream.url, price: '3 sat' }],
    });
    const unpaid = await fetch(`${gateway.url}/v1/thing`);
    expect(unpaid.status).toBe(402);
    const authorization = await payMpp(unpaid, agent);
    const paid = await fetch(`${gateway.url}/v1/thing`, { headers: { authorization } });
    expect(paid.status).toBe(200);
    expect(paid.headers.get('payment-receipt')).not.toBeNull();
    expect(seen[0]?.headers['x-tollway-protocol']).toBe('mpp');
    const replay = await fetch(`${gateway.url}/v1/thing`, { headers: { authorization } });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ code: 'credential_replayed' });
  });

  it('prices by JSON body field: an LLM model, an MCP tool name, and free MCP housekeeping', async () => {
    const gateway = await startGateway({
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: upstream.url,
          price: '50 sat',
          pricing: [
            {
              method: 'POST',
              path: '/v1/chat/completions',
              field: 'model',
              prices: { 'small-model': '2 sat', 'big-model': '20 sat' },
            },
          ],
        },
        {
          name: 'mcp',
          path: '/mcp',
          upstream: upstream.url,
          price: '0 sat',
          pricing: [
            {
              method: 'POST',
              when: { method: 'tools/call' },
              field: 'params.name',
              prices: { search: '7 sat' },
              price: '1 sat',
            },
          ],
        },
      ],
    });
    const priceOf = async (path: string, body: unknown): Promise<unknown> => {
      const response = await fetch(`${gateway.url}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      if (response.status !== 402) return response.status;
      const problem = (await response.json()) as { price: { amount: string } };
      return problem.price.amount;
    };
    expect(await priceOf('/v1/chat/completions', { model: 'small-model', messages: [] })).toBe(
      '2000',
    );
    expect(await priceOf('/v1/chat/completions', { model: 'big-model' })).toBe('20000');
    expect(await priceOf('/v1/chat/completions', { model: 'unknown' })).toBe('50000');
    expect(await priceOf('/v1/embeddings', { model: 'small-model' })).toBe('50000');
    expect(
      await priceOf('/mcp', {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'search' },
      }),
    ).toBe('7000');
    expect(
      await priceOf('/mcp', {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'other' },
      }),
    ).toBe('1000');
    expect(await priceOf('/mcp', { jsonrpc: '2.0', id: 3, method: 'tools/list' })).toBe(200);
    // The body read for pricing still reaches the upstream whole.
    expect(seen.at(-1)?.headers['x-tollway-free-reason']).toBe('free_route');
    const sent = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' });
    const echoed = await fetch(`${gateway.url}/mcp`, { method: 'POST', body: sent });
    expect(await echoed.json()).toMatchObject({ bytes: Buffer.byteLength(sent) });
  });

  it('lets auth-off services and allow-listed paths through free', async () => {
    const gateway = await startGateway({
      services: [
        { name: 'open', path: '/open', upstream: upstream.url, auth: 'off' },
        {
          name: 'paid',
          upstream: upstream.url,
          price: '1 sat',
          allowlist: ['/health', '~^/docs/.*\\.html$'],
        },
      ],
    });
    expect((await fetch(`${gateway.url}/open/x`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/docs/a.html`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/docs/a.json`)).status).toBe(402);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(402);
    expect(seen.map((entry) => entry.headers['x-tollway-free-reason'])).toEqual([
      'free_route',
      'allowlist',
      'allowlist',
    ]);
  });

  it('never forwards payment credentials upstream, whatever the protocol', async () => {
    const gateway = await startGateway({
      services: [{ name: 'open', path: '/open', upstream: upstream.url, auth: 'off' }],
    });
    const credentials = {
      authorization: 'L402 AgEE:00',
      macaroon: '0201',
      'grpc-metadata-macaroon': '0201',
      'payment-signature': 'eyJ4NDAyVmVyc2lvbiI6Mn0=',
      'x-payment': 'eyJ4NDAyVmVyc2lvbiI6MX0=',
    };
    expect((await fetch(`${gateway.url}/open/x`, { headers: credentials })).status).toBe(200);
    const forwarded = seen.at(-1)?.headers ?? {};
    for (const name of Object.keys(credentials))
      expect([name, forwarded[name]]).toEqual([name, undefined]);
  });
});

describe('tollway gateway: the reverse proxy', () => {
  it('passes SSE chunks through live: the client reads the first event before the upstream sends the second', async () => {
    const events: string[] = [];
    let firstReceived!: () => void;
    const clientHasFirst = new Promise<void>((resolve) => {
      firstReceived = resolve;
    });
    const sse = await startUpstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      events.push('upstream sent first');
      await clientHasFirst;
      res.end('data: second\n\n');
      events.push('upstream sent second');
    });
    cleanups.push(() => sse.close());
    const gateway = await startGateway({
      services: [{ name: 'stream', upstream: sse.url, auth: 'off' }],
    });
    const response = await fetch(`${gateway.url}/events`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = (response.body ?? new ReadableStream()).getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('data: first\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    events.push('client got first');
    expect(text).toBe('data: first\n\n');
    firstReceived();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    events.push('client got the end');
    expect(text).toBe('data: first\n\ndata: second\n\n');
    expect(events).toEqual([
      'upstream sent first',
      'client got first',
      'upstream sent second',
      'client got the end',
    ]);
  });

  it('streams large request and response bodies both ways', async () => {
    const size = 8 * 1024 * 1024;
    const big = await startUpstream(async (req, res) => {
      const hash = createHash('sha256');
      let received = 0;
      for await (const chunk of req) {
        hash.update(chunk as Buffer);
        received += (chunk as Buffer).length;
      }
      res.writeHead(200, {
        'x-request-sha256': hash.digest('hex'),
        'x-request-bytes': String(received),
      });
      const block = Buffer.alloc(64 * 1024, 7);
      for (let sent = 0; sent < size; sent += block.length) {
        if (!res.write(block)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    });
    cleanups.push(() => big.close());
    const gateway = await startGateway({
      services: [{ name: 'files', upstream: big.url, auth: 'off' }],
    });
    const payload = Buffer.alloc(size, 3);
    const response = await fetch(`${gateway.url}/upload`, { method: 'POST', body: payload });
    expect(response.headers.get('x-request-bytes')).toBe(String(size));
    expect(response.headers.get('x-request-sha256')).toBe(
      createHash('sha256').update(payload).digest('hex'),
    );
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(size);
    expect(body.equals(Buffer.alloc(size, 7))).toBe(true);
  });

  it('drops hop-by-hop headers both ways, sets X-Forwarded-*, injects headers and drops forged X-Tollway-*', async () => {
    const echo = await startUpstream((req, res) => {
      res.setHeader('connection', 'x-hop');
      res.setHeader('x-hop', 'secret');
      res.setHeader('x-end-to-end', 'kept');
      res.end(JSON.stringify(req.headers));
    });
    cleanups.push(() => echo.close());
    const gateway = await startGateway(
      {
        services: [
          {
            name: 'echo',
            host: ['api.example.test', '127.0.0.1'],
            upstream: echo.url,
            auth: 'off',
            headers: { 'X-Api-Key': '${UPSTREAM_KEY}', 'X-Plan': '${PLAN:-basic}' },
          },
        ],
      },
      { UPSTREAM_KEY: 'k-123' },
    );
    // fetch refuses to send Connection and TE, so this request goes through node:http.
    const response = await rawGet(`${gateway.url}/x`, {
      connection: 'keep-alive, x-client-hop',
      'x-client-hop': 'drop me',
      te: 'trailers',
      'x-tollway-protocol': 'forged',
      'x-api-key': 'client value',
      authorization: 'Bearer client-secret',
      'x-forwarded-for': '203.0.113.9',
    });
    const received = JSON.parse(response.body) as Record<string, string>;
    expect(received['x-client-hop']).toBeUndefined();
    expect(received.te).toBeUndefined();
    expect(received.authorization).toBeUndefined();
    expect(received).toMatchObject({
      'x-tollway-protocol': 'free',
      'x-api-key': 'k-123',
      'x-plan': 'basic',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': new URL(gateway.url).host,
      host: new URL(echo.url).host,
    });
    expect(response.headers['x-hop']).toBeUndefined();
    expect(response.headers['x-end-to-end']).toBe('kept');
  });

  it('tells an LLM provider neither the client address nor the payment unless asked; a service of its own, unless told not to', async () => {
    const echo = await startUpstream((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.headers));
    });
    cleanups.push(() => echo.close());
    const llm = { models: { 'm-1': { input: '1 sat', output: '1 sat' } } };
    const gateway = await startGateway({
      services: [
        {
          name: 'quiet',
          path: '/quiet',
          upstream: echo.url,
          auth: 'off',
          forwardedHeaders: false,
          paymentHeaders: false,
        },
        { name: 'llm', path: '/llm', upstream: echo.url, auth: 'off', balance: '1000 sat', llm },
        {
          name: 'told',
          path: '/told',
          upstream: echo.url,
          auth: 'off',
          balance: '1000 sat',
          llm,
          forwardedHeaders: true,
          paymentHeaders: true,
        },
        {
          name: 'routed',
          path: '/routed',
          upstream: echo.url,
          auth: 'off',
          balance: '1000 sat',
          llm: {
            providers: { own: { upstream: echo.url, forwardedHeaders: true } },
            models: {},
            defaultPrices: { input: '1 sat', output: '1 sat', provider: 'own' },
          },
        },
      ],
    });
    const send = async (path: string) => {
      const response = await rawGet(`${gateway.url}${path}`, {
        'x-forwarded-for': '203.0.113.9',
        forwarded: 'for=203.0.113.9',
        'x-tollway-protocol': 'forged',
      });
      return JSON.parse(response.body) as Record<string, string>;
    };
    const told = (headers: Record<string, string>) =>
      Object.keys(headers).filter(
        (name) => name.startsWith('x-tollway-') || name.includes('forwarded'),
      );
    // Not told, and what the client forged is dropped all the same.
    expect(told(await send('/quiet/x'))).toEqual([]);
    expect(told(await send('/llm/x'))).toEqual([]);
    expect(await send('/told/x')).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      forwarded: expect.stringContaining('for=127.0.0.1'),
      'x-tollway-protocol': 'free',
    });
    // A provider's own setting; the rest as its service (an LLM service: not told).
    const atProvider = await send('/routed/x');
    expect(atProvider['x-forwarded-for']).toBe('127.0.0.1');
    expect(told(atProvider).filter((name) => name.startsWith('x-tollway-'))).toEqual([]);
  });

  it('answers 502 upstream_unavailable and 504 upstream_timeout as problem bodies', async () => {
    const closed = await startUpstream(() => {});
    const closedUrl = closed.url;
    await closed.close();
    const silent = await startUpstream(() => {});
    cleanups.push(() => silent.close());
    const gateway = await startGateway({
      services: [
        { name: 'gone', path: '/gone', upstream: closedUrl, auth: 'off' },
        {
          name: 'slow',
          path: '/slow',
          upstream: silent.url,
          auth: 'off',
          timeouts: { response: '200ms' },
        },
      ],
    });
    const gone = await fetch(`${gateway.url}/gone`);
    expect(gone.status).toBe(502);
    expect(gone.headers.get('content-type')).toBe('application/problem+json');
    expect(await gone.json()).toMatchObject({ status: 502, code: 'upstream_unavailable' });
    const slow = await fetch(`${gateway.url}/slow`);
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ status: 504, code: 'upstream_timeout' });
    const nowhere = await fetch(`${gateway.url}/elsewhere`);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toMatchObject({ code: 'not_found' });
  });

  it('drains an in-flight request on close and refuses new ones', async () => {
    const order: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrived!: () => void;
    const hasArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const slow = await startUpstream(async (_req, res) => {
      arrived();
      await released;
      res.end('finished');
    });
    cleanups.push(() => slow.close());
    const dir = mkdtempSync(join(tmpdir(), 'tollway-gw-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = parseGatewayConfig({
      listen: '127.0.0.1:0',
      dataDir: dir,
      lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
      services: [{ name: 'slow', upstream: slow.url, auth: 'off' }],
    });
    const gateway = await createGateway({ config, lightning: shop, logger: quiet });
    const inFlight = fetch(`${gateway.url}/work`).then(async (response) => {
      order.push(`in-flight answered ${response.status} ${await response.text()}`);
    });
    await hasArrived;
    const closing = gateway.close().then(() => order.push('closed'));
    const refused = await fetch(`${gateway.url}/work`).then(
      () => 'accepted',
      () => 'refused',
    );
    order.push(`new request ${refused}`);
    release();
    await Promise.all([inFlight, closing]);
    expect(order).toEqual(['new request refused', 'in-flight answered 200 finished', 'closed']);
  });
});

describe('tollway gateway: admin API and metrics', () => {
  it('changes a price through the admin API for the next request, without a restart, and persists it', async () => {
    const gateway = await startGateway({
      services: [{ name: 'api', upstream: upstream.url, price: '10 sat' }],
    });
    const price = async () =>
      ((await (await fetch(`${gateway.url}/x`)).json()) as { price: { amount: string } }).price
        .amount;
    expect(await price()).toBe('10000');
    const put = await admin(gateway, '/services/api', {
      method: 'PUT',
      body: JSON.stringify({ upstream: upstream.url, price: '25 sat' }),
    });
    expect(put.status).toBe(200);
    expect(await price()).toBe('25000');
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({ name: 'extra', path: '/extra', upstream: upstream.url, auth: 'off' }),
    });
    expect(created.status).toBe(201);
    // First match wins: `api` (path /) was listed first, so /extra still pays.
    expect((await fetch(`${gateway.url}/extra`)).status).toBe(402);
    const listed = (await (await admin(gateway, '/services')).json()) as {
      services: Array<{ name: string; source: string }>;
    };
    expect(listed.services.map(({ name, source }) => `${name}:${source}`)).toEqual([
      'api:admin',
      'extra:admin',
    ]);
    const bad = await admin(gateway, '/services/api', {
      method: 'PUT',
      body: JSON.stringify({ upstream: 'ftp://x', price: '1 sat' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      code: 'invalid_config',
      detail: expect.stringContaining('upstream: must be an http:// or https:// URL'),
    });
    expect((await admin(gateway, '/services/api', { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${gateway.url}/extra`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/x`)).status).toBe(404);
    // Kept in the store, where every instance on it reads them (and a restart finds them).
    const overlay: unknown = JSON.parse(
      (await gateway.store.readDocument('gateway.services'))?.body ?? 'null',
    );
    expect(overlay).toEqual({
      services: [
        { name: 'api', service: null },
        { name: 'extra', service: { path: '/extra', upstream: upstream.url, auth: 'off' } },
      ],
    });
  });

  it('revokes a token through the admin API; lists tokens, payments and revenue', async () => {
    const gateway = await startGateway({
      services: [{ name: 'api', upstream: upstream.url, price: '10 sat' }],
    });
    const authorization = await payL402(await fetch(`${gateway.url}/x`), agent);
    expect((await fetch(`${gateway.url}/x`, { headers: { authorization } })).status).toBe(200);
    const tokenId = tokenIdOf(authorization);
    await vi.waitFor(async () => {
      const tokens = (await (await admin(gateway, '/tokens')).json()) as {
        tokens: Array<{ tokenId: string; revoked: boolean }>;
      };
      expect(tokens.tokens).toEqual([expect.objectContaining({ tokenId, revoked: false })]);
    });
    const payments = (await (await admin(gateway, '/payments?service=api')).json()) as {
      payments: unknown[];
    };
    expect(payments.payments).toEqual([
      expect.objectContaining({ service: 'api', protocol: 'l402', amount: '10000', unit: 'msat' }),
    ]);
    const revenue = (await (await admin(gateway, '/revenue?bucket=day')).json()) as {
      totals: unknown[];
    };
    expect(revenue.totals).toEqual([
      { service: 'api', protocol: 'l402', unit: 'msat', amount: '10000', count: 1 },
    ]);
    expect(
      (await admin(gateway, `/tokens/${tokenId}?reason=abuse`, { method: 'DELETE' })).status,
    ).toBe(204);
    const refused = await fetch(`${gateway.url}/x`, { headers: { authorization } });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: 'token_revoked' });
  });

  it('guards the admin API with the token; the dashboard logs in with ?token= and an HttpOnly cookie', async () => {
    const gateway = await startGateway({ services: [] });
    expect((await fetch(`${gateway.adminUrl}/health`)).status).toBe(200);
    const anonymous = await fetch(`${gateway.adminUrl}/services`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ code: 'admin_unauthorized' });
    expect(
      (
        await fetch(`${gateway.adminUrl}/services`, {
          headers: { authorization: 'Bearer wrong-token-000000000' },
        })
      ).status,
    ).toBe(401);
    expect((await fetch(`${gateway.adminUrl}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${gateway.adminUrl}/dashboard?token=wrong`, { redirect: 'manual' })).status,
    ).toBe(401);
    const login = await fetch(`${gateway.adminUrl}/dashboard?token=${ADMIN}`, {
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/_tollway/dashboard');
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(
      /^tollway_admin=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/_tollway$/,
    );
    expect(cookie).not.toContain(ADMIN);
    const page = await fetch(`${gateway.adminUrl}/dashboard`, {
      headers: { cookie: cookie.split(';')[0] ?? '' },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(
      (
        await fetch(`${gateway.adminUrl}/services`, {
          headers: { cookie: cookie.split(';')[0] ?? '' },
        })
      ).status,
    ).toBe(200);
    expect((await admin(gateway, '/nothing')).status).toBe(404);
  });

  it('lets a service in shadow mode through unpaid, and logs, counts and reports what it would have charged', async () => {
    const logged: Array<Record<string, unknown>> = [];
    const gateway = await startGateway(
      {
        services: [
          { name: 'soon', path: '/soon', upstream: upstream.url, price: '7 sat', shadow: true },
          { name: 'now', upstream: upstream.url, price: '7 sat' },
        ],
      },
      {},
      {
        ...quiet,
        info: (context, message) => {
          if (message === 'shadow mode: passed unpaid') logged.push(context);
        },
      },
    );
    for (const path of ['/soon/a', '/soon/b?q=1']) {
      const response = await fetch(`${gateway.url}${path}`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { upstream: boolean }).upstream).toBe(true);
    }
    expect(logged).toEqual([
      { service: 'soon', path: '/soon/a', wouldChargeMsat: '7000' },
      { service: 'soon', path: '/soon/b', wouldChargeMsat: '7000' },
    ]);
    const text = await (await admin(gateway, '/metrics')).text();
    expect(sample(text, 'tollway_shadow_requests_total', { service: 'soon' })).toBe(2);
    expect(sample(text, 'tollway_shadow_msat_total', { service: 'soon' })).toBe(14_000);
    expect(sample(text, 'tollway_requests_total', { service: 'soon', outcome: 'free' })).toBe(2);
    expect(await (await admin(gateway, '/shadow')).json()).toEqual({
      services: [{ service: 'soon', requests: 2, wouldChargeMsat: '14000' }],
    });
    // The other service, not in shadow mode, still asks for payment.
    expect((await fetch(`${gateway.url}/x`)).status).toBe(402);
  });

  it('counts challenges, paid requests, refusals, settlements, revenue and latency', async () => {
    const gateway = await startGateway({
      services: [{ name: 'm', upstream: upstream.url, price: '10 sat' }],
    });
    const first = await fetch(`${gateway.url}/a`);
    await fetch(`${gateway.url}/a`);
    const authorization = await payL402(first, agent);
    await fetch(`${gateway.url}/a`, { headers: { authorization } });
    await fetch(`${gateway.url}/b`, { headers: { authorization } });
    await fetch(`${gateway.url}/a`, { headers: { authorization: 'L402 garbage:00' } });
    const metrics = async () => (await admin(gateway, '/metrics')).text();
    await vi.waitFor(async () => {
      expect(
        sample(await metrics(), 'tollway_payments_settled_total', {
          service: 'm',
          protocol: 'l402',
        }),
      ).toBe(1);
    });
    const text = await metrics();
    expect(sample(text, 'tollway_revenue_msat_total', { service: 'm', protocol: 'l402' })).toBe(
      10_000,
    );
    expect(sample(text, 'tollway_challenges_total', { service: 'm', status: '402' })).toBe(2);
    expect(sample(text, 'tollway_challenges_total', { service: 'm', status: '401' })).toBe(1);
    expect(sample(text, 'tollway_requests_total', { service: 'm', outcome: 'paid' })).toBe(2);
    expect(sample(text, 'tollway_requests_total', { service: 'm', outcome: 'refused' })).toBe(3);
    expect(
      sample(text, 'tollway_rejections_total', { service: 'm', code: 'payment_required' }),
    ).toBe(2);
    expect(
      sample(text, 'tollway_rejections_total', { service: 'm', code: 'invalid_preimage' }),
    ).toBe(1);
    expect(sample(text, 'tollway_upstream_duration_seconds_count', { service: 'm' })).toBe(2);
    expect(sample(text, 'tollway_gateway_overhead_seconds_count', { service: 'm' })).toBe(2);
  });
});
