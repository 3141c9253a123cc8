/**
 * The paying fetch in an MPP lightning session through a `tollway serve` process (an `llm` service
 * with `paywall.sessions`, in front of the OpenAI double, the dev Lightning node over HTTP): it
 * opens the session on the deposit with a return invoice of the agent's wallet, draws it with
 * metered calls, tops it up when a call no longer fits, and on close gets the unspent deposit back
 * on its return invoice. The ledger shows deposits, draws, refund and net for the session; the
 * gateway's store and both wallets agree. Needs `npm run build` (CI builds before testing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AgentBudget,
  type ClientStore,
  createBudget,
  createPayingFetch,
  createSqliteClientStore,
  type PayingFetch,
} from '@tollway/sdk/client';
import {
  createDevBackend,
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { createMasterSecret, type Store } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Instance, startInstance } from './instances.js';
import { type LlmDouble, startOpenAiDouble } from './llm-doubles.js';

const BALANCE_MSAT = 10_000n;
const CALLS = 8;
const FUNDS = 1_000_000_000n;

let network: DevNetwork;
let devServer: DevServer;
let openai: LlmDouble;
let dir: string;
let instance: Instance;
let agentStore: ClientStore;
let budget: AgentBudget;
let fetch402: PayingFetch;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollway-llm-session-'));
  network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop', { balanceMsat: FUNDS });
  const agent = network.openWallet('agent', { balanceMsat: FUNDS });
  devServer = await createDevServer({ network });
  openai = await startOpenAiDouble('sk-test');
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      'dataDir: ./data',
      `lightning: dev+${devServer.url}?wallet=shop&token=${shop.token}`,
      'secrets: { env: TOLLWAY_TEST_SECRETS }',
      'paywall: { rateLimits: { challenges: false }, sessions: { idleTimeout: 10m } }',
      'services:',
      '  - name: llm',
      '    path: /v1',
      '    upstream: ${UPSTREAM}',
      '    stripPrefix: true',
      "    headers: { authorization: 'Bearer ${OPENAI_API_KEY}' }",
      `    balance: ${BALANCE_MSAT} msat`,
      '    llm:',
      // 1 msat per input token, 4 per output token.
      "      models: { gpt-4o-mini: { input: '1000 sat', output: '4000 sat' } }",
      '',
    ].join('\n'),
  );
  instance = await startInstance(file, {
    TOLLWAY_TEST_SECRETS: createMasterSecret(),
    UPSTREAM: `${openai.url}/v1`,
    OPENAI_API_KEY: 'sk-test',
  });
  agentStore = createSqliteClientStore({ path: join(dir, 'agent.sqlite') });
  budget = createBudget({
    store: agentStore,
    limits: { perRequest: '5 sat', perBalance: '10 sat', day: '100 sat' },
    tags: { agent: 'writer' },
  });
  fetch402 = createPayingFetch({
    wallets: createDevBackend({ url: devServer.url, wallet: 'agent', token: agent.token }),
    store: agentStore,
    budget,
    preferences: ['mpp-session'],
  });
});

afterAll(async () => {
  instance?.process.kill('SIGKILL');
  await instance?.exited;
  await agentStore?.close();
  await devServer?.close();
  await network?.close();
  await openai?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** A chat completion of the call `index`: its output is 100 + 5 × index tokens. */
function chat(index: number, stream: boolean): Promise<Response> {
  return fetch402(`${instance.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-test-completion-tokens': String(100 + 5 * index),
    },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 400,
      stream,
      // 1 400 bytes: the reservation's bound on the input covers the 1 200 tokens reported.
      messages: [{ role: 'user', content: 'Count to ten. '.repeat(100) }],
    }),
  });
}

const _sum = (amounts: readonly bigint[]) => amounts.reduce((a, b) => a + b, 0n);

describe('paying fetch × tollway serve, an MPP lightning session', () => {
  it('opens, draws metered calls, tops up, closes: the refund reaches the return invoice', async () => {
    let cost = 0n;
    for (let index = 0; index < CALLS; index++) {
      const response = await chat(index, index % 2 === 1);
      expect(response.status).toBe(200);
      await response.text();
      cost += 1200n + 4n * BigInt(100 + 5 * index);
    }
    const [session] = await agentStore.listSessions({ states: ['open'] });
    const id = session?.id as string;
    const deposits = await agentStore.list({ kind: 'purchase', account: id });
    // Each call holds up to 3 000 msat of a 10 000 msat deposit: it was topped up.
    expect(deposits.length).toBeGreaterThanOrEqual(2);
    expect(deposits.every((deposit) => deposit.protocol === 'mpp-session')).toBe(true);
    const deposited = BALANCE_MSAT * BigInt(deposits.length);
    const shopBefore = network.getWallet('shop')?.balanceMsat ?? 0n;

    const [closed] = await fetch402.close();
    // Refunds are whole sats.
    const refund = ((deposited - cost) / 1000n) * 1000n;
    expect(closed).toMatchObject({ id, refundMsat: refund, refundStatus: 'succeeded' });
    expect(network.getWallet('shop')?.balanceMsat).toBe(shopBefore - refund);
    expect(FUNDS - (network.getWallet('agent')?.balanceMsat ?? 0n)).toBe(deposited - refund);
    const [row] = await agentStore.summary({ account: id }, 'account');
    expect(row).toMatchObject({
      purchases: { amountMsat: deposited },
      draws: { count: CALLS, amountMsat: cost },
      refunds: { amountMsat: refund },
    });
    // The gateway's store: the session drawn by the calls, the rest taken off and refunded.
    const gatewayStore: Store = createSqliteStore({ path: join(dir, 'data', 'tollway.sqlite') });
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
