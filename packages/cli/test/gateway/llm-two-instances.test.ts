/**
 * Metering across `tollway serve` processes on one PostgreSQL: one balance drawn by 50 concurrent
 * streamed LLM calls through two instances, each charged what its answer's usage cost. The balance
 * drawn equals the sum of the metered costs the streams' receipts state, every reservation that
 * did not fit is refused (402 `balance_exhausted`), and the balance never goes below zero.
 * Needs `npm run build` (CI builds before testing).
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
import { createMasterSecret, type Store } from '@tollway/sdk/server';
import { createPostgresStore } from '@tollway/sdk/stores/postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Instance, startInstance } from './instances.js';
import { type LlmDouble, startOpenAiDouble } from './llm-doubles.js';
import { accountOf, payL402 } from './support.js';

const postgres = await startTestPostgres();
const BALANCE_MSAT = 50_000n;
const CALLS = 50;

let network: DevNetwork;
let devServer: DevServer;
let openai: LlmDouble;
let store: Store;
let dir: string;
const instances: Instance[] = [];

beforeAll(async () => {
  if (postgres === undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'tollway-llm-two-'));
  network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop');
  network.openWallet('agent');
  devServer = await createDevServer({ network });
  openai = await startOpenAiDouble('sk-test');
  const database = await postgres.createDatabase();
  store = createPostgresStore({ connectionString: database });
  await store.init();
  const env = {
    TOLLWAY_TEST_SECRETS: createMasterSecret(),
    UPSTREAM: `${openai.url}/v1`,
    OPENAI_API_KEY: 'sk-test',
  };
  for (const name of ['a', 'b']) {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        'listen: 127.0.0.1:0',
        `dataDir: ./${name}`,
        `store: ${database}`,
        `lightning: dev+${devServer.url}?wallet=shop&token=${shop.token}`,
        'secrets: { env: TOLLWAY_TEST_SECRETS }',
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
    instances.push(await startInstance(file, env));
  }
});

afterAll(async () => {
  for (const instance of instances) instance.process.kill('SIGKILL');
  await Promise.all(instances.map((instance) => instance.exited));
  await store?.close();
  await devServer?.close();
  await network?.close();
  await openai?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  await postgres?.stop();
});

function call(index: number, authorization?: string): Promise<Response> {
  const instance = instances[index % 2] as Instance;
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
    const authorization = await payL402(await call(0), network.backend('agent'));
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
