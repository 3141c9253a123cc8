/**
 * Tollway's EVM wallet pays the official `@x402/express` middleware on a real chain (anvil with
 * TestUSDC); the server's facilitator is Tollway's self-hosted one behind its HTTP handler, reached
 * with the official `HTTPFacilitatorClient`.
 */
import { createServer } from 'node:http';
import { HTTPFacilitatorClient } from '@x402/core/server';
import { ExactEvmScheme } from '@x402/evm/exact/server';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import express from 'express';
import { generatePrivateKey } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudget } from '../../src/client/budget.js';
import { createMemoryClientStore } from '../../src/client/memory-store.js';
import { parseOffers, type X402Offer } from '../../src/client/offers.js';
import { createPayingFetch, getPayment } from '../../src/client/paying-fetch.js';
import { isTollwayError } from '../../src/errors.js';
import { fixedRate } from '../../src/money.js';
import { createEvmWallet } from '../../src/x402/evm-wallet.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { createFacilitatorHandler } from '../../src/x402/facilitator-http.js';
import { parsePaymentResponseHeader } from '../../src/x402/payment-response.js';
import { listen } from '../adapters/conformance.js';
import { startTestChain } from '../support/chain.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const PRICE = 10_000n;

describe.skipIf(chain === undefined)('the EVM wallet against @x402/express', () => {
  const c = chain!;
  const closers: Array<() => Promise<void>> = [];
  let url: string;
  let handlerRuns = 0;

  beforeAll(async () => {
    const handle = createFacilitatorHandler(
      await createSelfHostedFacilitator({
        rpcUrl: c.rpcUrl,
        privateKey: c.accounts.facilitator.privateKey,
      }),
    );
    const facilitator = await listen(
      createServer(async (req, res) => {
        let body = '';
        for await (const chunk of req) body += chunk;
        const response = await handle(
          new Request(`http://facilitator${req.url ?? '/'}`, {
            method: req.method ?? 'GET',
            headers: { 'content-type': 'application/json' },
            ...(req.method === 'POST' ? { body } : {}),
          }),
        );
        res.writeHead(response.status, { 'content-type': 'application/json' });
        res.end(await response.text());
      }),
    );
    closers.push(facilitator.close);
    const resourceServer = new x402ResourceServer(
      new HTTPFacilitatorClient({ url: facilitator.url }),
    ).register(c.network, new ExactEvmScheme());
    const app = express();
    app.use(
      paymentMiddleware(
        {
          'GET /weather': {
            accepts: {
              scheme: 'exact',
              network: c.network,
              payTo: c.accounts.payTo.address,
              price: { amount: PRICE.toString(), asset: c.token, extra: { ...c.tokenDomain } },
              maxTimeoutSeconds: 60,
            },
            description: 'weather',
            mimeType: 'application/json',
          },
        },
        resourceServer,
      ),
    );
    app.get('/weather', (_req, res) => {
      handlerRuns += 1;
      res.json({ weather: 'sunny' });
    });
    const served = await listen(createServer(app));
    closers.push(served.close);
    url = `${served.url}/weather`;
  });
  afterAll(async () => {
    for (const close of closers) await close();
  });

  async function offerOf(): Promise<X402Offer> {
    const response = await fetch(url);
    expect(response.status).toBe(402);
    const { offers } = parseOffers({ headers: response.headers, body: await response.text() });
    const offer = offers.find((candidate) => candidate.protocol === 'x402');
    if (offer?.protocol !== 'x402') throw new Error('no x402 offer');
    return offer;
  }

  it('pays an official route in v2, with the money moved on chain', async () => {
    const wallet = createEvmWallet({
      privateKey: c.accounts.payer.privateKey,
      allowedAssets: [{ network: c.network, address: c.token }],
    });
    const offer = await offerOf();
    expect(wallet.refusal(offer)).toBeUndefined();
    const payer = await c.balanceOf(c.accounts.payer.address);
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const signed = await wallet.sign(offer);
    expect(signed.header.name).toBe('PAYMENT-SIGNATURE');
    expect(signed.unit).toBe(`${c.network}/erc20:${c.token.toLowerCase()}`);
    const response = await fetch(url, { headers: { [signed.header.name]: signed.header.value } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ weather: 'sunny' });
    const receipt = parsePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    expect(receipt).toMatchObject({ success: true, payer: wallet.address });
    expect(handlerRuns).toBe(1);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + PRICE);
  });

  it('refuses assets and networks it was not allowed, before signing', async () => {
    const offer = await offerOf();
    const otherAsset = createEvmWallet({
      privateKey: generatePrivateKey(),
      allowedAssets: [{ network: c.network, address: c.accounts.deployer.address }],
    });
    expect(otherAsset.refusal(offer)).toContain('not an allowed asset');
    const otherNetwork = createEvmWallet({
      privateKey: generatePrivateKey(),
      allowedAssets: [{ network: c.network, address: c.token }],
      allowedNetworks: ['eip155:8453'],
    });
    expect(otherNetwork.refusal(offer)).toContain('not an allowed network');
    let code: string | undefined;
    try {
      await otherNetwork.sign(offer);
    } catch (error) {
      code = isTollwayError(error) ? error.code : String(error);
    }
    expect(code).toBe('capability_unsupported');
  });

  it('pays nothing the facilitator refuses: an empty payer gets a 402', async () => {
    const wallet = createEvmWallet({
      privateKey: generatePrivateKey(),
      allowedAssets: [{ network: c.network, address: c.token }],
    });
    const signed = await wallet.sign(await offerOf());
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const response = await fetch(url, { headers: { [signed.header.name]: signed.header.value } });
    expect(response.status).toBe(402);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo);
  });

  it('is paid by the paying fetch within a budget in msat, with the rate in the ledger', async () => {
    const store = createMemoryClientStore();
    const rates = fixedRate('100000');
    // $0.01 at 100 000 USD/BTC is 10 sat; a 20 sat per-request cap lets one through, 15 sat a day two.
    const budget = createBudget({ store, rates, limits: { perRequest: '20 sat', day: '15 sat' } });
    const fetch402 = createPayingFetch({
      wallets: [],
      store,
      budget,
      preferences: ['x402'],
      x402: {
        wallet: createEvmWallet({
          privateKey: c.accounts.payer.privateKey,
          allowedAssets: [{ network: c.network, address: c.token }],
        }),
        rates,
      },
    });
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const response = await fetch402(url);
    expect(response.status).toBe(200);
    expect(getPayment(response)).toMatchObject({
      protocol: 'x402',
      amountMsat: 10_000n,
      feeMsat: 0n,
    });
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + PRICE);
    const [entry] = await store.list();
    expect(entry).toMatchObject({
      protocol: 'x402',
      amount: PRICE,
      unit: `${c.network}/erc20:${c.token.toLowerCase()}`,
      amountMsat: 10_000n,
      rate: 'usd_per_btc=100000',
      status: 'succeeded',
    });
    expect(entry?.proof).toMatch(/^0x[0-9a-f]{64}$/);
    let code: string | undefined;
    try {
      await fetch402(url);
    } catch (error) {
      code = isTollwayError(error) ? error.code : String(error);
    }
    expect(code).toBe('budget_exceeded');
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + PRICE);
  });
});
