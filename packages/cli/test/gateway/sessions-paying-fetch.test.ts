/**
 * The paying fetch in an MPP lightning session through a `tollway serve` process (an `llm` service
 * with `paywall.sessions`, in front of the OpenAI double, the dev Lightning node over HTTP): it
 * opens the session on the deposit with a return invoice of the agent's wallet, draws it with
 * metered calls, tops it up when a call no longer fits, and on close gets the unspent deposit back
 * on its return invoice. The ledger shows deposits, draws, refund and net for the session; the
 * gateway's store and both wallets agree. Needs `npm run build` (CI builds before testing).
 */
import { join } from 'node:path';
import type { Store } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BALANCE_MSAT, FUNDS, type LlmServeAgent, startLlmServeAgent } from './llm-serve-agent.js';

const CALLS = 8;
let serve: LlmServeAgent;

beforeAll(async () => {
  serve = await startLlmServeAgent({
    paywall: '{ rateLimits: { challenges: false }, sessions: { idleTimeout: 10m } }',
    preferences: ['mpp-session'],
  });
});

afterAll(() => serve?.close());

describe('paying fetch × tollway serve, an MPP lightning session', () => {
  it('opens, draws metered calls, tops up, closes: the refund reaches the return invoice', async () => {
    let cost = 0n;
    for (let index = 0; index < CALLS; index++) {
      const response = await serve.chat(index, index % 2 === 1);
      expect(response.status).toBe(200);
      await response.text();
      cost += 1200n + 4n * BigInt(100 + 5 * index);
    }
    const [session] = await serve.agentStore.listSessions({ states: ['open'] });
    const id = session?.id as string;
    const deposits = await serve.agentStore.list({ kind: 'purchase', account: id });
    // Each call holds up to 3 000 msat of a 10 000 msat deposit: it was topped up.
    expect(deposits.length).toBeGreaterThanOrEqual(2);
    expect(deposits.every((deposit) => deposit.protocol === 'mpp-session')).toBe(true);
    const deposited = BALANCE_MSAT * BigInt(deposits.length);
    const shopBefore = serve.network.getWallet('shop')?.balanceMsat ?? 0n;

    const [closed] = await serve.fetch402.close();
    // Refunds are whole sats.
    const refund = ((deposited - cost) / 1000n) * 1000n;
    expect(closed).toMatchObject({ id, refundMsat: refund, refundStatus: 'succeeded' });
    expect(serve.network.getWallet('shop')?.balanceMsat).toBe(shopBefore - refund);
    expect(FUNDS - (serve.network.getWallet('agent')?.balanceMsat ?? 0n)).toBe(deposited - refund);
    const [row] = await serve.agentStore.summary({ account: id }, 'account');
    expect(row).toMatchObject({
      purchases: { amountMsat: deposited },
      draws: { count: CALLS, amountMsat: cost },
      refunds: { amountMsat: refund },
    });
    // The gateway's store: the session drawn by the calls, the rest taken off and refunded.
    const gatewayStore: Store = createSqliteStore({
      path: join(serve.dir, 'data', 'tollway.sqlite'),
    });
    try {
      await gatewayStore.init();
      await vi.waitFor(async () =>
        expect(await gatewayStore.getSession(id)).toMatchObject({
          depositMsat: deposited,
          refundMsat: refund,
          refundStatus: 'succeeded',
        }),
      );
    } finally {
      await gatewayStore.close();
    }
  });
});
