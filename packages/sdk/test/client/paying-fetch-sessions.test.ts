// MPP lightning sessions, paid by the paying fetch, against Tollway's own engine (createPaywall
// with sessions, behind the node:http adapter) on loopback, both sides on the embedded dev
// Lightning node: open on the deposit with a return invoice of the agent's wallet, draw with
// bearer credentials (also from another paying fetch on the same agent database), top up when a
// call no longer fits, close and collect the refund; the ledger shows deposits, draws, refund
// and net per session, and the wallets agree.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ClientStore,
  createBudget,
  createPayingFetch,
  createSqliteClientStore,
  type PayingFetchOptions,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { type PaidRequest, withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, type Store } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

let network: DevNetwork;
let server: Server;
let base: string;
let shopStore: Store;
/** A second shop whose sessions close after a second without a call. */
let quick: { server: Server; base: string; store: Store };
const dir = mkdtempSync(join(tmpdir(), 'tollway-sessions-'));
const FUNDS = 1_000_000_000n;

async function listen(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const listening = createServer(handle);
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return {
    server: listening,
    base: `http://127.0.0.1:${(listening.address() as AddressInfo).port}`,
  };
}

function shop(store: Store, idleTimeout: number) {
  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store,
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
    sessions: { idleTimeout },
  });
  const handler = withPaywall(
    paywall,
    paywall.route({ service: 'llm', price: '10 sat', balance: '50 sat' }),
    answer,
  );
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/chat')) void handler(req, res);
    else res.writeHead(404).end();
  };
}

async function answer(req: PaidRequest, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ protocol: req.payment.protocol }));
}

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: FUNDS });
  shopStore = createMemoryStore();
  ({ server, base } = await listen(shop(shopStore, 600)));
  const quickStore = createMemoryStore();
  quick = { ...(await listen(shop(quickStore, 1))), store: quickStore };
});

afterAll(async () => {
  for (const listening of [server, quick.server]) {
    listening.closeAllConnections();
    await new Promise((resolve) => listening.close(resolve));
  }
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

let agents = 0;
function newAgent(options: Partial<PayingFetchOptions> = {}) {
  const name = `session-agent${++agents}`;
  network.openWallet(name, { balanceMsat: FUNDS });
  const store = createSqliteClientStore({ path: join(dir, `${name}.sqlite`) });
  const budget = createBudget({
    store,
    limits: { perRequest: '10 sat', perBalance: '50 sat', day: '1000 sat', total: '1000 sat' },
  });
  const wallet = wrapBackend(network.backend(name));
  const make = (extra: Partial<PayingFetchOptions> = {}) =>
    createPayingFetch({ wallets: wallet, store, budget, ...options, ...extra });
  return {
    store,
    budget,
    make,
    fetch402: make(),
    /** What left the wallet for good (deposits less refunds). */
    spent: () => FUNDS - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

/** The ledger of a session: deposits, draws, refund, net. */
async function sessionLedger(store: ClientStore, account: string) {
  const [row] = await store.summary({ account }, 'account');
  return {
    deposits: row?.purchases.amountMsat,
    draws: row?.draws.amountMsat,
    refund: row?.refunds.amountMsat,
    net: (row?.purchases.amountMsat ?? 0n) - (row?.refunds.amountMsat ?? 0n),
  };
}

describe('paying fetch: MPP lightning sessions', () => {
  it('opens, draws, tops up, is reused by another paying fetch on the store, and closes with the refund', async () => {
    const agent = newAgent({ preferences: ['mpp-session', 'l402'] });
    for (let i = 0; i < 6; i++) {
      const response = await agent.fetch402(`${base}/chat`);
      expect(response.status).toBe(200);
      expect(response.headers.get('tollway-charged')).toBe('10000 msat');
    }
    // Another process of the agent (another paying fetch on the same database) draws on it.
    const other = agent.make();
    expect((await other(`${base}/chat`)).status).toBe(200);
    const [session] = await agent.store.listSessions({ states: ['open'] });
    expect(session).toBeDefined();
    const id = session?.id as string;
    // 50 sat deposit, 5 calls of 10 sat; the 6th found it empty: a 50 sat top-up.
    expect((await shopStore.getSession(id))?.depositMsat).toBe(100_000n);
    expect(await agent.store.list({ kind: 'purchase' })).toHaveLength(2);
    expect(agent.spent()).toBe(100_000n);
    const spentInBudget = async () =>
      (await agent.budget.status())
        .filter((w) => w.window !== 'request')
        .map((w) => [w.window, w.spentMsat]);
    expect(await spentInBudget()).toEqual([
      ['day', 100_000n],
      ['total', 100_000n],
    ]);

    const closed = await agent.fetch402.close();
    expect(closed).toEqual([{ id, origin: base, refundMsat: 30_000n, refundStatus: 'succeeded' }]);
    // The refund reached the wallet through its return invoice.
    expect(agent.spent()).toBe(70_000n);
    expect(await sessionLedger(agent.store, id)).toEqual({
      deposits: 100_000n,
      draws: 70_000n,
      refund: 30_000n,
      net: 70_000n,
    });
    expect((await agent.store.getSession(id))?.state).toBe('closed');
    // The budget got the unspent part back.
    expect(await spentInBudget()).toEqual([
      ['day', 70_000n],
      ['total', 70_000n],
    ]);
    expect((await shopStore.getSession(id))?.refundStatus).toBe('succeeded');
    // Closed: the next call opens a new session.
    expect((await agent.fetch402(`${base}/chat`)).status).toBe(200);
    expect(await agent.store.listSessions({ states: ['open'] })).toHaveLength(1);
    await agent.fetch402.close();
    await agent.store.close();
  });

  it('closes a session idle for sessions.idleCloseMs and collects its refund', async () => {
    const agent = newAgent({
      preferences: ['mpp-session'],
      sessions: { idleCloseMs: 200 },
    });
    expect((await agent.fetch402(`${base}/chat`)).status).toBe(200);
    expect(agent.spent()).toBe(50_000n);
    // Generous waits: on a loaded machine the idle timer and the refund's payment run late.
    await vi.waitFor(() => expect(agent.spent()).toBe(10_000n), { timeout: 15_000 });
    // The wallet has the refund before the store records the close.
    await vi.waitFor(
      async () =>
        expect((await agent.store.listSessions())[0]).toMatchObject({
          state: 'closed',
          refundMsat: 40_000n,
        }),
      { timeout: 5000 },
    );
    await agent.store.close();
  });

  it('records the refund of a session the server closed when idle at the next call, and opens another', async () => {
    const agent = newAgent({ preferences: ['mpp-session'] });
    expect((await agent.fetch402(`${quick.base}/chat`)).status).toBe(200);
    const [session] = await agent.store.listSessions({ states: ['open'] });
    const id = session?.id as string;
    // Idle for its second: the server closes it and refunds the 40 sat left.
    await vi.waitFor(
      async () => expect((await quick.store.getSession(id))?.refundStatus).toBe('succeeded'),
      { timeout: 10_000 },
    );
    expect(agent.spent()).toBe(10_000n);
    // The next call is refused (session_closed): the client asks for the close receipt, records
    // the refund, and pays a new session instead of topping up the closed one.
    const next = await agent.fetch402(`${quick.base}/chat`);
    expect(next.status).toBe(200);
    expect(agent.spent()).toBe(60_000n);
    expect(await agent.store.getSession(id)).toMatchObject({
      state: 'closed',
      refundMsat: 40_000n,
      refundStatus: 'succeeded',
    });
    expect(await sessionLedger(agent.store, id)).toEqual({
      deposits: 50_000n,
      draws: 10_000n,
      refund: 40_000n,
      net: 10_000n,
    });
    const day = (await agent.budget.status()).find((w) => w.window === 'day');
    expect(day?.spentMsat).toBe(60_000n);
    expect(await agent.store.list({ kind: 'purchase' })).toHaveLength(2);
    await agent.store.close();
  });

  it('close() of a session the server closed when idle collects the refund the server paid', async () => {
    const agent = newAgent({ preferences: ['mpp-session'] });
    expect((await agent.fetch402(`${quick.base}/chat`)).status).toBe(200);
    const [session] = await agent.store.listSessions({ states: ['open'] });
    const id = session?.id as string;
    await vi.waitFor(
      async () => expect((await quick.store.getSession(id))?.refundStatus).toBe('succeeded'),
      { timeout: 10_000 },
    );
    const closed = await agent.fetch402.close();
    expect(closed).toEqual([
      { id, origin: quick.base, refundMsat: 40_000n, refundStatus: 'succeeded' },
    ]);
    // Paid once: the close answers how the server's own close went.
    expect(agent.spent()).toBe(10_000n);
    expect(await sessionLedger(agent.store, id)).toMatchObject({ refund: 40_000n, net: 10_000n });
    await agent.store.close();
  });

  it('picks the session over a balance token when the expected calls cost less than its deposit', async () => {
    const few = newAgent({ sessions: { expectedCalls: 2 } });
    expect((await few.fetch402(`${base}/chat`)).status).toBe(200);
    expect((await few.store.list({ kind: 'purchase' }))[0]?.protocol).toBe('mpp-session');
    await few.fetch402.close();
    expect(few.spent()).toBe(10_000n);
    const many = newAgent({ sessions: { expectedCalls: 10 } });
    expect((await many.fetch402(`${base}/chat`)).status).toBe(200);
    expect((await many.store.list({ kind: 'purchase' }))[0]?.protocol).toBe('l402');
    await few.store.close();
    await many.store.close();
  });
});
