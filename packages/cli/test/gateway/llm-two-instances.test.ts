/**
 * Metering across `tollway serve` processes on one PostgreSQL: one balance drawn by 50 concurrent
 * streamed LLM calls through two instances, each charged what its answer's usage cost. The balance
 * drawn equals the sum of the metered costs the streams' receipts state, every reservation that
 * did not fit is refused (402 `balance_exhausted`), and the balance never goes below zero.
 * Needs `npm run build` (CI builds before testing).
 */
import type { Store } from '@tollway/sdk/server';
import { createPostgresStore } from '@tollway/sdk/stores/postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import { type LlmDouble, openAiServiceLines, startOpenAiDouble } from './llm-doubles.js';
import { accountOf, payL402 } from './support.js';

const postgres = await startTestPostgres();
const BALANCE_MSAT = 50_000n;
const CALLS = 50;

let cluster: Cluster;
let openai: LlmDouble;
let store: Store;

beforeAll(async () => {
  if (postgres === undefined) return;
  openai = await startOpenAiDouble('sk-test');
  cluster = await startCluster(postgres, {
    UPSTREAM: `${openai.url}/v1`,
    OPENAI_API_KEY: 'sk-test',
  });
  store = createPostgresStore({ connectionString: cluster.database });
  await store.init();
  for (const name of ['a', 'b']) {
    await cluster.start(name, [
      'paywall: { rateLimits: { challenges: false } }',
      'services:',
      ...openAiServiceLines(BALANCE_MSAT),
    ]);
  }
});

afterAll(async () => {
  await cluster?.close('SIGKILL');
  await store?.close();
  await openai?.close();
  await postgres?.stop();
});

function call(index: number, authorization?: string): Promise<Response> {
  const instance = cluster.instance(index % 2);
  return fetch(`${instance.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      // Each call reports its own output: 100 to 345 tokens.
      'x-test-completion-tokens': String(100 + 5 * index),
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 400,
      stream: true,
      // 1 400 bytes: the reservation's bound on the input covers the 1 200 tokens reported.
      messages: [{ role: 'user', content: 'Count to ten. '.repeat(100) }],
    }),
  });
}

describe.skipIf(postgres === undefined)('metering across instances on one PostgreSQL', () => {
  it('draws one balance by exactly the metered costs of 50 concurrent streams, never below zero', async () => {
    const authorization = await payL402(await call(0), cluster.network.backend('agent'));
    const results = await Promise.all(
      Array.from({ length: CALLS }, async (_, index) => {
        const response = await call(index, authorization);
        const text = await response.text();
        if (response.status !== 200) {
          return { status: response.status, code: (JSON.parse(text) as { code: string }).code };
        }
        const charged = /^: tollway-charged (\d+) msat$/m.exec(text)?.[1];
        return { status: 200, code: 'ok', charged: BigInt(charged ?? '-1'), index };
      }),
    );
    const served = results.filter((result) => result.status === 200);
    const refused = results.filter((result) => result.status !== 200);
    expect(refused.every((result) => result.code === 'balance_exhausted')).toBe(true);
    // The 50 calls would cost 104 500 msat in all: some must find the balance held or spent.
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    // What each stream reported (1200 prompt tokens, 1024 of them cached, both at 1 msat; its
    // output at 4 msat), to the msat.
    for (const result of served) {
      expect(result.charged).toBe(1200n + 4n * BigInt(100 + 5 * (result.index ?? 0)));
    }
    const sum = served.reduce((total, result) => total + (result.charged ?? 0n), 0n);
    const account = accountOf(authorization);
    await vi.waitFor(async () => expect((await store.getUsage(account)).heldMsat).toBe(0n), {
      timeout: 5000,
    });
    const usage = await store.getUsage(account);
    expect(usage.spentMsat).toBe(sum);
    expect(usage.spentMsat).toBeLessThanOrEqual(BALANCE_MSAT);
  });
});
