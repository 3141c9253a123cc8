// The paying fetch against Tollway's own engine (createPaywall behind the node:http adapter) on
// loopback, both sides on the embedded dev Lightning node.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMemoryClientStore,
  createPayingFetch,
  getPayment,
  type PayingFetchEvent,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import {
  createDevBackend,
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { type PaidRequest, withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, type Paywall, type Route } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let network: DevNetwork;
let devServer: DevServer;
const servers: Server[] = [];
const silent = { warn: () => undefined, error: () => undefined };

async function echo(req: PaidRequest, res: ServerResponse): Promise<void> {
  let body = '';
  for await (const chunk of req) body += chunk;
  res.setHeader('Content-Type', 'application/json');
  res.end(
    JSON.stringify({ path: req.url, method: req.method, protocol: req.payment.protocol, body }),
  );
}

/**
 * Serves `routes` (path → route) of one paywall on loopback. `before`, when given, runs before
 * the paywall sees each request, and may act in the meantime (as another process would).
 */
async function serve(
  paywall: Paywall,
  routes: Record<string, Route>,
  before?: (req: IncomingMessage) => Promise<void>,
): Promise<string> {
  const handlers = new Map(
    Object.entries(routes).map(([path, route]) => [path, withPaywall(paywall, route, echo)]),
  );
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const handler = handlers.get(req.url?.split('?')[0] ?? '');
    await before?.(req);
    if (handler === undefined) res.writeHead(404).end();
    else void handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function newPaywall(
  options: { protocols?: ('l402' | 'mpp')[]; l402Form?: 'legacy' | 'spec' } = {},
): Paywall {
  return createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: silent,
    ...options,
  });
}

let agents = 0;
/** A funded agent wallet: in process, or (`http`) through the dev node's API, as a real wallet is. */
function newAgent(options: { http?: boolean } = {}) {
  const name = `engine-agent${++agents}`;
  const { token } = network.openWallet(name, { balanceMsat: 1_000_000_000n });
  const raw = options.http
    ? createDevBackend({ url: devServer.url, wallet: name, token })
    : network.backend(name);
  return {
    backend: wrapBackend(raw),
    spent: () => 1_000_000_000n - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

let base: string;
let mppBase: string;
let specBase: string;

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  devServer = await createDevServer({ network });
  const paywall = newPaywall();
  base = await serve(paywall, {
    '/forecast': paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' }),
    '/forecast/daily': paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' }),
    '/other': paywall.route({ service: 'other', price: '4 sat' }),
    '/scoped/a': paywall.route({
      service: 'scoped',
      price: '10 sat',
      scope: { paths: ['/scoped/a'] },
    }),
    '/scoped/b': paywall.route({
      service: 'scoped',
      price: '10 sat',
      scope: { paths: ['/scoped/a'] },
    }),
    '/twice': paywall.route({ service: 'twice', price: '10 sat', uses: 2 }),
    '/ask': paywall.route({ service: 'ask', price: '3 sat' }),
  });
  const mpp = newPaywall({ protocols: ['mpp'] });
  mppBase = await serve(mpp, { '/charge': mpp.route({ service: 'charge', price: '2 sat' }) });
  const spec = newPaywall({ l402Form: 'spec' });
  specBase = await serve(spec, { '/spec': spec.route({ service: 'spec', price: '5 sat' }) });
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await devServer.close();
  await network.close();
});

describe('paying fetch × Tollway engine', () => {
  it('pays an L402 route once and reuses the token across the service, until it expires', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const events: PayingFetchEvent[] = [];
    const fetch402 = createPayingFetch({
      wallets: agent.backend,
      store,
      onEvent: (e) => events.push(e),
    });
    const first = await fetch402(`${base}/forecast`);
    expect(await first.json()).toMatchObject({ protocol: 'l402' });
    expect(getPayment(first)).toMatchObject({ protocol: 'l402', amountMsat: 10_000n });
    const second = await fetch402(`${base}/forecast/daily`);
    expect(second.status).toBe(200);
    expect(getPayment(second)).toBeUndefined();
    expect(agent.spent()).toBe(10_000n);
    expect(events.filter((e) => e.type === 'challenge')).toHaveLength(1);
    const saved = await store.findCredential(base, '/forecast', Date.now());
    expect(saved?.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    expect(saved?.expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it('pays again, once, where the cached token is refused (another service), then uses each token where it works', async () => {
    const agent = newAgent();
    const fetch402 = createPayingFetch({ wallets: agent.backend });
    expect((await fetch402(`${base}/forecast`)).status).toBe(200);
    const other = await fetch402(`${base}/other`);
    expect(other.status).toBe(200);
    expect(getPayment(other)?.amountMsat).toBe(4_000n);
    expect((await fetch402(`${base}/forecast`)).status).toBe(200);
    expect((await fetch402(`${base}/other`)).status).toBe(200);
    expect(agent.spent()).toBe(14_000n);
  });

  it('caches a scoped token for its paths only', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({ wallets: agent.backend, store });
    expect((await fetch402(`${base}/scoped/a`)).status).toBe(200);
    expect(await store.findCredential(base, '/scoped/a', Date.now())).toMatchObject({
      scope: '/scoped/a',
    });
    expect(await store.findCredential(base, '/scoped/b', Date.now())).toBeUndefined();
  });

  it('pays again when a token has used its requests', async () => {
    const agent = newAgent();
    const fetch402 = createPayingFetch({ wallets: agent.backend });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch402(`${base}/twice`)).status);
    expect(statuses).toEqual([200, 200, 200]);
    expect(agent.spent()).toBe(20_000n);
  });

  it('pays an MPP charge per request, replaying a POST body', async () => {
    const agent = newAgent();
    const fetch402 = createPayingFetch({ wallets: agent.backend });
    for (const body of ['{"q":1}', '{"q":2}']) {
      const response = await fetch402(`${mppBase}/charge`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      expect(await response.json()).toMatchObject({ protocol: 'mpp', method: 'POST', body });
      expect(response.headers.get('payment-receipt')).toBeTruthy();
      expect(getPayment(response)).toMatchObject({ protocol: 'mpp', amountMsat: 2_000n });
    }
    expect(agent.spent()).toBe(4_000n);
  });

  it('pays the 2026 spec form (token=, version)', async () => {
    const agent = newAgent();
    const fetch402 = createPayingFetch({ wallets: agent.backend });
    expect((await fetch402(`${specBase}/spec`)).status).toBe(200);
    expect(agent.spent()).toBe(5_000n);
  });

  it('50 concurrent calls with an empty cache make exactly one payment', async () => {
    const agent = newAgent({ http: true });
    const fetch402 = createPayingFetch({ wallets: agent.backend });
    const responses = await Promise.all(Array.from({ length: 50 }, () => fetch402(`${base}/ask`)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(responses.filter((r) => getPayment(r) !== undefined)).toHaveLength(1);
    expect(agent.spent()).toBe(3_000n);
  });
});

describe('paying fetch × Tollway engine, one store shared with another agent', () => {
  /** Every request the server saw: path, and the credential it carried. */
  const seen: Array<{ path: string; authorization: string | undefined }> = [];
  /** Run by the server before it answers the next request of the agent under test. */
  let meanwhile: Array<() => Promise<unknown>> = [];

  async function sharedServer(routes: (paywall: Paywall) => Record<string, Route>) {
    const paywall = newPaywall();
    return serve(paywall, routes(paywall), async (req) => {
      const authorization = req.headers.authorization;
      if (req.headers['x-agent'] !== 'under-test') return;
      seen.push({ path: req.url ?? '', authorization });
      await meanwhile.shift()?.();
    });
  }

  function underTest(store: ReturnType<typeof createMemoryClientStore>, wallet = newAgent()) {
    const events: PayingFetchEvent[] = [];
    const fetch402 = createPayingFetch({
      wallets: wallet.backend,
      store,
      onEvent: (e) => events.push(e),
    });
    const call = (url: string, init: RequestInit = {}) =>
      fetch402(url, { ...init, headers: { 'x-agent': 'under-test' } });
    return { call, events, wallet };
  }

  it('does not send a token the other agent saved for another service', async () => {
    seen.length = 0;
    const url = await sharedServer((paywall) => ({
      '/a': paywall.route({ service: 'a', price: '2 sat' }),
      '/c': paywall.route({ service: 'c', price: '3 sat' }),
    }));
    const store = createMemoryClientStore();
    const other = createPayingFetch({ wallets: newAgent().backend, store });
    const agent = underTest(store);
    // While the agent's call is challenged, the other agent buys a token for /a (saved for '/').
    meanwhile = [() => other(`${url}/a`)];
    const response = await agent.call(`${url}/c`);
    expect(response.status).toBe(200);
    expect(getPayment(response)?.amountMsat).toBe(3_000n);
    expect(seen.map((s) => s.authorization === undefined)).toEqual([true, false]);
    expect(agent.events.filter((e) => e.type === 'shared')).toEqual([]);
    expect(agent.wallet.spent()).toBe(3_000n);
  });

  it('does not send a token limited to other methods', async () => {
    seen.length = 0;
    const url = await sharedServer((paywall) => ({
      '/read': paywall.route({ service: 'r', price: '2 sat', scope: { methods: ['GET'] } }),
      '/write': paywall.route({ service: 'r', price: '2 sat' }),
    }));
    const store = createMemoryClientStore();
    const agent = underTest(store);
    expect((await agent.call(`${url}/read`)).status).toBe(200);
    const post = await agent.call(`${url}/write`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(200);
    expect(seen.map((s) => [s.path, s.authorization === undefined])).toEqual([
      ['/read', true],
      ['/read', false],
      ['/write', true],
      ['/write', false],
    ]);
  });

  it('pays when a saved token is refused, though the other agent saves a new one each time', async () => {
    seen.length = 0;
    const url = await sharedServer((paywall) => ({
      '/once': paywall.route({ service: 'once', price: '5 sat', uses: 1 }),
    }));
    const store = createMemoryClientStore();
    const otherWallet = newAgent();
    // Each purchase of the other agent leaves a token in the store, its one use already spent.
    const otherBuys = () =>
      createPayingFetch({ wallets: otherWallet.backend, store })(`${url}/once`);
    await otherBuys();
    const agent = underTest(store);
    meanwhile = [otherBuys, otherBuys];
    const response = await agent.call(`${url}/once`);
    expect(response.status).toBe(200);
    expect(getPayment(response)?.amountMsat).toBe(5_000n);
    // Its saved token, one the other agent saved since, then its own payment.
    expect(seen.map((s) => s.authorization === undefined)).toEqual([false, false, false]);
    expect(new Set(seen.map((s) => s.authorization)).size).toBe(3);
    expect(agent.wallet.spent()).toBe(5_000n);
    expect(otherWallet.spent()).toBe(15_000n);
  });
});
