// The paying fetch's spans, with `tracing: true`, exported to an in-process collector: a paid L402
// call to Tollway's own engine (behind the node:http adapter, tracing too) on loopback, both sides
// on the embedded dev Lightning node. The call's span tree and attributes, and no secret of
// either side (preimage, macaroon, Authorization value, master secret, root key, the wallet's
// token) in any span; a paying fetch without `tracing` makes no span.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createBudget,
  createMemoryClientStore,
  createPayingFetch,
  getPayment,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { type PaidRequest, withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, type Paywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseL402Credential } from '../../src/l402/credential.js';
import { createRootKeys } from '../../src/server/root-keys.js';
import {
  type Collector,
  collectSpans,
  leakedSecrets,
  spansNamed,
  treeOf,
} from '../support/tracing.js';

const secret = createMasterSecret();
let collector: Collector;
let network: DevNetwork;
let paywall: Paywall;
let url: string;
let close: () => Promise<void>;
/** The Authorization values the API received. */
const received: string[] = [];

beforeAll(async () => {
  collector = collectSpans();
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [secret],
    logger: { warn: () => undefined, error: () => undefined },
    tracing: true,
  });
  const route = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
  const handler = withPaywall(paywall, route, (req: PaidRequest, res: ServerResponse) => {
    if (req.headers.authorization !== undefined) received.push(req.headers.authorization);
    res.end('{"sunny":true}');
  });
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/forecast`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});

afterAll(async () => {
  await close?.();
  await paywall?.close();
  await network?.close();
});

beforeEach(() => collector.reset());

let agents = 0;
function newAgent() {
  const name = `traced-agent${++agents}`;
  const { token } = network.openWallet(name, { balanceMsat: 1_000_000_000n });
  return { token, wallet: wrapBackend(network.backend(name)) };
}

describe('the paying fetch with tracing', () => {
  it('traces a paid call: send (402), offers, budget, pay, retry; what it paid; no secret', async () => {
    const { token, wallet } = newAgent();
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({
      wallets: wallet,
      store,
      budget: createBudget({ store, limits: { perRequest: '100 sat' } }),
      tracing: true,
    });
    const response = await fetch402(`${url}?city=Oslo`);
    expect(response.status).toBe(200);
    const paid = getPayment(response);
    if (paid === undefined) throw new Error('no payment');
    const spans = await vi.waitFor(() => {
      const all = collector.spans();
      expect(spansNamed(all, 'tollway.fetch')).toHaveLength(1);
      expect(spansNamed(all, 'tollway.request')).toHaveLength(2);
      return all;
    });
    const [call] = spansNamed(spans, 'tollway.fetch');
    if (call === undefined) throw new Error('no call span');
    expect(treeOf(call, spans)).toEqual({
      name: 'tollway.fetch',
      children: ['send', 'offers', 'budget', 'pay', 'retry'].map((step) => ({
        name: `tollway.${step}`,
        children: [],
      })),
    });
    expect(call.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': url,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(url).port),
      'http.response.status_code': 200,
      'tollway.outcome': 'paid',
      'tollway.protocol': 'l402',
      'tollway.paid.amount': '10000',
      'tollway.paid.unit': 'msat',
      'tollway.fee.amount': paid.feeMsat.toString(),
      'tollway.fee.unit': 'msat',
      'tollway.payment.hash': paid.paymentHash,
    });
    const steps = spans.filter(
      (span) => span.parentSpanContext?.spanId === call.spanContext().spanId,
    );
    const step = (name: string) => spansNamed(steps, name)[0]?.attributes;
    expect(step('tollway.send')).toEqual({ 'http.response.status_code': 402 });
    expect(step('tollway.offers')).toEqual({
      'tollway.offers': ['l402', 'mpp'],
      'tollway.offers.rejected': 0,
    });
    expect(step('tollway.budget')).toEqual({
      'tollway.protocol': 'l402',
      'tollway.held.amount': String(10_000n + 10_000n),
      'tollway.held.unit': 'msat',
    });
    expect(step('tollway.retry')).toEqual({ 'http.response.status_code': 200 });

    const [authorization] = received;
    const credential = parseL402Credential(authorization);
    const macaroon = credential?.macaroons[0];
    if (authorization === undefined || macaroon === undefined) throw new Error('no credential');
    expect(
      leakedSecrets(spans, {
        preimage: paid.proof,
        authorization,
        'macaroon signature': macaroon.signature,
        credential: authorization.slice('L402 '.length),
        'master secret': secret,
        'root key': createRootKeys([secret]).rootKey(macaroon.identifier),
        'wallet token': token,
      }),
    ).toEqual([]);
  });

  it('marks a refused payment: the budget span and the call fail with the budget code', async () => {
    const { wallet } = newAgent();
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({
      wallets: wallet,
      store,
      budget: createBudget({ store, limits: { perRequest: '1 sat' } }),
      tracing: true,
    });
    await expect(fetch402(url)).rejects.toMatchObject({ code: 'over_price' });
    const spans = collector.spans();
    const [call] = spansNamed(spans, 'tollway.fetch');
    expect(call?.attributes['error.type']).toBe('over_price');
    expect(spansNamed(spans, 'tollway.budget')[0]?.attributes['error.type']).toBe('over_price');
    expect(spansNamed(spans, 'tollway.pay')).toEqual([]);
  });

  it('makes no span without tracing', async () => {
    const { wallet } = newAgent();
    const fetch402 = createPayingFetch({ wallets: wallet });
    const response = await fetch402(url);
    expect(response.status).toBe(200);
    expect(spansNamed(collector.spans(), 'tollway.fetch')).toEqual([]);
  });
});
