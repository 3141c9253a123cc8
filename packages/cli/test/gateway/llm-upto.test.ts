/**
 * x402 `upto` through `tollway serve` (the built CLI) on a local chain: an LLM service, metered,
 * is offered `upto` for the request's most it may cost (its price in sats, converted at
 * `paywall.usdPerBtc`), and the official `@x402/fetch` with the official `upto` client scheme
 * pays it; the gateway settles once, after the answer, what the answer's usage cost. A streamed
 * answer ends with the settlement as a comment line, which Tollway's paying fetch records.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { createMasterSecret } from '@tollway/sdk/server';
import { parsePaymentRequiredHeader, parsePaymentResponseHeader } from '@tollway/sdk/x402';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import { createChainPayingFetch } from '../../../sdk/test/support/chain-paying-fetch.js';
import { type Instance, startInstance } from './instances.js';
import { type LlmDouble, startOpenAiDouble } from './llm-doubles.js';
import { x402ConfigBlock } from './support.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('x402 upto through tollway serve', () => {
  const c = chain as NonNullable<typeof chain>;
  const dir = mkdtempSync(join(tmpdir(), 'tollway-llm-upto-'));
  let network: DevNetwork;
  let devServer: DevServer;
  let openai: LlmDouble;
  let gateway: Instance;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    const shop = network.openWallet('shop').token;
    devServer = await createDevServer({ network });
    openai = await startOpenAiDouble('sk-test');
    const config = join(dir, 'tollway.yaml');
    // JSON is YAML.
    writeFileSync(
      config,
      JSON.stringify({
        listen: '127.0.0.1:0',
        dataDir: './data',
        lightning: `dev+${devServer.url}?wallet=shop&token=${shop}`,
        secrets: { env: 'TOLLWAY_TEST_SECRETS' },
        paywall: { usdPerBtc: '100000', rateLimits: { challenges: false } },
        x402: { ...x402ConfigBlock(c), upto: true },
        services: [
          {
            name: 'llm',
            path: '/v1',
            upstream: `${openai.url}/v1`,
            stripPrefix: true,
            headers: { authorization: 'Bearer ${OPENAI_API_KEY}' },
            balance: '100 sat',
            llm: { models: { 'gpt-4o-mini': { input: '$0.15', output: '$0.60' } } },
          },
        ],
      }),
    );
    gateway = await startInstance(config, {
      TOLLWAY_TEST_SECRETS: createMasterSecret(),
      FACILITATOR_KEY: c.accounts.facilitator.privateKey,
      OPENAI_API_KEY: 'sk-test',
    });
    await c.approvePermit2(c.accounts.payer.privateKey);
  });

  afterAll(async () => {
    gateway?.process.kill('SIGTERM');
    await gateway?.exited;
    await openai?.close();
    await devServer?.close();
    await network?.close();
    rmSync(dir, { recursive: true, force: true });
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

  it('offers upto for the most the call may cost, and settles what its usage cost', async () => {
    const url = `${gateway.url}/v1/chat/completions`;
    const unpaid = await fetch(url, init);
    expect(unpaid.status).toBe(402);
    await unpaid.arrayBuffer();
    const required = parsePaymentRequiredHeader(unpaid.headers.get('payment-required') ?? '');
    const [upto] = required.accepts;
    expect(upto).toMatchObject({ scheme: 'upto', network: c.network, asset: c.token });
    // The most the call may cost (a token per byte of its body at the input price, and 512 out),
    // in msat, at $100 000 per BTC: a micro-dollar, one token unit, per msat.
    const bytes = BigInt(Buffer.byteLength(JSON.stringify(JSON.parse(init.body))));
    expect(upto?.amount).toBe((bytes * 150_000n + 512n * 600_000n + 999_999n) / 1_000_000n);

    const client = new x402Client();
    client.register(
      'eip155:*',
      new UptoEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey)),
    );
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    const payer = await c.balanceOf(c.accounts.payer.address);
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const paid = await wrapFetchWithPayment(fetch, client)(url, init);
    expect(paid.status).toBe(200);
    await paid.arrayBuffer();
    // 1200 prompt tokens × $0.15 + 300 × $0.60 per million: 360 micro-dollars, of 6-decimal tokens.
    const receipt = parsePaymentResponseHeader(paid.headers.get('payment-response') ?? '');
    expect(receipt).toMatchObject({ success: true, amount: 360n });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 360n);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + 360n);
  });

  it('ends a streamed answer with its settlement; the paying fetch records what was settled', async () => {
    const { store, budget, fetch402 } = createChainPayingFetch(c, '1000 sat');
    const payer = await c.balanceOf(c.accounts.payer.address);
    const streamed = { ...init, body: JSON.stringify({ ...JSON.parse(init.body), stream: true }) };
    const response = await fetch402(`${gateway.url}/v1/chat/completions`, streamed);
    expect(response.status).toBe(200);
    expect(response.headers.get('payment-response')).toBeNull();
    const text = await response.text();
    expect(text).toContain('data: [DONE]');
    const receipt = parsePaymentResponseHeader(/^: payment-response (\S+)$/m.exec(text)?.[1] ?? '');
    expect(receipt).toMatchObject({ success: true, amount: 360n });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 360n);
    // Authorised: the call's most (at 1 msat per token unit); recorded: the 360 settled.
    const [purchase] = await store.list({ kind: 'purchase' });
    expect(purchase).toMatchObject({ amount: 360n, amountMsat: 360n, status: 'succeeded' });
    const day = (await budget.status()).find((window) => window.window === 'day');
    expect(day).toMatchObject({ spentMsat: 360n });
  });
});
