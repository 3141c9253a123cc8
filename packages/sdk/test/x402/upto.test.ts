/**
 * x402 `upto` through the whole server stack on a real chain: anvil with TestUSDC, Permit2 and the
 * upto proxy at their canonical addresses, the self-hosted facilitator, the paywall engine with a
 * metered route, the node adapter on loopback HTTP; paid by the official `@x402/fetch` client
 * with the official `upto` scheme. Each payment settles once, after the answer, at what it cost.
 */
import { createServer } from 'node:http';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { type Address, parseAbiItem } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withPaywall } from '../../src/adapters/node.js';
import { fixedRate } from '../../src/money.js';
import { createEventMeter } from '../../src/server/event-meter.js';
import type { Meter } from '../../src/server/meter.js';
import { createPaywall, type Paywall } from '../../src/server/paywall.js';
import { createMasterSecret } from '../../src/server/root-keys.js';
import { createX402Offer } from '../../src/server/x402-offer.js';
import { createMemoryStore } from '../../src/stores/memory.js';
import { X402_CONTRACTS } from '../../src/x402/evm-contracts.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { parsePaymentRequiredHeader } from '../../src/x402/payment-required.js';
import { parsePaymentResponseHeader } from '../../src/x402/payment-response.js';
import { listen } from '../adapters/conformance.js';
import { startTestChain } from '../support/chain.js';
import { createChainPayingFetch } from '../support/chain-paying-fetch.js';
import { createDevSetup } from '../support/paywall.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const MAX = 50_000n; // $0.05 in USDC base units: the most one request may cost
const transfer = parseAbiItem(
  'event Transfer(address indexed from, address indexed to, uint256 value)',
);

/** Reads the cost the answer's JSON body names (`{"cost": "$0.0123"}`). */
const costMeter: Meter = {
  open() {
    const chunks: Uint8Array[] = [];
    return {
      write: (chunk) => void chunks.push(chunk),
      cost: () => (JSON.parse(Buffer.concat(chunks).toString()) as { cost?: string }).cost,
    };
  },
};

describe.skipIf(chain === undefined)('x402 upto on a real chain', () => {
  const c = chain!;
  let paywall: Paywall;
  let url: string;
  let ticks: string;
  let close: () => Promise<void>;
  let fetchPaying: typeof fetch;

  beforeAll(async () => {
    const facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    paywall = createPaywall({
      lightning: createDevSetup().shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      rates: fixedRate('100000'),
      rateLimits: { challenges: false },
      offers: [
        createX402Offer({
          facilitator,
          payTo: c.accounts.payTo.address,
          network: c.network,
          asset: { address: c.token, decimals: 6, ...c.tokenDomain },
          upto: { facilitatorAddress: facilitator.address },
        }),
      ],
    });
    const route = paywall.route({
      service: 'llm',
      price: '$0.05',
      balance: '$1',
      meter: costMeter,
    });
    // An event stream priced per event: 1 sat each, $0.001 at $100 000 per BTC.
    const perEvent = paywall.route({
      service: 'ticks',
      price: '$0.05',
      balance: '$1',
      meter: createEventMeter('1 sat'),
    });
    const streamTicks = withPaywall(paywall, perEvent, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      for (const tick of ['1', '2']) res.write(`data: ${tick}\n\n`);
      res.end('data: 3\n\n');
    });
    const answerLlm = withPaywall(paywall, route, (req, res) => {
      const asked = new URL(req.url ?? '/', 'http://x').searchParams;
      const cost = asked.get('cost') ?? undefined;
      if (asked.has('fail')) {
        res.statusCode = 500;
        res.end('{"error":"upstream"}');
        return;
      }
      const reported = asked.get('report');
      if (reported !== null) req.payment?.setCost?.(reported);
      res.setHeader('Content-Type', 'application/json');
      // Streamed in two parts: the meter reads the cost once the body ends.
      res.write('{"answer":"42"');
      res.end(cost === undefined ? '}' : `,"cost":"${cost}"}`);
    });
    const served = await listen(
      createServer((req, res) =>
        req.url?.startsWith('/ticks') ? streamTicks(req, res) : answerLlm(req, res),
      ),
    );
    url = `${served.url}/llm`;
    ticks = `${served.url}/ticks`;
    close = served.close;
    await c.approvePermit2(c.accounts.payer.privateKey);
    fetchPaying = wrapFetchWithPayment(fetch, uptoClient());
  });
  afterAll(async () => {
    await close?.();
    await paywall?.close();
  });

  const balances = () =>
    Promise.all([c.balanceOf(c.accounts.payer.address), c.balanceOf(c.accounts.payTo.address)]);

  /** The official client paying with the official `upto` scheme, allowed our test token. */
  function uptoClient(): x402Client {
    const client = new x402Client();
    client.register(
      'eip155:*',
      new UptoEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey)),
    );
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    return client;
  }

  /** The token transfers from the payer to the recipient since `fromBlock`, in base units. */
  async function transfersSince(fromBlock: bigint): Promise<bigint[]> {
    const logs = await c.client.getLogs({
      address: c.token,
      event: transfer,
      args: { from: c.accounts.payer.address, to: c.accounts.payTo.address as Address },
      fromBlock,
    });
    return logs.map((log) => log.args.value ?? -1n);
  }

  it('offers upto for the request price before exact for the balance', async () => {
    const response = await fetch(url);
    expect(response.status).toBe(402);
    const required = parsePaymentRequiredHeader(response.headers.get('payment-required') ?? '');
    expect(required.accepts.map((offered) => [offered.scheme, offered.amount])).toEqual([
      ['upto', MAX],
      ['exact', 1_000_000n],
    ]);
    expect(required.accepts[0]?.extra).toMatchObject({
      assetTransferMethod: 'permit2',
      facilitatorAddress: privateKeyToAccount(c.accounts.facilitator.privateKey).address,
    });
  });

  it('settles what the meter read after the answer, once, with the transfer on chain', async () => {
    const [payerBefore, payToBefore] = await balances();
    const block = (await c.client.getBlockNumber()) + 1n;
    const response = await fetchPaying(`${url}?cost=$0.0123`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ answer: '42', cost: '$0.0123' });
    await vi.waitFor(async () => expect(await transfersSince(block)).toEqual([12_300n]), {
      timeout: 10_000,
    });
    expect(await balances()).toEqual([payerBefore - 12_300n, payToBefore + 12_300n]);
  });

  it('settles a reported cost before the answer, with PAYMENT-RESPONSE', async () => {
    const [payerBefore] = await balances();
    const response = await fetchPaying(`${url}?report=$0.002`);
    expect(response.status).toBe(200);
    const receipt = parsePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    expect(receipt).toMatchObject({ success: true, amount: 2_000n });
    const mined = await c.client.getTransactionReceipt({
      hash: receipt.transaction as `0x${string}`,
    });
    expect(mined.status).toBe('success');
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 2_000n);
  });

  it('never settles more than was authorised, and settles nothing for a free answer', async () => {
    const [payerBefore] = await balances();
    const block = (await c.client.getBlockNumber()) + 1n;
    expect((await fetchPaying(`${url}?cost=$0.90`)).status).toBe(200);
    await vi.waitFor(async () => expect(await transfersSince(block)).toEqual([MAX]), {
      timeout: 10_000,
    });
    const receipt = await fetchPaying(`${url}?report=$0`);
    expect(receipt.status).toBe(200);
    expect(parsePaymentResponseHeader(receipt.headers.get('payment-response') ?? '')).toMatchObject(
      { success: true, amount: 0n, transaction: '' },
    );
    expect(await transfersSince(block)).toEqual([MAX]);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - MAX);
  });

  it('charges nothing for a failed answer, and refuses a settled authorisation again', async () => {
    let signature: string | null = null;
    const recording: typeof fetch = async (input, init) => {
      const headers = input instanceof Request ? input.headers : new Headers(init?.headers);
      signature = headers.get('payment-signature') ?? signature;
      return fetch(input, init);
    };
    const client = uptoClient();
    const [payerBefore] = await balances();
    expect((await wrapFetchWithPayment(recording, client)(`${url}?fail=1`)).status).toBe(500);
    expect(signature).not.toBeNull();
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore);
    // Released: the same authorisation pays the next request, then never again.
    const paid = await fetch(`${url}?report=$0.001`, {
      headers: { 'payment-signature': signature ?? '' },
    });
    expect(paid.status).toBe(200);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 1_000n);
    const replayed = await fetch(`${url}?report=$0.001`, {
      headers: { 'payment-signature': signature ?? '' },
    });
    // Permit2 spent the nonce: the facilitator's simulation refuses it before the handler runs.
    expect(replayed.status).toBe(402);
    expect(((await replayed.json()) as { code: string }).code).toBe('x402_payment_invalid');
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 1_000n);
  });

  it('ends a metered event stream with its settlement, and the paying fetch records it', async () => {
    const { store, budget, fetch402 } = createChainPayingFetch(c, '100 sat');
    const [payerBefore] = await balances();
    const response = await fetch402(ticks);
    expect(response.status).toBe(200);
    // Settled after the body: the head cannot say how; the stream's last lines do.
    expect(response.headers.get('payment-response')).toBeNull();
    const text = await response.text();
    expect(text.startsWith('data: 1\n\ndata: 2\n\ndata: 3\n\n')).toBe(true);
    const settled = /^: payment-response (\S+)$/m.exec(text)?.[1] ?? '';
    const receipt = parsePaymentResponseHeader(settled);
    // Three events of $0.001, of a $0.05 authorisation.
    expect(receipt).toMatchObject({ success: true, amount: 3_000n });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 3_000n);
    // The ledger and the budget count what was settled (3 sat), not what was authorised (50 sat).
    const [purchase] = await store.list({ kind: 'purchase' });
    expect(purchase).toMatchObject({
      protocol: 'x402',
      amount: 3_000n,
      amountMsat: 3_000n,
      status: 'succeeded',
      proof: receipt.transaction,
    });
    const day = (await budget.status()).find((window) => window.window === 'day');
    expect(day).toMatchObject({ spentMsat: 3_000n });
    // The call's draw, from the stream's `: tollway-charged` line, is worth as much.
    const [draw] = await store.list({ kind: 'draw' });
    expect(draw).toMatchObject({ amount: 3_000n, amountMsat: 3_000n, status: 'succeeded' });
  });

  it('the Permit2 settlement is the upto proxy calling Permit2', async () => {
    const response = await fetchPaying(`${url}?report=$0.0005`);
    const receipt = parsePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    const tx = await c.client.getTransaction({ hash: receipt.transaction as `0x${string}` });
    expect(tx.to?.toLowerCase()).toBe(X402_CONTRACTS.uptoProxy.toLowerCase());
  });
});
