// The gateway's `x402` block on a real chain (anvil with TestUSDC): every priced service also
// offers x402, settled by the self-hosted facilitator, and is paid by the official `@x402/fetch`
// client and by Tollway's paying fetch with an EVM wallet; `x402: false` opts a service out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedRate } from '@tollway/sdk';
import { createPayingFetch } from '@tollway/sdk/client';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { createEvmWallet } from '@tollway/sdk/x402';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { startUpstream, type Upstream, x402ConfigBlock } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };
const PRICE = 10_000n; // $0.01 in TestUSDC base units

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('gateway x402 offers', () => {
  const c = chain!;
  const dir = mkdtempSync(join(tmpdir(), 'tollway-gw-x402-'));
  let network: DevNetwork;
  let upstream: Upstream;
  let gateway: Gateway;
  let upstreamCalls = 0;

  const x402Block = () => x402ConfigBlock(c);

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop');
    upstream = await startUpstream((req, res) => {
      upstreamCalls += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true, url: req.url }));
    });
    const env = { FACILITATOR_KEY: c.accounts.facilitator.privateKey };
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        admin: { token: 'admin-token-for-tests-0123456789' },
        paywall: { protocols: ['l402'], usdPerBtc: '100000', rateLimits: { challenges: false } },
        x402: x402Block(),
        services: [
          { name: 'weather', path: '/weather', upstream: upstream.url, price: '$0.01' },
          { name: 'lightning', path: '/ln', upstream: upstream.url, price: '$0.01', x402: false },
        ],
      },
      { env },
    );
    gateway = await createGateway({
      config,
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
      env,
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    await network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function balances(): Promise<[bigint, bigint]> {
    return [
      await c.balanceOf(c.accounts.payer.address),
      await c.balanceOf(c.accounts.payTo.address),
    ];
  }

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
    const client = new x402Client();
    client.register(
      'eip155:*',
      new ExactEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey)),
    );
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    const before = await balances();
    const calls = upstreamCalls;
    const response = await wrapFetchWithPayment(fetch, client)(`${gateway.url}/weather/today`);
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
