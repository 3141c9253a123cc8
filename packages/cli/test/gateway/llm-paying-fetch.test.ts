/**
 * The paying fetch over metered LLM calls through a `tollway serve` process (an `llm` service in
 * front of the OpenAI double, the dev Lightning node over HTTP): it buys a balance within the
 * budget's `perBalance`, draws it call after call (JSON answers and streams), buys another when a
 * reservation no longer fits (402 `balance_exhausted`), and records what each call was charged
 * from its receipt. The ledger then equals the gateway's own books: what each balance was drawn
 * in the gateway's store, the revenue per model of `/_tollway/models`, the balances sold.
 * Needs `npm run build` (CI builds before testing).
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
import { type LlmDouble, OPENAI_SCRIPT, startOpenAiDouble } from './llm-doubles.js';

const ADMIN_TOKEN = 'llm-fetch-admin-token-0123456789';
const BALANCE_MSAT = 10_000n;
const CALLS = 20;
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
  dir = mkdtempSync(join(tmpdir(), 'tollway-llm-fetch-'));
  network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop');
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
      `admin: { token: ${ADMIN_TOKEN} }`,
      'paywall: { rateLimits: { challenges: false } }',
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
    tags: { task: stream ? 'stream' : 'json' },
  });
}

async function admin(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${instance.url}/_tollway${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

const sum = (amounts: readonly bigint[]) => amounts.reduce((a, b) => a + b, 0n);

describe('paying fetch × tollway serve, llm mode', () => {
  it('20 metered calls: the ledger equals the gateway revenue of each balance and of the model', async () => {
    let cost = 0n;
    for (let index = 0; index < CALLS; index++) {
      const stream = index % 2 === 1;
      const response = await chat(index, stream);
      expect(response.status).toBe(200);
      const text = await response.text();
      if (stream) expect(text).toMatch(/data: \[DONE\]\n\n: tollway-charged \d+ msat\n/);
      // What the double's usage costs: 1 200 input tokens at 1 msat, the output at 4.
      cost += 1200n + 4n * BigInt(100 + 5 * index);
    }
    // One call the upstream fails: charged nothing, and recorded so.
    openai.next = { ...OPENAI_SCRIPT, errorStatus: 503 };
    const failed = await chat(0, false);
    openai.next = OPENAI_SCRIPT;
    expect(failed.status).toBe(503);
    expect(failed.headers.get('tollway-charged')).toBe('0');

    const draws = await agentStore.list({ kind: 'draw' });
    expect(draws).toHaveLength(CALLS);
    expect(draws.every((draw) => draw.status === 'succeeded')).toBe(true);
    expect(sum(draws.map((draw) => draw.amountMsat))).toBe(cost);
    expect(await agentStore.list({ kind: 'release' })).toHaveLength(1);
    const purchases = await agentStore.list({ kind: 'purchase', status: 'succeeded' });
    // Each call holds 3 000 msat at most; a 10 000 msat balance serves 4 to 5 calls.
    expect(purchases.length).toBeGreaterThanOrEqual(4);
    expect(purchases.every((p) => p.amountMsat === BALANCE_MSAT)).toBe(true);

    // The gateway's books: what each balance was drawn, in its store.
    const gatewayStore: Store = createSqliteStore({ path: join(dir, 'data', 'tollway.sqlite') });
    try {
      await gatewayStore.init();
      for (const purchase of purchases) {
        const account = purchase.account as string;
        const drawn = sum(
          (await agentStore.list({ kind: 'draw', account })).map((draw) => draw.amountMsat),
        );
        await vi.waitFor(async () =>
          expect(await gatewayStore.getUsage(account)).toMatchObject({
            spentMsat: drawn,
            heldMsat: 0n,
          }),
        );
      }
    } finally {
      await gatewayStore.close();
    }
    // Its revenue by model, and the balances it sold.
    const { models } = (await admin('/models')) as {
      models: Array<{ model: string; calls: number; chargedMsat: string }>;
    };
    expect(models).toEqual([
      expect.objectContaining({ model: 'gpt-4o-mini', calls: CALLS, chargedMsat: String(cost) }),
    ]);
    const [byModel] = await agentStore.summary({}, { tag: 'model' });
    expect(byModel).toMatchObject({
      key: 'gpt-4o-mini',
      draws: { count: CALLS, amountMsat: cost },
    });
    const [row] = await agentStore.summary({}, 'origin');
    expect(row?.purchases.amountMsat).toBe(BALANCE_MSAT * BigInt(purchases.length));
    const byTask = await agentStore.summary({}, { tag: 'task' });
    expect(byTask.map((r) => [r.key, r.draws.count, r.releases])).toEqual([
      ['json', CALLS / 2, 1],
      ['stream', CALLS / 2, 0],
    ]);
    // The wallet paid the balances and nothing else.
    const wallet = network.getWallet('agent')?.balanceMsat ?? 0n;
    expect(FUNDS - wallet).toBe(BALANCE_MSAT * BigInt(purchases.length));
  });
});
