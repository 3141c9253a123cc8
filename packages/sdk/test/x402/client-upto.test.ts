/**
 * Tollway's paying fetch pays the official `@x402/express` middleware with x402 `upto` on a real
 * chain (anvil with TestUSDC, Permit2 and the upto proxy): the route settles less than the payer
 * authorised, through Tollway's self-hosted facilitator behind its HTTP handler.
 */
import { createServer } from 'node:http';
import { HTTPFacilitatorClient } from '@x402/core/server';
import { UptoEvmScheme } from '@x402/evm/upto/server';
import { paymentMiddleware, setSettlementOverrides, x402ResourceServer } from '@x402/express';
import express from 'express';
import { generatePrivateKey } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOffers } from '../../src/client/offers.js';
import { getPayment } from '../../src/client/paying-fetch.js';
import { createEvmWallet } from '../../src/x402/evm-wallet.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { createFacilitatorHandler } from '../../src/x402/facilitator-http.js';
import { parsePaymentResponseHeader } from '../../src/x402/payment-response.js';
import { listen } from '../adapters/conformance.js';
import { startTestChain } from '../support/chain.js';
import { createChainPayingFetch } from '../support/chain-paying-fetch.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const MAX = 40_000n;
const USED = 7_500n;

describe.skipIf(chain === undefined)('the paying fetch against @x402/express upto', () => {
  const c = chain!;
  const closers: Array<() => Promise<void>> = [];
  let url: string;

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
    ).register(c.network, new UptoEvmScheme());
    const app = express();
    app.use(
      paymentMiddleware(
        {
          'GET /llm': {
            accepts: {
              scheme: 'upto',
              network: c.network,
              payTo: c.accounts.payTo.address,
              price: { amount: MAX.toString(), asset: c.token, extra: { ...c.tokenDomain } },
              maxTimeoutSeconds: 60,
            },
            description: 'llm',
            mimeType: 'application/json',
          },
        },
        resourceServer,
      ),
    );
    app.get('/llm', (_req, res) => {
      setSettlementOverrides(res, { amount: USED.toString() });
      res.json({ answer: 42 });
    });
    const served = await listen(createServer(app));
    closers.push(served.close);
    url = `${served.url}/llm`;
    await c.approvePermit2(c.accounts.payer.privateKey);
  });
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('the EVM wallet signs the upto offer only with a facilitator to bind it to', async () => {
    const response = await fetch(url);
    expect(response.status).toBe(402);
    const { offers } = parseOffers({ headers: response.headers, body: await response.text() });
    const [offer] = offers;
    if (offer?.protocol !== 'x402') throw new Error('no x402 offer');
    expect([offer.scheme, offer.amount]).toEqual(['upto', MAX]);
    const wallet = createEvmWallet({
      privateKey: generatePrivateKey(),
      allowedAssets: [{ network: c.network, address: c.token }],
    });
    expect(wallet.refusal(offer)).toBeUndefined();
    const unbound = {
      ...offer,
      requirement: { ...offer.requirement, extra: { ...c.tokenDomain } },
    };
    await expect(wallet.sign(unbound)).rejects.toMatchObject({ code: 'invalid_x402_payload' });
  });

  it('pays it: the server settles what it used; the ledger and the budget count that', async () => {
    const { store, budget, fetch402 } = createChainPayingFetch(c, '100 sat');
    const payer = await c.balanceOf(c.accounts.payer.address);
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const response = await fetch402(url);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ answer: 42 });
    const receipt = parsePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    expect(receipt).toMatchObject({ success: true, amount: USED });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - USED);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + USED);
    // $0.04 at 100 000 USD/BTC: 40 sat authorised, counted while the call ran.
    expect(getPayment(response)).toMatchObject({ protocol: 'x402', amountMsat: 40_000n });
    // Settled at $0.0075: the ledger records 7.5 sat, and the budget gets the rest back.
    const [entry] = await store.list();
    expect(entry).toMatchObject({
      protocol: 'x402',
      amount: USED,
      amountMsat: 7_500n,
      status: 'succeeded',
    });
    expect(entry?.proof).toBe(receipt.transaction);
    const day = (await budget.status()).find((window) => window.window === 'day');
    expect(day).toMatchObject({ spentMsat: 7_500n });
  });
});
