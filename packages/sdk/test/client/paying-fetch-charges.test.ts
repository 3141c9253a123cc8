// What the paying fetch records of each call's charge, against Tollway's own engine (createPaywall
// behind the node:http adapter, which settles on the outcome) on loopback, both sides on the
// embedded dev Lightning node: draws as the receipts say, releases of failed calls, balances
// bought within the budget and bought again when a call no longer fits.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClientStore,
  createBudget,
  createMemoryClientStore,
  createPayingFetch,
  getPayment,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { type PaidRequest, withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, type Route, type Store } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

let network: DevNetwork;
let server: Server;
let base: string;
let shopStore: Store;
/** The status the handlers answer with next (then 200 again). */
let nextStatus = 200;

async function answer(req: PaidRequest, res: ServerResponse): Promise<void> {
  for await (const _ of req) {
    // drain the body
  }
  const status = nextStatus;
  nextStatus = 200;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: status < 400 }));
}

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  shopStore = createMemoryStore();
  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: shopStore,
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
  });
  const mpp = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
    protocols: ['mpp'],
  });
  const routes: Record<string, [typeof paywall, Route]> = {
    '/once': [paywall, paywall.route({ service: 'once', price: '10 sat', uses: 1 })],
    '/balance': [paywall, paywall.route({ service: 'balance', price: '7 sat', balance: '30 sat' })],
    '/charge': [mpp, mpp.route({ service: 'charge', price: '2 sat' })],
  };
  const handlers = new Map(
    Object.entries(routes).map(([path, [wall, route]]) => [path, withPaywall(wall, route, answer)]),
  );
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const handler = handlers.get(req.url?.split('?')[0] ?? '');
    if (handler === undefined) res.writeHead(404).end();
    else void handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await network.close();
});

let agents = 0;
function newAgent() {
  const name = `charges-agent${++agents}`;
  network.openWallet(name, { balanceMsat: 1_000_000_000n });
  return {
    backend: wrapBackend(network.backend(name)),
    spent: () => 1_000_000_000n - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

/** The ledger's one summary row for `base`. */
async function originRow(store: ClientStore) {
  const rows = await store.summary({ origin: base }, 'origin');
  expect(rows).toHaveLength(1);
  return rows[0];
}

describe('paying fetch: what each call was charged', () => {
  it('records a failed answer as released, and the use it kept as drawn by the next call', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({ wallets: agent.backend, store });
    nextStatus = 502;
    const failed = await fetch402(`${base}/once`, { tags: { agent: 'a1', task: 't1' } });
    expect(failed.status).toBe(502);
    expect(failed.headers.get('tollway-charged')).toBe('0');
    const served = await fetch402(`${base}/once`, { tags: { agent: 'a1', task: 't2' } });
    expect(served.status).toBe(200);
    expect(getPayment(served)).toBeUndefined();
    expect(agent.spent()).toBe(10_000n);
    const row = await originRow(store);
    expect(row).toMatchObject({
      purchases: { count: 1, amountMsat: 10_000n },
      draws: { count: 1, amountMsat: 10_000n },
      releases: 1,
    });
    const byTask = await store.summary({ origin: base }, { tag: 'task' });
    expect(byTask.map((r) => [r.key, r.draws.amountMsat, r.releases])).toEqual([
      ['t1', 0n, 1],
      ['t2', 10_000n, 0],
    ]);
    const [release] = await store.list({ kind: 'release' });
    expect(release).toMatchObject({ amountMsat: 0n, tags: { agent: 'a1', task: 't1' } });
  });

  it('keeps an MPP charge the server released, and spends it on the next call without paying again', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({ wallets: agent.backend, store });
    nextStatus = 503;
    expect((await fetch402(`${base}/charge`)).status).toBe(503);
    const served = await fetch402(`${base}/charge`);
    expect(served.status).toBe(200);
    expect(served.headers.get('payment-receipt')).toBeTruthy();
    expect(agent.spent()).toBe(2_000n);
    expect(await originRow(store)).toMatchObject({
      purchases: { count: 1, amountMsat: 2_000n },
      draws: { count: 1, amountMsat: 2_000n },
      releases: 1,
    });
    // Spent now: the next call pays a charge of its own.
    expect((await fetch402(`${base}/charge`)).status).toBe(200);
    expect(agent.spent()).toBe(4_000n);
  });

  it('buys a balance within perBalance, draws it call by call, and buys again when a call no longer fits', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({
      store,
      limits: { perRequest: '10 sat', perBalance: '30 sat' },
      tags: { agent: 'writer' },
    });
    const fetch402 = createPayingFetch({ wallets: agent.backend, store, budget });
    for (let i = 0; i < 20; i++) {
      const response = await fetch402(`${base}/balance`, { tags: { task: `t${i % 2}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('tollway-charged')).toBe('7000 msat');
    }
    // 4 calls of 7 sat fit in each 30 sat balance: 5 balances for 20 calls.
    expect(agent.spent()).toBe(150_000n);
    const row = await originRow(store);
    expect(row).toMatchObject({
      purchases: { count: 5, amountMsat: 150_000n },
      draws: { count: 20, amountMsat: 140_000n },
      releases: 0,
    });
    // What the ledger drew from each balance is what the server counts spent on it.
    const purchases = await store.list({ kind: 'purchase' });
    for (const purchase of purchases) {
      const draws = await store.list({ kind: 'draw', account: purchase.account as string });
      const drawn = draws.reduce((sum, entry) => sum + entry.amountMsat, 0n);
      await vi.waitFor(async () =>
        expect((await shopStore.getUsage(purchase.account as string)).spentMsat).toBe(drawn),
      );
    }
    const byTask = await store.summary({}, { tag: 'task' });
    expect(byTask.map((r) => [r.key, r.draws.amountMsat])).toEqual([
      ['t0', 70_000n],
      ['t1', 70_000n],
    ]);
    expect((await store.summary({}, { tag: 'agent' }))[0]?.key).toBe('writer');
  });

  it('presents an MPP charge that bought a balance again on every later call', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { perRequest: '10 sat', perBalance: '30 sat' } });
    const fetch402 = createPayingFetch({
      wallets: agent.backend,
      store,
      budget,
      preferences: ['mpp'],
    });
    for (let i = 0; i < 4; i++) {
      const response = await fetch402(`${base}/balance`);
      expect(response.status).toBe(200);
      expect(response.headers.get('tollway-remaining')).toBe(`${30_000 - 7_000 * (i + 1)} msat`);
    }
    expect(agent.spent()).toBe(30_000n);
    expect(await originRow(store)).toMatchObject({
      purchases: { count: 1, amountMsat: 30_000n },
      draws: { count: 4, amountMsat: 28_000n },
    });
    expect((await store.list({ kind: 'purchase' }))[0]?.protocol).toBe('mpp');
  });

  it('does not buy a balance above perRequest when no perBalance is set', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { perRequest: '10 sat' } });
    const fetch402 = createPayingFetch({ wallets: agent.backend, store, budget });
    await expect(fetch402(`${base}/balance`)).rejects.toMatchObject({ code: 'over_price' });
    expect(agent.spent()).toBe(0n);
  });
});
