/**
 * The set-up of the suites where Tollway's paying fetch pays an `llm` service of a `tollway serve`
 * process: the dev Lightning node over HTTP (wallets `shop` and `agent`, both funded), the OpenAI
 * double as the upstream (1 msat per input token, 4 per output token), and the agent's fetch
 * with a SQLite client store and a budget of 5 sat per request, 10 per balance, 100 a day.
 * Needs `npm run build` (CI builds before testing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AgentBudget,
  type ClientProtocol,
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
import { createMasterSecret } from '@tollway/sdk/server';
import { type Instance, startInstance } from './instances.js';
import { type LlmDouble, openAiServiceLines, startOpenAiDouble } from './llm-doubles.js';

/** What each wallet of the dev node starts with. */
export const FUNDS = 1_000_000_000n;
/** The balance the service sells. */
export const BALANCE_MSAT = 10_000n;

export interface LlmServeAgentOptions {
  /** The gateway's `paywall` block, in YAML flow style. */
  paywall: string;
  /** An admin token for the gateway's `/_tollway` API. */
  adminToken?: string;
  /** The paying fetch's `preferences`. */
  preferences?: ClientProtocol[];
}

/** The running parts; `dir` holds the gateway's data (`data/`) and the agent's `agent.sqlite`. */
export interface LlmServeAgent {
  network: DevNetwork;
  openai: LlmDouble;
  dir: string;
  instance: Instance;
  agentStore: ClientStore;
  budget: AgentBudget;
  fetch402: PayingFetch;
  /**
   * The paying fetch's chat completion of the call `index` (its output is 100 + 5 × index tokens,
   * its input 1 200 tokens, which the reservation's bound on its 1 400 bytes covers).
   */
  chat(index: number, stream: boolean, tags?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

function writeConfig(
  dir: string,
  shopToken: string,
  devUrl: string,
  options: LlmServeAgentOptions,
) {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      'dataDir: ./data',
      `lightning: dev+${devUrl}?wallet=shop&token=${shopToken}`,
      'secrets: { env: TOLLWAY_TEST_SECRETS }',
      ...(options.adminToken === undefined ? [] : [`admin: { token: ${options.adminToken} }`]),
      `paywall: ${options.paywall}`,
      'services:',
      ...openAiServiceLines(BALANCE_MSAT),
      '',
    ].join('\n'),
  );
  return file;
}

/** Starts the dev node, the OpenAI double and `tollway serve`, and makes the agent's fetch. */
export async function startLlmServeAgent(options: LlmServeAgentOptions): Promise<LlmServeAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-llm-agent-'));
  const network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop', { balanceMsat: FUNDS });
  const agent = network.openWallet('agent', { balanceMsat: FUNDS });
  const devServer: DevServer = await createDevServer({ network });
  const openai = await startOpenAiDouble('sk-test');
  const instance = await startInstance(writeConfig(dir, shop.token, devServer.url, options), {
    TOLLWAY_TEST_SECRETS: createMasterSecret(),
    UPSTREAM: `${openai.url}/v1`,
    OPENAI_API_KEY: 'sk-test',
  });
  const agentStore = createSqliteClientStore({ path: join(dir, 'agent.sqlite') });
  const budget = createBudget({
    store: agentStore,
    limits: { perRequest: '5 sat', perBalance: '10 sat', day: '100 sat' },
    tags: { agent: 'writer' },
  });
  const fetch402 = createPayingFetch({
    wallets: createDevBackend({ url: devServer.url, wallet: 'agent', token: agent.token }),
    store: agentStore,
    budget,
    ...(options.preferences === undefined ? {} : { preferences: options.preferences }),
  });
  const chat = (index: number, stream: boolean, tags?: Record<string, string>) =>
    fetch402(`${instance.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-test-completion-tokens': String(100 + 5 * index),
      },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 400,
        stream,
        messages: [{ role: 'user', content: 'Count to ten. '.repeat(100) }],
      }),
      ...(tags === undefined ? {} : { tags }),
    });
  const close = async () => {
    instance.process.kill('SIGKILL');
    await instance.exited;
    await agentStore.close();
    await devServer.close();
    await network.close();
    await openai.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { network, openai, dir, instance, agentStore, budget, fetch402, chat, close };
}
