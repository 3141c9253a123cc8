/**
 * A payment follows the outcome, through a real gateway: what a request holds (a use, part of a
 * balance, a single-use MPP charge, an x402 authorization) is charged only when the upstream
 * answers, and released — the same credential works again — when it cannot be reached or does
 * not answer in time. Also: tokens never buy a dearer request than they paid for, and MPP
 * credentials that echo the challenge without `opaque` are honoured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { formatPaymentCredential, parsePaymentCredential } from '@tollway/sdk/mpp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { accountOf, payL402, payMpp } from './support.js';
import {
  officialExactFetch,
  payerAndPayTo,
  startX402Gateway,
  type X402Gateway,
} from './x402-gateway.js';

/** 4 MiB of a pattern: many times what the gateway holds before it stops reading the upstream. */
const LARGE = Buffer.from(Array.from({ length: 4 * 1024 * 1024 }, (_, i) => i % 251));

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };
const chain = await startTestChain();
afterAll(() => chain?.close());

/** An upstream that can be down (nothing listening on its port), slow, or answering. */
interface Switchable {
  url: string;
  /** Starts answering on the port. */
  up(): Promise<void>;
  /** Stops listening: connections are refused. */
  down(): Promise<void>;
  /** Answers after this many ms (0: at once). */
  delayMs: number;
  calls: number;
}

async function createSwitchableUpstream(): Promise<Switchable> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  let server: Server | undefined;
  const upstream: Switchable = {
    url: `http://127.0.0.1:${port}`,
    delayMs: 0,
    calls: 0,
    async up() {
      if (server !== undefined) return;
      server = createServer((req, res) => {
        upstream.calls += 1;
        const answer = () => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ url: req.url, token: req.headers['x-tollway-token-id'] }));
        };
        if (upstream.delayMs === 0) answer();
        else setTimeout(answer, upstream.delayMs);
      });
      await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    },
    async down() {
      const closing = server;
      server = undefined;
      if (closing === undefined) return;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
  };
  return upstream;
}

describe('the gateway charges on the outcome', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-outcome-'));
  let network: DevNetwork;
  let upstream: Switchable;
  /** An upstream answering {@link LARGE} at once. */
  let large: Server;
  let gateway: Gateway;
  const agent = () => network.backend('agent');

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent');
    upstream = await createSwitchableUpstream();
    large = createServer((_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(LARGE);
    });
    await new Promise<void>((resolve) => large.listen(0, '127.0.0.1', resolve));
    const largeUrl = `http://127.0.0.1:${(large.address() as AddressInfo).port}`;
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        paywall: { rateLimits: { challenges: false } },
        services: [
          { name: 'once', path: '/once', upstream: upstream.url, price: '5 sat', uses: 1 },
          {
            name: 'prepaid',
            path: '/prepaid',
            upstream: upstream.url,
            price: '1 sat',
            balance: '3 sat',
          },
          {
            name: 'slow',
            path: '/slow',
            upstream: upstream.url,
            price: '5 sat',
            uses: 1,
            timeouts: { response: 300 },
          },
          { name: 'charge', path: '/charge', upstream: upstream.url, price: '10 sat' },
          { name: 'large', path: '/large', upstream: largeUrl, price: '1 sat', balance: '3 sat' },
          {
            name: 'chat',
            path: '/v1/chat',
            upstream: upstream.url,
            price: '50 sat',
            pricing: [
              { field: 'model', prices: { 'tollway-mini': '5 sat', 'tollway-max': '50 sat' } },
            ],
            uses: 5,
          },
          {
            name: 'chat-day',
            path: '/v2/chat',
            upstream: upstream.url,
            price: '500 sat',
            pricing: [
              { field: 'model', prices: { 'tollway-mini': '1 sat', 'tollway-max': '500 sat' } },
            ],
            validFor: '1d',
          },
        ],
      },
      { env: {} },
    );
    gateway = await createGateway({
      config,
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await upstream?.down();
    await new Promise((resolve) => large?.close(resolve));
    await network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function buy(path: string, init: RequestInit = {}): Promise<string> {
    return payL402(await fetch(`${gateway.url}${path}`, init), agent());
  }

  const get = (path: string, authorization: string, init: RequestInit = {}) =>
    fetch(`${gateway.url}${path}`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization },
    });

  /** The token's counters, once what its requests hold was charged or released (in the background). */
  async function expectUsage(token: string, expected: Record<string, unknown>): Promise<void> {
    await vi.waitFor(async () =>
      expect(await gateway.store.getUsage(accountOf(token))).toMatchObject(expected),
    );
  }

  async function codeOf(response: Response): Promise<[number, string]> {
    const body = (await response.json()) as { code?: string };
    return [response.status, body.code ?? ''];
  }

  it('a 1-use token is not used up by an unreachable upstream, and then works once', async () => {
    await upstream.down();
    const token = await buy('/once/a');
    const failed = await get('/once/a', token);
    expect(await codeOf(failed)).toEqual([502, 'upstream_unavailable']);
    expect(failed.headers.get('tollway-charged')).toBe('0');
    await upstream.up();
    const served = await get('/once/a', token);
    expect(served.status).toBe(200);
    expect(served.headers.get('tollway-charged')).toBe('1 uses');
    expect(served.headers.get('tollway-remaining')).toBe('0 uses');
    await served.arrayBuffer();
    expect(await codeOf(await get('/once/a', token))).toEqual([402, 'uses_exhausted']);
    await expectUsage(token, { uses: 1, heldUses: 0 });
  });

  it('a balance is not drawn by failures: three 502s, then three paid answers, then 402', async () => {
    await upstream.down();
    const token = await buy('/prepaid/x');
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(await get('/prepaid/x', token))).toEqual([502, 'upstream_unavailable']);
    }
    await upstream.up();
    const left: Array<string | null> = [];
    for (let i = 0; i < 3; i++) {
      const response = await get('/prepaid/x', token);
      expect(response.status).toBe(200);
      expect(response.headers.get('tollway-charged')).toBe('1000 msat');
      left.push(response.headers.get('tollway-remaining'));
      await response.arrayBuffer();
    }
    expect(left).toEqual(['2000 msat', '1000 msat', '0 msat']);
    expect(await codeOf(await get('/prepaid/x', token))).toEqual([402, 'balance_exhausted']);
    await expectUsage(token, { spentMsat: 3000n, heldMsat: 0n });
  });

  it('a balance draw passes an answer far larger than the body held while its charge is written, whole', async () => {
    const token = await buy('/large/file');
    for (let i = 0; i < 2; i++) {
      const response = await get('/large/file', token);
      expect(response.status).toBe(200);
      expect(response.headers.get('tollway-charged')).toBe('1000 msat');
      expect(Buffer.from(await response.arrayBuffer()).equals(LARGE)).toBe(true);
    }
    await expectUsage(token, { spentMsat: 2000n, heldMsat: 0n });
  });

  it('a slow upstream (504) does not use up the token; the same token works once it is fast', async () => {
    await upstream.up();
    upstream.delayMs = 1000;
    const token = await buy('/slow/x');
    const timedOut = await get('/slow/x', token);
    expect(await codeOf(timedOut)).toEqual([504, 'upstream_timeout']);
    expect(timedOut.headers.get('tollway-charged')).toBe('0');
    upstream.delayMs = 0;
    const served = await get('/slow/x', token);
    expect(served.status).toBe(200);
    await served.arrayBuffer();
  });

  it('an MPP charge survives a 502: the same credential is served once the upstream is back', async () => {
    await upstream.down();
    const before = (await agent().getBalance()).msat;
    const credential = await payMpp(await fetch(`${gateway.url}/charge/x`), agent());
    expect(await codeOf(await get('/charge/x', credential))).toEqual([502, 'upstream_unavailable']);
    await upstream.up();
    const served = await get('/charge/x', credential);
    expect(served.status).toBe(200);
    expect(served.headers.get('payment-receipt')).toBeTruthy();
    expect(served.headers.get('tollway-charged')).toBe('10000 msat');
    await served.arrayBuffer();
    expect(await codeOf(await get('/charge/x', credential))).toEqual([401, 'credential_replayed']);
    // Paid once, on the dev node.
    expect((await agent().getBalance()).msat).toBe(before - 10_000n);
  });

  it('an MPP credential that echoes the challenge without opaque is paid once and served', async () => {
    await upstream.up();
    const paid = await payMpp(await fetch(`${gateway.url}/charge/alby`), agent());
    const credential = parsePaymentCredential([paid]);
    if (credential === undefined) throw new Error('no credential');
    expect(credential.challenge.opaque).toBeDefined();
    const { opaque: _dropped, ...challenge } = credential.challenge;
    const echoed = `Payment ${formatPaymentCredential({ challenge, payload: credential.payload }).slice('Payment '.length)}`;
    const served = await get('/charge/alby', echoed);
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    expect(await codeOf(await get('/charge/alby', echoed))).toEqual([401, 'credential_replayed']);
    // Bought for this service, it does not open another one (the id binds the service).
    const other = await get('/once/alby', echoed);
    expect(other.status).toBe(401);
    await other.arrayBuffer();
  });

  it('a token bought for a cheaper model is refused for a dearer one, with and without a use limit', async () => {
    await upstream.up();
    const body = (model: string): RequestInit => ({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [] }),
    });
    for (const path of ['/v1/chat', '/v2/chat']) {
      const token = await buy(path, body('tollway-mini'));
      const dearer = await get(path, token, body('tollway-max'));
      expect(await codeOf(dearer.clone())).toEqual([402, 'price_exceeds_token']);
      const offered = (await dearer.json()) as { price: { amount: string } };
      expect(offered.price.amount).toBe(path === '/v1/chat' ? '50000' : '500000');
      const cheap = await get(path, token, body('tollway-mini'));
      expect(cheap.status).toBe(200);
      await cheap.arrayBuffer();
    }
    // A dearer request refused did not count against the use limit.
    const token = await buy('/v1/chat', body('tollway-mini'));
    for (let i = 0; i < 3; i++)
      await (await get('/v1/chat', token, body('tollway-max'))).arrayBuffer();
    await expectUsage(token, { uses: 0, heldUses: 0 });
  });
});

describe.skipIf(chain === undefined)('the gateway settles x402 on the outcome', () => {
  const c = chain!;
  let upstream: Switchable;
  let started: X402Gateway;
  let gateway: Gateway;

  beforeAll(async () => {
    upstream = await createSwitchableUpstream();
    started = await startX402Gateway(c, {
      services: [{ name: 'weather', path: '/weather', upstream: upstream.url, price: '$0.01' }],
    });
    gateway = started.gateway;
  });

  afterAll(async () => {
    await started?.close();
    await upstream?.down();
  });

  const balances = () => payerAndPayTo(c);

  it('settles nothing on chain when the upstream is down; the same payment settles once it is up', async () => {
    await upstream.down();
    let signature: string | undefined;
    const recording: typeof fetch = (input, init) => {
      const request = new Request(input, init);
      signature ??= request.headers.get('payment-signature') ?? undefined;
      return fetch(request);
    };
    const before = await balances();
    const failed = await officialExactFetch(c, recording)(`${gateway.url}/weather/x`);
    expect(failed.status).toBe(502);
    expect(failed.headers.get('tollway-charged')).toBe('0');
    expect(failed.headers.get('payment-response')).toBeNull();
    expect(await balances()).toEqual(before);
    expect(signature).toBeDefined();

    await upstream.up();
    const paid = await fetch(`${gateway.url}/weather/x`, {
      headers: { 'PAYMENT-SIGNATURE': signature ?? '' },
    });
    expect(paid.status).toBe(200);
    expect(paid.headers.get('payment-response')).toBeTruthy();
    expect(paid.headers.get('tollway-charged')).toMatch(/^10000 eip155:31337\/erc20:0x/);
    await paid.arrayBuffer();
    expect(await balances()).toEqual([before[0] - 10_000n, before[1] + 10_000n]);
    const replay = await fetch(`${gateway.url}/weather/x`, {
      headers: { 'PAYMENT-SIGNATURE': signature ?? '' },
    });
    expect([401, 402]).toContain(replay.status);
    await replay.arrayBuffer();
    expect(await balances()).toEqual([before[0] - 10_000n, before[1] + 10_000n]);
  });
});
