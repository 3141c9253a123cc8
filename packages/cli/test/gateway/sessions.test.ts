/**
 * MPP lightning sessions through `tollway serve` processes (the built CLI) and the dev Lightning
 * node: one deposit opens a session, bearer calls draw from it, a top-up credits it, close refunds
 * the unspent deposit to the agent's return invoice. The session lives in the store: it survives
 * a restart of the gateway, two instances on one PostgreSQL never draw past it, and an idle one is
 * closed and refunded exactly once. Needs `npm run build` (CI builds before testing).
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
import {
  decodeSessionRequest,
  formatPaymentCredential,
  type PaymentChallenge,
  type PaymentPayload,
  parsePaymentChallenges,
  parsePaymentReceipt,
} from '@tollway/sdk/mpp';
import { createMasterSecret } from '@tollway/sdk/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Instance, startInstance } from './instances.js';
import { startUpstream, type Upstream } from './support.js';

const postgres = await startTestPostgres();

let network: DevNetwork;
let devServer: DevServer;
let upstream: Upstream;
let dir: string;
let shopToken: string;
const env = { TOLLWAY_TEST_SECRETS: createMasterSecret() };
const running: Instance[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollway-sessions-'));
  network = createDevNetwork({ path: ':memory:' });
  shopToken = network.openWallet('shop').token;
  network.openWallet('agent');
  devServer = await createDevServer({ network });
  upstream = await startUpstream((req, res) => {
    // The upstream is down for paths under /down: the call gets no answer.
    if (req.url?.includes('/down')) {
      req.socket.destroy();
      return;
    }
    res.end(JSON.stringify({ url: req.url }));
  });
});

afterAll(async () => {
  for (const instance of running) instance.process.kill('SIGKILL');
  await Promise.all(running.map((instance) => instance.exited));
  await devServer?.close();
  await network?.close();
  await upstream?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  await postgres?.stop();
});

/** Writes a gateway config (one service selling a 50 sat balance at 5 sat a call) and its path. */
function writeConfig(name: string, store: string | undefined, idleTimeout: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      `dataDir: ./${name}`,
      ...(store === undefined ? [] : [`store: ${store}`]),
      `lightning: dev+${devServer.url}?wallet=shop&token=${shopToken}`,
      'secrets: { env: TOLLWAY_TEST_SECRETS }',
      `paywall: { sessions: { idleTimeout: ${idleTimeout} }, rateLimits: { challenges: false } }`,
      'services:',
      `  - { name: llm, path: /llm, upstream: "${upstream.url}", price: 5 sat, balance: 50 sat }`,
      '',
    ].join('\n'),
  );
  return file;
}

async function start(config: string): Promise<Instance> {
  const instance = await startInstance(config, env);
  running.push(instance);
  return instance;
}

async function stop(instance: Instance): Promise<void> {
  instance.process.kill('SIGTERM');
  await instance.exited;
}

const agent = () => network.backend('agent');

async function agentMsat(): Promise<bigint> {
  return (await agent().getBalance()).msat;
}

/** What an agent holds of one session: the challenge it opened, the id and the deposit's preimage. */
interface Opened {
  challenge: PaymentChallenge;
  sessionId: string;
  preimage: string;
}

/** The session challenge of a 402. */
async function sessionChallenge(url: string): Promise<PaymentChallenge> {
  const offer = await fetch(url);
  expect(offer.status).toBe(402);
  const found = parsePaymentChallenges(offer.headers.get('www-authenticate') ?? '').find(
    (challenge) => challenge.intent === 'session',
  );
  if (found === undefined) throw new Error('the 402 offers no session');
  return found;
}

/** Pays the deposit invoice of a session challenge from the agent's wallet; the preimage. */
async function payDeposit(challenge: PaymentChallenge): Promise<string> {
  const invoice = decodeSessionRequest(challenge.request).depositInvoice ?? '';
  return (await agent().payInvoice({ paymentRequest: invoice })).preimage;
}

function authorization(challenge: PaymentChallenge, payload: PaymentPayload): string {
  return formatPaymentCredential({ challenge, payload });
}

/** Opens a session on `url` (its deposit paid, a return invoice of the agent's given). */
async function openSession(url: string): Promise<{ opened: Opened; response: Response }> {
  const challenge = await sessionChallenge(url);
  const preimage = await payDeposit(challenge);
  const returnInvoice = (await agent().createInvoice({ amountMsat: 0n, expirySeconds: 86_400 }))
    .paymentRequest;
  const response = await fetch(url, {
    headers: {
      authorization: authorization(challenge, { action: 'open', preimage, returnInvoice }),
    },
  });
  const sessionId = decodeSessionRequest(challenge.request).paymentHash;
  return { opened: { challenge, sessionId, preimage }, response };
}

function bearer(url: string, { challenge, sessionId, preimage }: Opened): Promise<Response> {
  return fetch(url, {
    headers: { authorization: authorization(challenge, { action: 'bearer', sessionId, preimage }) },
  });
}

function close(url: string, { challenge, sessionId, preimage }: Opened): Promise<Response> {
  return fetch(url, {
    headers: { authorization: authorization(challenge, { action: 'close', sessionId, preimage }) },
  });
}

describe('MPP sessions through tollway serve (SQLite)', () => {
  it('opens, draws, tops up and closes; a call the upstream never answers draws nothing; the refund reaches the return invoice', async () => {
    const gateway = await start(writeConfig('one', undefined, '5m'));
    const url = `${gateway.url}/llm/chat`;
    const before = await agentMsat();
    const { opened, response } = await openSession(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('tollway-remaining')).toBe('45000 msat');

    for (const expected of ['40000 msat', '35000 msat']) {
      const answer = await bearer(url, opened);
      expect([answer.status, answer.headers.get('tollway-remaining')]).toEqual([200, expected]);
    }
    const lost = await bearer(`${gateway.url}/llm/down`, opened);
    expect(lost.status).toBe(502);
    expect((await bearer(url, opened)).headers.get('tollway-remaining')).toBe('30000 msat');

    const fresh = await sessionChallenge(url);
    const topUpPreimage = await payDeposit(fresh);
    const credited = await fetch(url, {
      headers: {
        authorization: authorization(fresh, {
          action: 'topUp',
          sessionId: opened.sessionId,
          topUpPreimage,
        }),
      },
    });
    expect([credited.status, await credited.json()]).toEqual([200, { status: 'ok' }]);
    expect((await bearer(url, opened)).headers.get('tollway-remaining')).toBe('75000 msat');

    const closed = await close(url, opened);
    expect(await closed.json()).toEqual({
      status: 'closed',
      refundSats: 75,
      refundStatus: 'succeeded',
    });
    expect(parsePaymentReceipt(closed.headers.get('payment-receipt') ?? '')).toMatchObject({
      reference: opened.sessionId,
      refundSats: 75n,
      refundStatus: 'succeeded',
    });
    // Two deposits of 50 sat, 25 sat drawn by five answered calls, 75 sat refunded.
    expect(before - (await agentMsat())).toBe(25_000n);
    const after = await bearer(url, opened);
    expect([after.status, ((await after.json()) as { code: string }).code]).toEqual([
      401,
      'session_closed',
    ]);
    await stop(gateway);
  });

  it('goes on after a restart of the gateway: the session is in the store', async () => {
    const config = writeConfig('restart', undefined, '5m');
    const first = await start(config);
    const { opened, response } = await openSession(`${first.url}/llm/a`);
    expect(response.status).toBe(200);
    await stop(first);
    const second = await start(config);
    const answer = await bearer(`${second.url}/llm/b`, opened);
    expect([answer.status, answer.headers.get('tollway-remaining')]).toEqual([200, '40000 msat']);
    const closed = await close(`${second.url}/llm/b`, opened);
    expect(await closed.json()).toMatchObject({ refundSats: 40, refundStatus: 'succeeded' });
    await stop(second);
  });
});

describe.skipIf(postgres === undefined)(
  'one MPP session over two instances on one PostgreSQL',
  () => {
    it('30 concurrent bearer calls over both instances: exactly what the deposit covers is served', async () => {
      const database = await postgres?.createDatabase();
      const instances = [
        await start(writeConfig('pg-a', database, '5m')),
        await start(writeConfig('pg-b', database, '5m')),
      ];
      const urlOf = (index: number) => `${instances[index % 2]?.url}/llm/call/${index}`;
      const before = await agentMsat();
      const { opened } = await openSession(urlOf(0));
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, index) => bearer(urlOf(index), opened)),
      );
      const statuses = answers.map((answer) => answer.status);
      // 50 sat at 5 sat a call: the open and nine bearer calls.
      expect(statuses.filter((status) => status === 200)).toHaveLength(9);
      expect(statuses.filter((status) => status !== 200).every((status) => status === 402)).toBe(
        true,
      );
      const closed = await close(urlOf(1), opened);
      expect(await closed.json()).toMatchObject({ status: 'closed', refundStatus: 'skipped' });
      expect(before - (await agentMsat())).toBe(50_000n);
      await Promise.all(instances.map(stop));
    });

    it('closes an abandoned session after its idle time and refunds the unspent deposit once', async () => {
      const database = await postgres?.createDatabase();
      const instances = [
        await start(writeConfig('idle-a', database, '1s')),
        await start(writeConfig('idle-b', database, '1s')),
      ];
      const before = await agentMsat();
      const { opened } = await openSession(`${instances[0]?.url}/llm/a`);
      expect((await bearer(`${instances[1]?.url}/llm/b`, opened)).status).toBe(200);
      // The agent vanishes: 40 sat of its 50 sat deposit come back, once, whichever instance closes.
      await vi.waitFor(async () => expect(before - (await agentMsat())).toBe(10_000n), {
        timeout: 15_000,
        interval: 250,
      });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(before - (await agentMsat())).toBe(10_000n);
      const after = await bearer(`${instances[1]?.url}/llm/c`, opened);
      expect(after.status).toBe(401);
      await Promise.all(instances.map(stop));
    });
  },
);
