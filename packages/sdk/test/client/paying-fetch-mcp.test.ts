// The paying fetch against a minimal MCP endpoint written by hand on loopback that answers
// x402 over MCP (transports-v2/mcp.md): a payment-required tool result (JSON or SSE, every form
// the specification lets a client read), then the paid result with its settlement in `_meta`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixedRate } from '@tollway/sdk';
import {
  createBudget,
  createMemoryClientStore,
  createPayingFetch,
  getPayment,
  type PayingFetchOptions,
} from '@tollway/sdk/client';
import {
  createEvmWallet,
  createMcpPaymentRequiredResult,
  readMcpPayment,
  type X402PaymentRequired,
} from '@tollway/sdk/x402';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const NETWORK = 'eip155:31337';
const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const PAY_TO = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const PRICE = 10_000n; // $0.01 of a 6-decimal USD token: 10 sat at $100 000 per BTC
const TX = `0x${'ab'.repeat(32)}`;
const KEY = `0x${'59'.repeat(32)}`;

const required: X402PaymentRequired = {
  x402Version: 2,
  error: 'Payment required',
  resource: {
    url: 'mcp://tool/get_forecast',
    description: 'Forecast',
    mimeType: 'application/json',
  },
  accepts: [
    {
      scheme: 'exact',
      network: NETWORK,
      asset: TOKEN,
      amount: PRICE,
      payTo: PAY_TO,
      maxTimeoutSeconds: 60,
      extra: { name: 'USD Coin', version: '2' },
    },
  ],
};

/** How the server answers: JSON or SSE, which payment-required form, and how settlement goes. */
const server = {
  type: 'json' as 'json' | 'sse',
  form: 'structured' as 'structured' | 'text' | 'wrapper',
  settles: true,
};
/** Every JSON-RPC message received, and every answer body sent, in order. */
const received: Array<Record<string, unknown>> = [];
const sent: string[] = [];
let http: Server;
let url: string;

function paymentRequiredResult(): unknown {
  const result = createMcpPaymentRequiredResult(required);
  if (server.form === 'structured') return result;
  const text =
    server.form === 'text'
      ? result.content[0]?.text
      : JSON.stringify({
          'x402/error': { code: 402, message: 'Payment required', data: result.structuredContent },
        });
  return { isError: true, content: [{ type: 'text', text }] };
}

function resultFor(message: Record<string, unknown>): unknown {
  if (message.method !== 'tools/call') return { tools: [] };
  const payment = readMcpPayment(message.params);
  if (payment === undefined) return paymentRequiredResult();
  const { from } = (payment.payload as { authorization: { from: string } }).authorization;
  if (!server.settles) {
    return createMcpPaymentRequiredResult(required, {
      success: false,
      errorReason: 'invalid_transaction_state',
      transaction: '',
      network: NETWORK,
    });
  }
  return {
    content: [{ type: 'text', text: 'Oslo: sunny' }],
    _meta: {
      'x402/payment-response': { success: true, transaction: TX, network: NETWORK, payer: from },
    },
  };
}

beforeAll(async () => {
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const message = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      received.push(message);
      const answer = JSON.stringify({ jsonrpc: '2.0', id: message.id, result: resultFor(message) });
      if (server.type === 'json') {
        sent.push(answer);
        res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
        return;
      }
      const progress = JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 1, progress: 1 },
      });
      const stream = `event: message\ndata: ${progress}\n\nevent: message\nid: 7\ndata: ${answer}\n\n`;
      sent.push(stream);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Two writes: the client reads events as they arrive.
      res.write(stream.slice(0, 40));
      setTimeout(() => res.end(stream.slice(40)), 5);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
});
afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));
beforeEach(() => {
  Object.assign(server, { type: 'json', form: 'structured', settles: true });
  received.length = 0;
  sent.length = 0;
});

const wallet = createEvmWallet({
  privateKey: KEY,
  allowedAssets: [{ network: NETWORK, address: TOKEN }],
});

function payingFetch(options: Partial<PayingFetchOptions> = {}) {
  const store = createMemoryClientStore();
  const fetch = createPayingFetch({
    wallets: [],
    store,
    preferences: ['x402'],
    x402: { wallet, rates: fixedRate('100000') },
    ...options,
  });
  return { fetch, store };
}

const call = (fetch: typeof globalThis.fetch, method = 'tools/call') =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method,
      params: { name: 'get_forecast', arguments: { city: 'Oslo' }, _meta: { progressToken: 1 } },
    }),
  });

describe('paying fetch: x402 over MCP', () => {
  it.each([
    ['json', 'structured'],
    ['json', 'text'],
    ['sse', 'wrapper'],
    ['sse', 'structured'],
  ] as const)(
    'pays a payment-required result (%s, %s) and returns the paid answer as sent',
    async (type, form) => {
      Object.assign(server, { type, form });
      const { fetch, store } = payingFetch();
      const response = await call(fetch);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(sent[1]);
      expect(received).toHaveLength(2);
      const retry = received[1] as { params: { _meta: Record<string, unknown> } };
      // Other _meta members are kept; the payment is the PaymentPayload object itself.
      expect(retry.params._meta.progressToken).toBe(1);
      const payment = readMcpPayment(retry.params);
      expect(payment?.accepted).toEqual(required.accepts[0]);
      expect(payment?.payload).toMatchObject({
        authorization: { from: wallet.address, to: PAY_TO },
      });
      const paid = getPayment(response);
      expect(paid).toMatchObject({ protocol: 'x402', amountMsat: 10_000n, url });
      const ledger = await store.list();
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({
        id: paid?.ledgerId,
        protocol: 'x402',
        status: 'succeeded',
        amount: PRICE,
        proof: TX,
        payee: PAY_TO,
      });
    },
  );

  it('records a failed settlement in the ledger and passes the failure on', async () => {
    server.settles = false;
    const { fetch, store } = payingFetch();
    const response = await call(fetch);
    const { result } = (await response.json()) as { result: Record<string, unknown> };
    expect(result.isError).toBe(true);
    expect(received).toHaveLength(2);
    expect((await store.list())[0]?.status).toBe('failed');
  });

  it('returns the payment-required result untouched when x402 is not preferred or not payable', async () => {
    const wrongToken = createEvmWallet({
      privateKey: KEY,
      allowedAssets: [{ network: NETWORK, address: PAY_TO }],
    });
    for (const options of [
      { preferences: ['l402', 'mpp'] as const },
      { x402: { wallet: wrongToken, rates: fixedRate('100000') } },
    ]) {
      received.length = 0;
      sent.length = 0;
      const { fetch, store } = payingFetch({
        ...options,
        preferences: [...(options.preferences ?? ['x402'])],
      });
      const response = await call(fetch);
      expect(await response.text()).toBe(sent[0]);
      expect(received).toHaveLength(1);
      expect(await store.list()).toEqual([]);
    }
  });

  it('keeps to the budget: over the per-request cap nothing is signed or sent', async () => {
    const store = createMemoryClientStore();
    const budget = createBudget({ store, limits: { perRequest: '5 sat' } });
    const { fetch } = payingFetch({ store, budget });
    await expect(call(fetch)).rejects.toMatchObject({ code: 'over_price' });
    expect(received).toHaveLength(1);
    expect(await store.list()).toEqual([]);
  });

  it('looks only at tools/call POSTs', async () => {
    const { fetch, store } = payingFetch();
    const listed = await call(fetch, 'tools/list');
    expect(await listed.text()).toBe(sent[0]);
    const got = await fetch(url.replace('/mcp', '/other'), {
      method: 'POST',
      body: '{"note":"tools/call"}',
    });
    expect(await got.text()).toBe(sent[1]);
    expect(received).toHaveLength(2);
    expect(await store.list()).toEqual([]);
  });
});
