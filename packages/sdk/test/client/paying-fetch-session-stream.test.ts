// A streamed answer drawing on an MPP lightning session, priced per event (createEventMeter),
// against Tollway's engine behind the node:http adapter on loopback, both sides on the dev
// Lightning node: when the session runs out mid-stream the server sends `payment-need-topup`
// and holds the stream; the paying fetch tops the session up within its budget and the stream
// goes on. Without a top-up the stream ends after `sessions.topUpTimeout` with `session-timeout`,
// charged what it delivered.
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createBudget,
  createMemoryClientStore,
  createPayingFetch,
  type PayingFetchEvent,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import {
  createEventMeter,
  createMasterSecret,
  createPaywall,
  type Store,
} from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

let network: DevNetwork;
let server: Server;
let base: string;
let shopStore: Store;
const FUNDS = 1_000_000_000n;
const EVENTS = 8;

/** Eight events of 5 sat each, written as a handler that minds backpressure writes them. */
async function ticks(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (let i = 1; i <= EVENTS; i++) {
    if (!res.write(`data: tick ${i}\n\n`)) await once(res, 'drain');
  }
  res.end();
}

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: FUNDS });
  shopStore = createMemoryStore();
  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: shopStore,
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
    sessions: { idleTimeout: 600, topUpTimeout: 2 },
  });
  const route = paywall.route({
    service: 'ticks',
    price: '20 sat',
    balance: '50 sat',
    meter: createEventMeter('5 sat'),
  });
  const handler = withPaywall(paywall, route, (_req, res) => ticks(res));
  // Dearer events: holds of the price (20 sat) run ahead of what has gone out.
  const big = withPaywall(
    paywall,
    paywall.route({
      service: 'big',
      price: '20 sat',
      balance: '50 sat',
      meter: createEventMeter('15 sat'),
    }),
    (_req, res) => ticks(res),
  );
  server = createServer((req, res) =>
    req.url === '/big' ? void big(req, res) : void handler(req, res),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await network.close();
});

let agents = 0;
function newAgent(total: string) {
  const name = `stream-agent${++agents}`;
  network.openWallet(name, { balanceMsat: FUNDS });
  const store = createMemoryClientStore();
  const budget = createBudget({
    store,
    limits: { perRequest: '20 sat', perBalance: '50 sat', total },
  });
  const events: PayingFetchEvent[] = [];
  const fetch402 = createPayingFetch({
    wallets: wrapBackend(network.backend(name)),
    store,
    budget,
    preferences: ['mpp-session'],
    onEvent: (event) => events.push(event),
  });
  const spent = () => FUNDS - (network.getWallet(name)?.balanceMsat ?? 0n);
  return { store, fetch402, events, spent };
}

/** The events of an SSE body: [name, data]. */
/** The events of a stream as an EventSource dispatches them: a block without data is none. */
function eventsOf(text: string): Array<[string, string]> {
  return text
    .split('\n\n')
    .map((block) => block.split('\n'))
    .filter((lines) => lines.some((line) => line.startsWith('data: ')))
    .map((lines) => {
      const name = lines.find((line) => line.startsWith('event: '))?.slice(7) ?? 'message';
      const data = lines.find((line) => line.startsWith('data: '))?.slice(6) ?? '';
      return [name, data];
    });
}

const ticksOf = (n: number): Array<[string, string]> =>
  Array.from({ length: n }, (_, i) => ['message', `tick ${i + 1}`]);

describe('a session’s stream that runs out of deposit', () => {
  it('charges a stream left while it waits for what went out, not what was held', async () => {
    const agent = newAgent('60 sat');
    const aborted = new AbortController();
    const response = await agent.fetch402(`${base}/big`, { signal: aborted.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('payment-need-topup')) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    // 15 sat a tick from a 50 sat deposit, held 20 at a time: three ticks went (45 sat), 50 held.
    expect(eventsOf(text).filter(([name]) => name === 'message')).toEqual(ticksOf(3));
    aborted.abort();
    const [session] = await agent.store.listSessions({ states: ['open'] });
    const id = session?.id as string;
    await vi.waitFor(async () =>
      expect(await shopStore.getUsage(id)).toMatchObject({ spentMsat: 45_000n, heldMsat: 0n }),
    );
  });

  it('sends payment-need-topup, waits, and goes on once the paying fetch topped it up', async () => {
    const agent = newAgent('1000 sat');
    const first = await agent.fetch402(`${base}/ticks`);
    expect(eventsOf(await first.text())).toEqual(ticksOf(EVENTS));
    const [session] = await agent.store.listSessions({ states: ['open'] });
    const id = session?.id as string;
    // 8 events of 5 sat from a 50 sat deposit: the call held its 20 sat price, then 20 more.
    await vi.waitFor(async () => expect((await shopStore.getUsage(id)).spentMsat).toBe(40_000n));

    // 10 sat left: the second call starts with that and runs out at its third event.
    const second = await agent.fetch402(`${base}/ticks`);
    const told = eventsOf(await second.text());
    expect(told).toEqual([
      ...ticksOf(2),
      [
        'payment-need-topup',
        JSON.stringify({ sessionId: id, balanceSpent: 50, balanceRequired: 5 }),
      ],
      ...ticksOf(EVENTS).slice(2),
    ]);
    expect(agent.events.filter((e) => e.type === 'session-topped-up')).toEqual([
      { type: 'session-topped-up', url: `${base}/ticks`, sessionId: id },
    ]);
    expect((await shopStore.getSession(id))?.depositMsat).toBe(100_000n);
    await vi.waitFor(async () =>
      expect(await shopStore.getUsage(id)).toMatchObject({ spentMsat: 80_000n, heldMsat: 0n }),
    );
    expect(agent.spent()).toBe(100_000n);
    const closed = await agent.fetch402.close();
    expect(closed).toEqual([{ id, origin: base, refundMsat: 20_000n, refundStatus: 'succeeded' }]);
    expect(agent.spent()).toBe(80_000n);
  });

  it('ends the stream with session-timeout when no top-up comes, charged what it delivered', async () => {
    // The budget cannot pay a second deposit.
    const agent = newAgent('60 sat');
    await (await agent.fetch402(`${base}/ticks`)).text();
    const [session] = await agent.store.listSessions({ states: ['open'] });
    const id = session?.id as string;
    const started = Date.now();
    const second = await agent.fetch402(`${base}/ticks`);
    const told = eventsOf(await second.text());
    const shortfall = JSON.stringify({ sessionId: id, balanceSpent: 50, balanceRequired: 5 });
    expect(told).toEqual([
      ...ticksOf(2),
      ['payment-need-topup', shortfall],
      ['session-timeout', shortfall],
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(agent.events.find((e) => e.type === 'session-top-up-failed')).toMatchObject({
      sessionId: id,
      error: { code: 'budget_exceeded' },
    });
    // 40 sat for the first call, 10 for the two ticks the second delivered.
    await vi.waitFor(async () =>
      expect(await shopStore.getUsage(id)).toMatchObject({ spentMsat: 50_000n, heldMsat: 0n }),
    );
    const closed = await agent.fetch402.close();
    expect(closed).toEqual([{ id, origin: base, refundMsat: 0n, refundStatus: 'skipped' }]);
  });
});
