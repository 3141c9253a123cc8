// The gateway's `x402` block on a real chain (anvil with TestUSDC): every priced service also
// offers x402, settled by the self-hosted facilitator, and is paid by the official `@x402/fetch`
// client and by Tollway's paying fetch with an EVM wallet; `x402: false` opts a service out.
import { fixedRate } from '@tollway/sdk';
import { createPayingFetch } from '@tollway/sdk/client';
import { createEvmWallet } from '@tollway/sdk/x402';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startUpstream, type Upstream, x402ConfigBlock } from './support.js';
import {
  officialExactFetch,
  payerAndPayTo,
  startX402Gateway,
  type X402Gateway,
} from './x402-gateway.js';

const PRICE = 10_000n; // $0.01 in TestUSDC base units

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('gateway x402 offers', () => {
  const c = chain!;
  let upstream: Upstream;
  let started: X402Gateway;
  let gateway: Gateway;
  let upstreamCalls = 0;

  const x402Block = () => x402ConfigBlock(c);

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      upstreamCalls += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true, url: req.url }));
    });
    started = await startX402Gateway(c, {
      services: [
        { name: 'weather', path: '/weather', upstream: upstream.url, price: '$0.01' },
        { name: 'lightning', path: '/ln', upstream: upstream.url, price: '$0.01', x402: false },
      ],
    });
    gateway = started.gateway;
  });
  afterAll(async () => {
    await started?.close();
    await upstream?.close();
  });

  const balances = () => payerAndPayTo(c);

  it('offers x402 beside L402, and not on a service with `x402: false`', async () => {
    const offered = await fetch(`${gateway.url}/weather/today`);
    expect(offered.status).toBe(402);
    expect(offered.headers.get('www-authenticate')).toContain('L402');
    expect(offered.headers.get('payment-required')).toBeTruthy();
    const body = (await offered.json()) as { offers: Array<{ protocol: string }> };
    expect(body.offers.map((offer) => offer.protocol)).toEqual(['l402', 'x402']);

    const optedOut = await fetch(`${gateway.url}/ln/today`);
    expect(optedOut.status).toBe(402);
    expect(optedOut.headers.get('payment-required')).toBeNull();
    await optedOut.arrayBuffer();
    expect(upstreamCalls).toBe(0);
  });

  it('is paid by the official @x402/fetch client, with the money moved on chain', async () => {
    const before = await balances();
    const calls = upstreamCalls;
    const response = await officialExactFetch(c)(`${gateway.url}/weather/today`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ upstream: true, url: '/weather/today' });
    expect(response.headers.get('payment-response')).toBeTruthy();
    expect(upstreamCalls).toBe(calls + 1);
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  it("is paid by Tollway's paying fetch with an EVM wallet", async () => {
    const pay = createPayingFetch({
      wallets: [],
      preferences: ['x402'],
      x402: {
        wallet: createEvmWallet({
          privateKey: c.accounts.payer.privateKey,
          allowedAssets: [{ network: c.network, address: c.token }],
        }),
        rates: fixedRate('100000'),
      },
    });
    const before = await balances();
    const response = await pay(`${gateway.url}/weather/tomorrow`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ upstream: true, url: '/weather/tomorrow' });
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  it('refuses a malformed x402 block, naming the field', () => {
    const parse = (x402: unknown) => () =>
      parseGatewayConfig(
        { lightning: 'dev', x402, services: [] },
        { env: { FACILITATOR_KEY: c.accounts.facilitator.privateKey } },
      );
    expect(parse({ ...x402Block(), payTo: '0x12' })).toThrow(/x402\.payTo/);
    expect(parse({ ...x402Block(), network: 'base' })).toThrow(/x402\.network/);
    expect(parse({ ...x402Block(), facilitator: { rpcUrl: c.rpcUrl } })).toThrow(
      /x402\.facilitator/,
    );
    expect(parse({ ...x402Block(), settle: 'later' })).toThrow(/x402\.settle/);
    expect(parse(x402Block())).not.toThrow();
    expect(parse({ ...x402Block(), settle: 'upfront' })).not.toThrow();
  });
});
