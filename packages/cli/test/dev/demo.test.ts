import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, type Paywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/dev/demo.js';

// The demo agent against a real paywall (the SDK's node adapter) on loopback, paid from a real
// dev-network wallet: no gateway needed.
describe('the demo agent', () => {
  let network: DevNetwork;
  let paywall: Paywall;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop');
    network.openWallet('agent');
    paywall = createPaywall({
      lightning: network.backend('shop'),
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
    });
    const forecast = paywall.route({ service: 'forecast', price: '10 sat' });
    const pricey = paywall.route({ service: 'pricey', price: '500 sat' });
    const paid = (route: typeof forecast) =>
      withPaywall(paywall, route, (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end('{"sky":"sunny"}');
      });
    const forecastHandler = paid(forecast);
    const priceyHandler = paid(pricey);
    server = createServer((req, res) => {
      if (req.url?.startsWith('/free')) return void res.end('free');
      void (req.url?.startsWith('/pricey') ? priceyHandler(req, res) : forecastHandler(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await paywall?.close();
    await network?.close();
  });

  function demo(path: string, maxCostMsat?: bigint) {
    const lines: string[] = [];
    const result = runDemo({
      url: `${base}${path}`,
      wallet: network.backend('agent'),
      walletName: 'agent',
      print: (line) => lines.push(line),
      ...(maxCostMsat === undefined ? {} : { maxCostMsat }),
    });
    return result.then((value) => ({ result: value, text: lines.join('\n') }));
  }

  it('pays for a request, printing each numbered step, and moves exactly the price', async () => {
    const before = network.getWallet('agent')?.balanceMsat ?? 0n;
    const { result, text } = await demo('/v1/forecast?city=Lisbon');
    expect(result).toMatchObject({
      ok: true,
      body: '{"sky":"sunny"}',
      amountMsat: 10_000n,
      feeMsat: 0n,
    });
    if (!result.ok) return;
    expect(network.getWallet('agent')?.balanceMsat).toBe(before - 10_000n);
    const steps = [...text.matchAll(/^ {2}(\d)\. (\S.*?) {2,}/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(steps).toEqual([
      '1 Request',
      '2 402 Payment Required',
      '3 Invoice decoded',
      '4 Paid',
      '5 Retry',
      '6 200 OK',
    ]);
    expect(text).toContain('price 10 sat');
    expect(text).toMatch(/L402 {4}macaroon \+ BOLT11 invoice \(LSAT and L402 lines\)/);
    expect(text).toContain('Payment MPP, method=lightning, intent=charge');
    expect(text).toContain(`payment hash  ${result.paymentHash}`);
    expect(text).toContain(`preimage      ${result.preimage}`);
    expect(text).toContain('fee 0 sat from dev wallet "agent"');
    expect(text).toMatch(/Authorization: L402 AgEE\S+…\(\d+ chars\):\S+/);
    expect(text).toContain('{"sky":"sunny"}');
    // The credential it printed opens the route again without paying.
    const again = await fetch(`${base}/v1/forecast?city=Lisbon`, {
      headers: { authorization: result.authorization },
    });
    expect(again.status).toBe(200);
  });

  it('stops at step 1 when the route is not paid', async () => {
    const { result, text } = await demo('/free');
    expect(result).toEqual({
      ok: false,
      step: 1,
      message: 'expected 402 Payment Required, got 200',
    });
    expect(text).toContain('✗ step 1 failed');
  });

  it('refuses to pay above its limit, and pays nothing', async () => {
    const before = network.getWallet('agent')?.balanceMsat;
    const { result } = await demo('/pricey', 100_000n);
    expect(result).toMatchObject({ ok: false, step: 2 });
    if (result.ok) return;
    expect(result.message).toContain("above the demo's limit of 100 sat");
    expect(network.getWallet('agent')?.balanceMsat).toBe(before);
  });

  it('says why when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const lines: string[] = [];
    const result = await runDemo({
      url: `http://127.0.0.1:${port}/v1/forecast`,
      wallet: network.backend('agent'),
      walletName: 'agent',
      print: (line) => lines.push(line),
    });
    expect(result).toMatchObject({ ok: false, step: 1 });
    expect(lines.join('\n')).toContain('ECONNREFUSED');
  });
});
