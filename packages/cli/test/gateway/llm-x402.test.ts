/**
 * An x402 payment buys an LLM service's balance through the gateway, on a local chain: the call
 * that pays is metered like any other, and its answer hands the buyer the L402 credential of the
 * balance (`Tollway-Credential`), which later calls present.
 */
import { fixedRate } from '@tollway/sdk';
import { createMemoryClientStore, createPayingFetch } from '@tollway/sdk/client';
import { createEvmWallet } from '@tollway/sdk/x402';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { type LlmDouble, startOpenAiDouble } from './llm-doubles.js';
import { officialExactFetch, startX402Gateway, type X402Gateway } from './x402-gateway.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('an x402 payment buys an LLM balance', () => {
  const c = chain as NonNullable<typeof chain>;
  let openai: LlmDouble;
  let started: X402Gateway;
  let gateway: Gateway;

  beforeAll(async () => {
    openai = await startOpenAiDouble('sk-test');
    started = await startX402Gateway(c, {
      env: { OPENAI_API_KEY: 'sk-test' },
      paywall: { usdPerBtc: '100000', rateLimits: { challenges: false } },
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: `${openai.url}/v1`,
          stripPrefix: true,
          headers: { authorization: 'Bearer ${OPENAI_API_KEY}' },
          balance: '$0.05',
          llm: { models: { 'gpt-4o-mini': { input: '$0.15', output: '$0.60' } } },
        },
      ],
    });
    gateway = started.gateway;
  });

  afterAll(async () => {
    await started?.close();
    await openai?.close();
  });

  it('settles the balance once, meters the paying call, and hands back the credential of the rest', async () => {
    const init = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 512,
        messages: [{ role: 'user', content: 'Say hello. '.repeat(300) }],
      }),
    };
    const before = await c.balanceOf(c.accounts.payer.address);
    const paid = await officialExactFetch(c)(`${gateway.url}/v1/chat/completions`, init);
    expect(paid.status).toBe(200);
    await paid.arrayBuffer();
    // $0.05 of a 6-decimal token, settled once.
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - 50_000n);
    // 1200 prompt tokens (all at the input price here) × $0.15 + 300 × $0.60 per million:
    // 180 + 180 µ$ = 360 msat at $100,000 per BTC, out of a balance of 50 000 msat.
    // Two charges: the purchase (token units) and this call's draw on what it bought.
    expect(paid.headers.get('tollway-charged')).toMatch(
      /^50000 eip155:31337\/erc20:0x[0-9a-fA-F]{40}, 360 msat$/,
    );
    expect(paid.headers.get('tollway-remaining')).toBe('49640 msat');
    const credential = paid.headers.get('tollway-credential') ?? '';
    expect(credential).toMatch(/^L402 /);

    const again = await fetch(`${gateway.url}/v1/chat/completions`, {
      ...init,
      headers: { ...init.headers, authorization: credential },
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('tollway-remaining')).toBe('49280 msat');
    await again.arrayBuffer();
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - 50_000n);
  });

  it("the paying fetch buys the balance by x402, keeps its credential, and records each call's draw", async () => {
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({
      wallets: [],
      store,
      preferences: ['x402'],
      x402: {
        wallet: createEvmWallet({
          privateKey: c.accounts.payer.privateKey,
          allowedAssets: [{ network: c.network, address: c.token }],
        }),
        rates: fixedRate('100000'),
      },
    });
    const init = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 512,
        messages: [{ role: 'user', content: 'Say hello. '.repeat(300) }],
      }),
    };
    const before = await c.balanceOf(c.accounts.payer.address);
    for (let call = 0; call < 3; call++) {
      const answer = await fetch402(`${gateway.url}/v1/chat/completions`, init);
      expect(answer.status).toBe(200);
      await answer.arrayBuffer();
    }
    // Paid once on chain; the later calls presented the balance's L402 credential.
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - 50_000n);
    const [purchase] = await store.list({ kind: 'purchase' });
    expect(purchase).toMatchObject({ protocol: 'x402', amountMsat: 50_000n });
    const draws = await store.list({ kind: 'draw' });
    expect(draws.map((draw) => [draw.amountMsat, draw.account])).toEqual([
      [360n, purchase?.account],
      [360n, purchase?.account],
      [360n, purchase?.account],
    ]);
    expect(draws.map((draw) => draw.protocol).sort()).toEqual(['l402', 'l402', 'x402']);
  });
});
