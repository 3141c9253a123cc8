// The gateway's `x402.batch` on a real chain (anvil with TestUSDC and the batch-settlement
// contracts): a priced service also offers batch-settlement, the official `@x402/fetch` client pays
// it with a deposit and then vouchers, the gateway redeems what the channel drew on its own, and
// the client's refund gets the rest of its deposit back. Tollway's paying fetch pays it the same
// way, and its close() gets the rest back; so does `tollway fetch --evm-rpc`, one process per call,
// and `tollway mcp --evm-rpc`, a tool call each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createMemoryClientStore, createPayingFetch } from '@tollway/sdk/client';
import { BatchSettlementEvmScheme } from '@x402/evm/batch-settlement/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestChain } from '../../../sdk/test/support/chain.js';
import { chainPayerX402 } from '../../../sdk/test/support/chain-paying-fetch.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { runCli } from '../run-cli.js';
import { startUpstream, type Upstream } from './support.js';
import { startX402Gateway, type X402Gateway } from './x402-gateway.js';

const PRICE = 1_000n; // $0.001 in TestUSDC base units
const BIN = new URL('../../bin/tollway.js', import.meta.url).pathname;

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('gateway x402 batch-settlement', () => {
  const c = chain!;
  let upstream: Upstream;
  let started: X402Gateway;
  let gateway: Gateway;
  let upstreamCalls = 0;

  beforeAll(async () => {
    upstream = await startUpstream((_req, res) => {
      upstreamCalls += 1;
      res.setHeader('content-type', 'application/json');
      res.end('{"hits":3}');
    });
    started = await startX402Gateway(c, {
      x402: { batch: { receiverAuthorizerKey: generatePrivateKey(), redeemEvery: '200ms' } },
      services: [{ name: 'search', path: '/search', upstream: upstream.url, price: '$0.001' }],
    });
    gateway = started.gateway;
  });
  afterAll(async () => {
    await started?.close();
    await upstream?.close();
  });

  it('is paid by a deposit and vouchers, redeems the draws on chain by itself, and refunds the rest', async () => {
    const client = new x402Client();
    const scheme = new BatchSettlementEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey), {
      depositPolicy: { depositMultiplier: 10 },
    });
    client.register('eip155:*', scheme);
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    const paying = wrapFetchWithPayment(fetch, client);
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const payer = await c.balanceOf(c.accounts.payer.address);
    const url = `${gateway.url}/search`;
    for (let call = 0; call < 3; call += 1) {
      const answer = await paying(url);
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ hits: 3 });
    }
    expect(upstreamCalls).toBe(3);
    await vi.waitFor(
      async () => expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + 3n * PRICE),
      { timeout: 10_000, interval: 100 },
    );
    // The official client's refund, through the gateway: the deposit less the three calls.
    const refund = await scheme.refund(url);
    expect(refund).toMatchObject({ success: true, amount: String(7n * PRICE) });
    expect(upstreamCalls).toBe(3);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 3n * PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + 3n * PRICE);
  });

  it("is paid by Tollway's paying fetch: one deposit, vouchers, and close() refunds the rest", async () => {
    const store = createMemoryClientStore();
    const fetch402 = createPayingFetch({
      wallets: [],
      store,
      preferences: ['x402'],
      sessions: { expectedCalls: 6 },
      x402: chainPayerX402(c, { batch: true }),
    });
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const payer = await c.balanceOf(c.accounts.payer.address);
    const calls = upstreamCalls;
    const url = `${gateway.url}/search`;
    for (let call = 0; call < 4; call += 1) expect((await fetch402(url)).status).toBe(200);
    expect(upstreamCalls).toBe(calls + 4);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 6n * PRICE);
    const [closed] = await fetch402.close();
    expect(closed).toMatchObject({ refundStatus: 'succeeded', refund: { amount: 2n * PRICE } });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 4n * PRICE);
    // What the gateway had not redeemed yet, the refund claimed.
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + 4n * PRICE);
    const [summary] = await store.summary({ account: closed?.id ?? '' }, 'account');
    expect(summary).toMatchObject({
      purchases: { amountMsat: 6_000n },
      draws: { count: 4, amountMsat: 4_000n },
      refunds: { amountMsat: 2_000n },
    });
  });
  it('is paid by tollway fetch --evm-rpc --expect-calls across runs: one deposit, then vouchers; --close-sessions refunds the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-fetch-batch-'));
    try {
      const url = `${gateway.url}/search`;
      const run = (...extra: string[]) =>
        runCli(
          'fetch',
          url,
          '--evm-key',
          c.accounts.payer.privateKey,
          '--evm-asset',
          `${c.network}:${c.token}`,
          '--evm-rpc',
          c.rpcUrl,
          '--usd-per-btc',
          '100000',
          '--prefer',
          'x402',
          '--db',
          join(dir, 'agent.sqlite'),
          '--json',
          ...extra,
        );
      const fetchOnce = async (...extra: string[]) => {
        const { code, stdout, stderr } = await run(...extra);
        expect([code, stderr]).toEqual([0, '']);
        return JSON.parse(stdout);
      };
      const payer = await c.balanceOf(c.accounts.payer.address);
      const calls = upstreamCalls;
      // Ten calls expected: a channel with a deposit of ten, where `exact` would pay one.
      const first = await run('--expect-calls', '10', '-v');
      expect(first.stderr).toMatch(
        /\* deposited 10 sat \(the token amount at --usd-per-btc\) into x402 channel 0x[0-9a-f]{64}\n/,
      );
      expect(JSON.parse(first.stdout)).toMatchObject({
        status: 200,
        payment: { protocol: 'x402', x402Scheme: 'batch-settlement', amountMsat: '10000' },
      });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 10n * PRICE);
      // The next run finds the channel in the agent database: a voucher, no second deposit.
      const second = await run('-v');
      expect(second.stderr).toMatch(
        /\* paying from x402 channel 0x[0-9a-f]{64} \(a voucher, no transaction\)\n/,
      );
      expect(JSON.parse(second.stdout)).toMatchObject({ status: 200 });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 10n * PRICE);
      expect(upstreamCalls).toBe(calls + 2);
      const last = await fetchOnce('--close-sessions');
      expect(last.closedSessions).toEqual([expect.objectContaining({ refundStatus: 'succeeded' })]);
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 3n * PRICE);
      expect(upstreamCalls).toBe(calls + 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is paid by tollway mcp --evm-rpc --expect-calls: a tool call deposits, the next sends a voucher; stopping refunds the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-mcp-batch-'));
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    try {
      const transport = new StdioClientTransport({
        command: process.execPath,
        // No Lightning wallet: x402 alone.
        args: [
          BIN,
          'mcp',
          '--evm-key',
          c.accounts.payer.privateKey,
          '--evm-asset',
          `${c.network}:${c.token}`,
          '--usd-per-btc',
          '100000',
          '--expect-calls',
          '4',
          '--db',
          join(dir, 'agent.sqlite'),
        ],
        env: { ...getDefaultEnvironment(), TOLLWAY_EVM_RPC: c.rpcUrl },
        stderr: 'pipe',
      });
      let stderr = '';
      transport.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      await client.connect(transport);
      const fetchTool = async () => {
        const result = (await client.callTool({
          name: 'fetch',
          arguments: { url: `${gateway.url}/search` },
        })) as CallToolResult;
        expect(result.isError).not.toBe(true);
        return result.structuredContent as Record<string, unknown>;
      };
      const payer = await c.balanceOf(c.accounts.payer.address);
      const calls = upstreamCalls;
      // The first call deposits four calls' worth into the channel (4 sat at the rate).
      expect(await fetchTool()).toMatchObject({
        status: 200,
        payment: { protocol: 'x402', amount: '4 sat' },
      });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 4n * PRICE);
      // The next sends a voucher: no deposit (the payer's balance stays; blocks are not counted,
      // as the gateway redeems what the channel drew every 200 ms here, in transactions of its
      // own), and the agent is told it drew on the channel.
      expect(await fetchTool()).toMatchObject({
        status: 200,
        payment: null,
        payment_note: expect.stringMatching(
          /^no new payment: drawn from x402 channel 0x[0-9a-f]{64}, deposited into earlier/,
        ),
      });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 4n * PRICE);
      expect(upstreamCalls).toBe(calls + 2);
      expect(stderr).toMatch(
        /tollway mcp: serving on stdio \(x402 from 0x[0-9a-fA-F]{40} \(channels too\); at most 1000 sat per request\)/,
      );
      // The host goes: the channel this process used is refunded what it did not draw.
      await client.close();
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - 2n * PRICE);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
