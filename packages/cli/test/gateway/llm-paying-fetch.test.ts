/**
 * The paying fetch over metered LLM calls through a `tollway serve` process (an `llm` service in
 * front of the OpenAI double, the dev Lightning node over HTTP): it buys a balance within the
 * budget's `perBalance`, draws it call after call (JSON answers and streams), buys another when a
 * reservation no longer fits (402 `balance_exhausted`), and records what each call was charged
 * from its receipt. The ledger then equals the gateway's own books: what each balance was drawn
 * in the gateway's store, the revenue per model of `/_tollway/models`, the balances sold.
 * Needs `npm run build` (CI builds before testing).
 */
import { join } from 'node:path';
import type { Store } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OPENAI_SCRIPT } from './llm-doubles.js';
import { BALANCE_MSAT, FUNDS, type LlmServeAgent, startLlmServeAgent } from './llm-serve-agent.js';

const ADMIN_TOKEN = 'llm-fetch-admin-token-0123456789';
const CALLS = 20;

/** A chat completion of the call `index`, tagged with its task: `stream` or `json`. */
const chat = (index: number, stream: boolean) =>
  serve.chat(index, stream, { task: stream ? 'stream' : 'json' });
let serve: LlmServeAgent;

beforeAll(async () => {
  serve = await startLlmServeAgent({
    paywall: '{ rateLimits: { challenges: false } }',
    adminToken: ADMIN_TOKEN,
  });
});

afterAll(() => serve?.close());

async function admin(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${serve.instance.url}/_tollway${path}`, {
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
    serve.openai.next = { ...OPENAI_SCRIPT, errorStatus: 503 };
    const failed = await chat(0, false);
    serve.openai.next = OPENAI_SCRIPT;
    expect(failed.status).toBe(503);
    expect(failed.headers.get('tollway-charged')).toBe('0');

    const draws = await serve.agentStore.list({ kind: 'draw' });
    expect(draws).toHaveLength(CALLS);
    expect(draws.every((draw) => draw.status === 'succeeded')).toBe(true);
    expect(sum(draws.map((draw) => draw.amountMsat))).toBe(cost);
    expect(await serve.agentStore.list({ kind: 'release' })).toHaveLength(1);
    const purchases = await serve.agentStore.list({ kind: 'purchase', status: 'succeeded' });
    // Each call holds 3 000 msat at most; a 10 000 msat balance serves 4 to 5 calls.
    expect(purchases.length).toBeGreaterThanOrEqual(4);
    expect(purchases.every((p) => p.amountMsat === BALANCE_MSAT)).toBe(true);

    // The gateway's books: what each balance was drawn, in its store.
    const gatewayStore: Store = createSqliteStore({
      path: join(serve.dir, 'data', 'tollway.sqlite'),
    });
    try {
      await gatewayStore.init();
      for (const purchase of purchases) {
        const account = purchase.account as string;
        const drawn = sum(
          (await serve.agentStore.list({ kind: 'draw', account })).map((draw) => draw.amountMsat),
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
    const [byModel] = await serve.agentStore.summary({}, { tag: 'model' });
    expect(byModel).toMatchObject({
      key: 'gpt-4o-mini',
      draws: { count: CALLS, amountMsat: cost },
    });
    const [row] = await serve.agentStore.summary({}, 'origin');
    expect(row?.purchases.amountMsat).toBe(BALANCE_MSAT * BigInt(purchases.length));
    const byTask = await serve.agentStore.summary({}, { tag: 'task' });
    expect(byTask.map((r) => [r.key, r.draws.count, r.releases])).toEqual([
      ['json', CALLS / 2, 1],
      ['stream', CALLS / 2, 0],
    ]);
    // The wallet paid the balances and nothing else.
    const wallet = serve.network.getWallet('agent')?.balanceMsat ?? 0n;
    expect(FUNDS - wallet).toBe(BALANCE_MSAT * BigInt(purchases.length));
  });
});
