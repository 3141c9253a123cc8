// The paying fetch against independent challenge servers (every form in the research notes) on
// loopback, paying with wallets of the embedded dev Lightning node.
import { createHash } from 'node:crypto';
import { isTollwayError } from '@tollway/sdk';
import {
  createBudget,
  createMemoryClientStore,
  createPayingFetch,
  getPayment,
  type PayingFetchEvent,
  type PayingFetchOptions,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import {
  createDevBackend,
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
  type DevServerFault,
} from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChallengeServer, startChallengeServer } from '../support/challenge-servers.js';

let network: DevNetwork;
let server: ChallengeServer;
let devServer: DevServer;
let nextFault: DevServerFault | undefined;

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  server = await startChallengeServer(network.backend('shop'));
  devServer = await createDevServer({
    network,
    fault: () => {
      const fault = nextFault;
      nextFault = undefined;
      return fault;
    },
  });
});

afterAll(async () => {
  await server.close();
  await devServer.close();
  await network.close();
});

let wallet = 0;
/**
 * A fresh funded agent wallet behind the shared safety layer: in process, or (`http`) through the
 * dev node's HTTP API, where a payment takes a network round trip as with a real wallet.
 */
function newAgent(balanceMsat = 1_000_000_000n, options: { http?: boolean } = {}) {
  const name = `agent${++wallet}`;
  const { token } = network.openWallet(name, { balanceMsat });
  const raw = options.http
    ? createDevBackend({ url: devServer.url, wallet: name, token })
    : network.backend(name);
  return {
    name,
    backend: wrapBackend(raw),
    spent: () => balanceMsat - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

function payingFetch(
  agent: ReturnType<typeof newAgent>,
  options: Partial<PayingFetchOptions> = {},
) {
  const events: PayingFetchEvent[] = [];
  const fetch402 = createPayingFetch({
    wallets: agent.backend,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { fetch402, events };
}

const sha256 = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

async function rejection(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    if (isTollwayError(error)) return error;
    throw error;
  }
  throw new Error('expected a TollwayError');
}

describe('every challenge form', () => {
  it.each([
    ['aperture', 'l402'],
    ['spec', 'l402'],
    ['lower', 'l402'],
    ['unquoted', 'l402'],
    ['mixed', 'l402'],
    ['urlsafe', 'l402'],
    ['nocomma', 'l402'],
    ['opaque', 'l402'],
    ['mpp', 'mpp'],
    ['multi', 'l402'],
  ])('pays the %s form once, by %s, at the invoice price', async (form, protocol) => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent);
    const response = await fetch402(`${server.url}/${form}/thing?price=7`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ form, paid: protocol });
    const payment = getPayment(response);
    expect(payment).toMatchObject({
      protocol,
      amountMsat: 7_000n,
      feeMsat: 0n,
      origin: server.url,
    });
    expect(sha256(payment?.proof ?? '')).toBe(payment?.paymentHash);
    expect(agent.spent()).toBe(7_000n);
  });

  it('pays the MPP offer of a mixed header when MPP is preferred', async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent, { preferences: ['mpp', 'l402'] });
    const response = await fetch402(`${server.url}/mixed/thing`);
    expect(await response.json()).toMatchObject({ paid: 'mpp' });
    expect(agent.spent()).toBe(10_000n);
  });

  it.each([
    ['x402v2', ['x402:capability_unsupported']],
    ['x402v1', ['x402:capability_unsupported']],
    ['fewsats', ['l402-offers:capability_unsupported']],
    ['cashu', ['cashu:capability_unsupported']],
    ['broken-invoice', ['l402:invalid_invoice']],
    ['expired', ['l402:invoice_expired']],
    ['mainnet', ['l402:wrong_network']],
    ['amountless', ['l402:amount_required']],
    ['missing-invoice', ['l402:invalid_challenge']],
    ['garbage', []],
  ])('pays nothing for the %s form: no_payable_offer', async (form, reasons) => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent);
    const error = await rejection(fetch402(`${server.url}/${form}/thing`));
    expect(error.code).toBe('no_payable_offer');
    const rejected = (error.details?.rejected ?? []) as Array<{ kind: string; code: string }>;
    expect(rejected.map((r) => `${r.kind}:${r.code}`)).toEqual(reasons);
    expect(agent.spent()).toBe(0n);
  });

  it.each(['mismatch-mpp', 'mismatch-body'])(
    'refuses the %s form: a price that disagrees with the invoice',
    async (form) => {
      const agent = newAgent();
      const { fetch402 } = payingFetch(agent);
      const error = await rejection(fetch402(`${server.url}/${form}/thing?price=10`));
      expect(error.code).toBe('amount_mismatch');
      expect(agent.spent()).toBe(0n);
    },
  );
});

describe('quote', () => {
  it('lists every offer with its decoded price and the choice, and pays nothing', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { perRequest: '5 sat' } });
    const { fetch402 } = payingFetch(agent, { store, budget });
    const quote = await fetch402.quote(`${server.url}/multi/q?price=12`);
    expect(quote.status).toBe(402);
    expect(quote.cached).toBe(false);
    expect(
      quote.offers.map((o) => [o.protocol, o.protocol === 'x402' ? o.amount : o.amountMsat]),
    ).toEqual([
      ['l402', 12_000n],
      ['mpp', 12_000n],
      ['x402', 10_000n],
    ]);
    expect(quote.choice?.protocol).toBe('l402');
    expect(quote.budget).toMatchObject({ ok: false, code: 'over_price' });
    expect(quote.rejected.map((r) => r.kind)).toEqual(['x402']);
    expect(agent.spent()).toBe(0n);
    expect(await store.list()).toEqual([]);
  });
});

describe('credentials', () => {
  it('reuses a cached token: the second call sends it at once, with no 402 round trip', async () => {
    const agent = newAgent();
    const { fetch402, events } = payingFetch(agent);
    const url = `${server.url}/aperture/reuse`;
    expect((await fetch402(url)).status).toBe(200);
    const challenges = server.challenges;
    const logged = server.log.length;
    const second = await fetch402(`${server.url}/aperture/another-path`);
    expect(second.status).toBe(200);
    expect(getPayment(second)).toBeUndefined();
    expect(server.challenges).toBe(challenges);
    expect(server.log.slice(logged)).toEqual([
      expect.objectContaining({
        path: '/aperture/another-path',
        authorization: expect.stringMatching(/^L402 /),
      }),
    ]);
    expect(agent.spent()).toBe(10_000n);
    expect(events.map((e) => e.type)).toEqual([
      'challenge',
      'offers',
      'chosen',
      'paid',
      'retry',
      'cached',
    ]);
  });

  it('caches a token under the paths its tollway_paths caveat names, and until its expiry', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const { fetch402 } = payingFetch(agent, { store });
    await fetch402(`${server.url}/aperture/a?paths=/aperture/a,/aperture/b&validFor=3600`);
    const a = await store.findCredential(server.url, '/aperture/a', Date.now());
    expect(a).toMatchObject({ scope: '/aperture/a', protocol: 'l402' });
    expect(a?.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    expect(await store.findCredential(server.url, '/aperture/b/x', Date.now())).toMatchObject({
      scope: '/aperture/b',
    });
    expect(await store.findCredential(server.url, '/aperture/c', Date.now())).toBeUndefined();
    expect(
      await store.findCredential(server.url, '/aperture/a', Date.now() + 3_700_000),
    ).toBeUndefined();
  });

  it('pays once more when a cached token is refused, and never twice in one call', async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent);
    // Each token serves one request.
    const url = `${server.url}/spec/once?uses=1`;
    expect((await fetch402(url)).status).toBe(200);
    const second = await fetch402(url);
    expect(second.status).toBe(200);
    expect(getPayment(second)?.amountMsat).toBe(10_000n);
    expect(agent.spent()).toBe(20_000n);

    // A token that never works: one payment per call, then the refusal is returned.
    const never = `${server.url}/spec/never?uses=0`;
    const first = await fetch402(never);
    expect(first.status).toBe(402);
    expect(getPayment(first)?.amountMsat).toBe(10_000n);
    expect(agent.spent()).toBe(30_000n);
    expect((await fetch402(never)).status).toBe(402);
    expect(agent.spent()).toBe(40_000n);
  });

  it('pays again for a refused token only within budget', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { total: '15 sat' } });
    const { fetch402 } = payingFetch(agent, { store, budget, maxFeeMsat: 0n });
    expect((await fetch402(`${server.url}/aperture/x?uses=1`)).status).toBe(200);
    const error = await rejection(fetch402(`${server.url}/aperture/x?uses=1`));
    expect(error.code).toBe('budget_exceeded');
    expect(agent.spent()).toBe(10_000n);
  });
});

describe('request bodies', () => {
  it('replays a POST body (string or stream) on the paid retry', async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent, { preferences: ['mpp'] });
    const json = JSON.stringify({ question: 'forecast', days: 3 });
    const response = await fetch402(`${server.url}/mpp/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: json,
    });
    expect(await response.json()).toMatchObject({ method: 'POST', body: json, paid: 'mpp' });
    const posts = server.log.filter((entry) => entry.path === '/mpp/ask');
    expect(posts.map((p) => [p.method, p.authorization === undefined])).toEqual([
      ['POST', true],
      ['POST', false],
    ]);

    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed '));
        controller.enqueue(new TextEncoder().encode('body'));
        controller.close();
      },
    });
    const streamed = await fetch402(`${server.url}/mpp/stream`, {
      method: 'PUT',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await streamed.json()).toMatchObject({ method: 'PUT', body: 'streamed body' });
  });

  it('sends a call without a body as it was given, each time: its method and headers', async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent);
    const url = new URL(`${server.url}/aperture/as-given`);
    const init = { method: 'delete', headers: { 'x-trace': 'call-1' } };
    expect((await fetch402(url, init)).status).toBe(200);
    expect((await fetch402(url, init)).status).toBe(200);
    const sent = server.log.filter((entry) => entry.path === '/aperture/as-given');
    expect(sent.map((p) => [p.method, p.trace, p.authorization === undefined])).toEqual([
      ['DELETE', 'call-1', true],
      ['DELETE', 'call-1', false],
      ['DELETE', 'call-1', false],
    ]);
  });

  it("sends the caller's headers with its credential, in each form fetch takes them", async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent);
    const url = `${server.url}/aperture/header-forms`;
    expect((await fetch402(url)).status).toBe(200);
    // The saved credential takes the place of an Authorization the caller set, in any case.
    const forms: NonNullable<RequestInit['headers']>[] = [
      { 'x-trace': 'record', AUTHORIZATION: 'Basic stale' },
      { 'x-trace': 'record without authorization' },
      new Headers({ 'x-trace': 'headers', authorization: 'Basic stale' }),
      [
        ['x-trace', 'pairs'],
        ['AUTHORIZATION', 'Basic stale'],
      ],
    ];
    for (const headers of forms) expect((await fetch402(url, { headers })).status).toBe(200);
    const sent = server.log.filter((entry) => entry.path === '/aperture/header-forms').slice(-4);
    expect(sent.map((entry) => entry.trace)).toEqual([
      'record',
      'record without authorization',
      'headers',
      'pairs',
    ]);
    for (const entry of sent) expect(entry.authorization).toMatch(/^L402 /);
  });

  it('refuses a body larger than maxBodyBytes before sending anything', async () => {
    const agent = newAgent();
    const { fetch402 } = payingFetch(agent, { maxBodyBytes: 8 });
    const logged = server.log.length;
    const error = await rejection(
      fetch402(`${server.url}/mpp/big`, { method: 'POST', body: '123456789' }),
    );
    expect(error.code).toBe('body_too_large');
    expect(server.log.length).toBe(logged);
  });
});

describe('concurrency', () => {
  it('50 concurrent calls to a paid route with an empty cache make exactly one payment', async () => {
    const agent = newAgent(1_000_000_000n, { http: true });
    const { fetch402 } = payingFetch(agent);
    const served = server.served;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => fetch402(`${server.url}/aperture/hot`)),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(responses.filter((r) => getPayment(r) !== undefined)).toHaveLength(1);
    expect(agent.spent()).toBe(10_000n);
    expect(server.served - served).toBe(50);
  });

  it('50 concurrent single-use charges sharing the last 10 sat of a budget pay 10 sat in all', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { total: '10 sat' } });
    const { fetch402 } = payingFetch(agent, { store, budget, maxFeeMsat: 0n });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => fetch402(`${server.url}/mpp/item-${i}?price=1`)),
    );
    const paid = results.filter((r) => r.status === 'fulfilled' && r.value.status === 200);
    const codes = results.flatMap((r) =>
      r.status === 'rejected' && isTollwayError(r.reason) ? [r.reason.code] : [],
    );
    expect(paid).toHaveLength(10);
    expect(codes).toEqual(Array(40).fill('budget_exceeded'));
    expect(agent.spent()).toBe(10_000n);
    expect((await store.totals()).map((t) => t.amountMsat)).toEqual([10_000n]);
  });

  it('50 concurrent calls refused with a path-bound token, sharing the last 10 sat, pay 10 sat in all', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { total: '100 sat' } });
    const { fetch402 } = payingFetch(agent, { store, budget, maxFeeMsat: 0n });
    // Spend 90 of the 100 sat first.
    expect((await fetch402(`${server.url}/spec/warmup?price=90&bind=1`)).status).toBe(200);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => fetch402(`${server.url}/spec/item-${i}?price=1&bind=1`)),
    );
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value.status === 200);
    const codes = results.flatMap((r) =>
      r.status === 'rejected' && isTollwayError(r.reason) ? [r.reason.code] : [],
    );
    expect(ok).toHaveLength(10);
    expect(codes).toEqual(Array(40).fill('budget_exceeded'));
    expect(agent.spent()).toBe(100_000n);
  });
});

describe('budget', () => {
  it('reserves before paying and counts spend in rolling windows (controlled clock)', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    let clock = Date.UTC(2026, 0, 1);
    const budget = createBudget({ store, limits: { hour: '10 sat' }, now: () => clock });
    const { fetch402 } = payingFetch(agent, { store, budget, maxFeeMsat: 0n });
    expect((await fetch402(`${server.url}/mpp/w1`)).status).toBe(200);
    expect(await budget.status()).toEqual([
      expect.objectContaining({ window: 'hour', spentMsat: 10_000n, heldMsat: 0n }),
    ]);
    clock += 30 * 60_000;
    expect((await rejection(fetch402(`${server.url}/mpp/w2`))).code).toBe('budget_exceeded');
    expect(agent.spent()).toBe(10_000n);
    clock += 31 * 60_000;
    expect((await fetch402(`${server.url}/mpp/w3`)).status).toBe(200);
    expect(agent.spent()).toBe(20_000n);
  });

  it('releases the hold and marks the ledger entry failed when the payment definitely fails', async () => {
    const agent = newAgent(5_000n);
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { day: '100 sat' } });
    const { fetch402 } = payingFetch(agent, { store, budget });
    const error = await rejection(fetch402(`${server.url}/mpp/poor?price=10`));
    expect(error.code).toBe('payment_failed');
    expect(error.details).toMatchObject({ reason: 'insufficient_balance' });
    expect(await budget.status()).toEqual([
      expect.objectContaining({ spentMsat: 0n, heldMsat: 0n }),
    ]);
    expect((await store.list()).map((e) => e.status)).toEqual(['failed']);
  });

  it('commits the amount and the actual fee, and tags the ledger entry', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { day: '100 sat' }, tags: { agent: 'a7' } });
    const seen: bigint[] = [];
    const { fetch402 } = payingFetch(agent, {
      store,
      budget,
      tags: { task: '42' },
      onPayment: (payment) => seen.push(payment.amountMsat),
    });
    const response = await fetch402(`${server.url}/aperture/t?price=3`);
    const [entry] = await store.list();
    expect(entry).toMatchObject({
      status: 'succeeded',
      amountMsat: 3_000n,
      feeMsat: 0n,
      protocol: 'l402',
      origin: server.url,
      tags: { agent: 'a7', task: '42' },
      reference: getPayment(response)?.paymentHash,
      proof: getPayment(response)?.proof,
      payee: network.pubkey,
    });
    expect(seen).toEqual([3_000n]);
    expect(await budget.status()).toEqual([
      expect.objectContaining({ spentMsat: 3_000n, heldMsat: 0n }),
    ]);
  });
});

describe('pause', () => {
  it('refuses to pay while the store is paused, with or without a budget, and pays once resumed', async () => {
    const agent = newAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { day: '100 sat' } });
    const withBudget = payingFetch(agent, { store, budget }).fetch402;
    const without = payingFetch(agent, { store }).fetch402;
    await store.setPaused(true);
    for (const fetch402 of [withBudget, without]) {
      const error = await rejection(fetch402(`${server.url}/aperture/paused?price=4`));
      expect(error.code).toBe('payments_paused');
    }
    expect(await withBudget.quote(`${server.url}/aperture/paused?price=4`)).toMatchObject({
      status: 402,
      budget: { ok: false, code: 'payments_paused' },
    });
    expect(agent.spent()).toBe(0n);
    expect(await store.list()).toEqual([]);
    await store.setPaused(false);
    expect((await without(`${server.url}/aperture/paused?price=4`)).status).toBe(200);
    expect(agent.spent()).toBe(4_000n);
  });
});

describe('proofs and unknown outcomes', () => {
  function rawAgent() {
    const agent = newAgent();
    const token = network.getWallet(agent.name)?.token ?? '';
    return {
      ...agent,
      backend: createDevBackend({ url: devServer.url, wallet: agent.name, token }),
    };
  }

  it('checks the preimage itself, even behind a wallet that does not', async () => {
    const agent = rawAgent();
    const store = createMemoryClientStore();
    const { fetch402 } = payingFetch(agent, { store, preferences: ['mpp'] });
    // A quote asks the wallet for its network, so the next request to the dev node is the payment.
    await fetch402.quote(`${server.url}/mpp/warm`);
    const logged = server.log.length;
    nextFault = 'wrong_preimage';
    const error = await rejection(fetch402(`${server.url}/mpp/proof`));
    expect(error.code).toBe('preimage_mismatch');
    // No credential was sent with a bad proof, and the payment stays pending for resolution.
    expect(server.log.slice(logged).map((e) => e.authorization)).toEqual([undefined]);
    expect((await store.list()).map((e) => e.status)).toEqual(['pending']);
    await agent.backend.close();
  });

  it('keeps a payment whose outcome is unknown pending, then resolves it by hash instead of paying again', async () => {
    const agent = rawAgent();
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { day: '100 sat' } });
    const { fetch402, events } = payingFetch(agent, { store, budget, maxFeeMsat: 0n });
    await fetch402.quote(`${server.url}/spec/warm`);
    nextFault = 'drop';
    const error = await rejection(fetch402(`${server.url}/spec/dropped`));
    expect(error.code).toBe('payment_timeout');
    expect(agent.spent()).toBe(10_000n);
    expect((await store.pendingPayments()).map((e) => e.amountMsat)).toEqual([10_000n]);
    expect(await budget.status()).toEqual([
      expect.objectContaining({ heldMsat: 10_000n, spentMsat: 0n }),
    ]);

    const challenges = server.challenges;
    const response = await fetch402(`${server.url}/spec/dropped`);
    expect(response.status).toBe(200);
    expect(getPayment(response)).toBeUndefined();
    expect(agent.spent()).toBe(10_000n);
    expect(server.challenges - challenges).toBe(1);
    expect(events.filter((e) => e.type === 'recovered')).toHaveLength(1);
    expect(await store.pendingPayments()).toEqual([]);
    expect(await budget.status()).toEqual([
      expect.objectContaining({ heldMsat: 0n, spentMsat: 10_000n }),
    ]);
    await agent.backend.close();
  });
});

beforeEach(() => {
  nextFault = undefined;
});

describe('wallet failures', () => {
  /** A wallet of the dev node over HTTP, with its own token replaced, or at a closed port. */
  function brokenWallet(kind: 'wrong token' | 'unreachable') {
    const { token } = network.openWallet(`broken${++wallet}`);
    return wrapBackend(
      kind === 'wrong token'
        ? createDevBackend({
            url: devServer.url,
            wallet: `broken${wallet}`,
            token: '00'.repeat(32),
          })
        : createDevBackend({ url: 'http://127.0.0.1:1', wallet: `broken${wallet}`, token }),
    );
  }

  for (const [kind, code] of [
    ['wrong token', 'unauthorized'],
    ['unreachable', 'backend_unavailable'],
  ] as const) {
    it(`says what is wrong with the wallet (${kind}: ${code}), not which network it is on`, async () => {
      const backend = brokenWallet(kind);
      const fetch402 = createPayingFetch({ wallets: backend });
      const paid = await rejection(fetch402(`${server.url}/aperture/broken-wallet`));
      expect(paid.code).toBe(code);
      const quoted = await rejection(fetch402.quote(`${server.url}/aperture/broken-wallet`));
      expect(quoted.code).toBe(code);
      await backend.close();
    });
  }
});

describe('wallets given as connection strings', () => {
  it('connects the wallet at the first payment, pays with it, and closes it on close()', async () => {
    const name = `agent${++wallet}`;
    const { token } = network.openWallet(name, { balanceMsat: 1_000_000_000n });
    const fetch402 = createPayingFetch({
      wallets: `dev+${devServer.url}?wallet=${name}&token=${token}`,
    });
    const response = await fetch402(`${server.url}/aperture/connection-string`);
    expect(response.status).toBe(200);
    expect(getPayment(response)?.protocol).toBe('l402');
    expect(network.getWallet(name)?.balanceMsat).toBeLessThan(1_000_000_000n);
    await fetch402.close();
  });

  it('refuses a malformed connection string when the paying fetch is made', () => {
    let error: unknown;
    try {
      createPayingFetch({ wallets: 'dev+http://127.0.0.1:9?wallet=alice' });
    } catch (caught) {
      error = caught;
    }
    expect(isTollwayError(error, 'invalid_connection_string')).toBe(true);
  });

  it('reports a wallet that cannot be reached as the reason, on every call', async () => {
    const fetch402 = createPayingFetch({ wallets: 'dev+http://127.0.0.1:1?wallet=x&token=t' });
    for (let call = 0; call < 2; call++) {
      const refused = await rejection(fetch402(`${server.url}/aperture/unreachable-string`));
      expect(refused.code).toBe('backend_unavailable');
    }
    await fetch402.close();
  });
});
