// Crash safety of the paying fetch across processes: a child Node process (crash-agent.ts, run over
// the SDK's sources) pays through a dev node over HTTP and is killed with SIGKILL around the payment;
// a second process with the same SQLite agent store finishes the job. The payee must be paid once.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBudget, createSqliteClientStore } from '@tollway/sdk/client';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listen } from '../adapters/conformance.js';
import { type ChallengeServer, startChallengeServer } from '../support/challenge-servers.js';

const runner = fileURLToPath(new URL('run-ts.mjs', import.meta.url));
const child = fileURLToPath(new URL('crash-agent.ts', import.meta.url));
/** Each child compiles the SDK's sources first (several seconds on a busy machine). */
const CHILD_TEST_TIMEOUT_MS = 180_000;

interface ChildResult {
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [runner, child, ...args],
      { timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ signal: error?.signal ?? null, stdout, stderr });
      },
    );
  });
}

describe('crash between paying and retrying (child processes)', () => {
  let dir: string;
  let network: DevNetwork;
  let devServer: DevServer;
  let server: ChallengeServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollway-crash-'));
    network = createDevNetwork({ path: join(dir, 'dev.sqlite') });
    network.openWallet('shop', { balanceMsat: 0n });
    devServer = await createDevServer({ network });
    server = await startChallengeServer(network.backend('shop'));
  });

  afterAll(async () => {
    await server.close();
    await devServer.close();
    await network.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function agent(name: string) {
    const { token } = network.openWallet(name, { balanceMsat: 1_000_000n });
    return {
      connection: `dev+${devServer.url}?wallet=${name}&token=${token}`,
      spent: () => 1_000_000n - (network.getWallet(name)?.balanceMsat ?? 0n),
    };
  }

  it(
    'killed after the wallet paid: the next process finds the payment by hash and does not pay again',
    async () => {
      const wallet = agent('crash-after');
      const db = join(dir, 'after.sqlite');
      const url = `${server.url}/aperture/report?price=10`;

      const crashed = await runChild([url, wallet.connection, db, 'after-pay']);
      expect(crashed.signal).toBe('SIGKILL');
      expect(wallet.spent()).toBe(10_000n);
      const before = createSqliteClientStore({ path: db });
      expect((await before.pendingPayments()).map((e) => [e.amountMsat, e.status])).toEqual([
        [10_000n, 'pending'],
      ]);
      await before.close();

      const served = server.served;
      const resumed = await runChild([url, wallet.connection, db, 'none']);
      expect(resumed).toMatchObject({ signal: null, stderr: '' });
      expect(JSON.parse(resumed.stdout)).toMatchObject({
        status: 200,
        body: { paid: 'l402' },
        paid: false,
      });
      expect(server.served - served).toBe(1);
      expect(wallet.spent()).toBe(10_000n);

      const after = createSqliteClientStore({ path: db });
      const [entry] = await after.list();
      expect(entry).toMatchObject({ status: 'succeeded', amountMsat: 10_000n });
      expect(entry?.proof).toMatch(/^[0-9a-f]{64}$/);
      const budget = createBudget({ store: after, limits: { day: '100 sat' } });
      expect(await budget.status()).toEqual([
        expect.objectContaining({ spentMsat: 10_000n, heldMsat: 0n }),
      ]);
      await after.close();
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it(
    'killed after paying a session deposit: the next process finds the session and opens it without paying',
    async () => {
      const shop = createMemoryStore();
      const paywall = createPaywall({
        lightning: network.backend('shop'),
        store: shop,
        secrets: [createMasterSecret()],
        rateLimits: { challenges: false },
        logger: { warn: () => undefined, error: () => undefined },
        sessions: { idleTimeout: 600 },
      });
      const route = paywall.route({ service: 'calls', price: '10 sat', balance: '50 sat' });
      const api = await listen(
        createServer(
          withPaywall(paywall, route, (req, res) => {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ paid: req.payment.protocol }));
          }),
        ),
      );
      try {
        const wallet = agent('crash-session');
        const db = join(dir, 'session.sqlite');
        const url = `${api.url}/calls`;
        const crashed = await runChild([url, wallet.connection, db, 'after-pay', 'mpp-session']);
        expect(crashed.signal).toBe('SIGKILL');
        expect(wallet.spent()).toBe(50_000n);

        const resumed = await runChild([url, wallet.connection, db, 'none', 'mpp-session']);
        expect(JSON.parse(resumed.stdout)).toMatchObject({
          status: 200,
          body: { paid: 'mpp' },
          paid: false,
        });
        expect(wallet.spent()).toBe(50_000n);
        const store = createSqliteClientStore({ path: db });
        const [session] = await store.listSessions({ states: ['open'] });
        expect(session).toMatchObject({ origin: api.url, url });
        const id = session?.id as string;
        // The server opened it on the recovered open credential, and drew the call from it.
        expect(await shop.getSession(id)).toMatchObject({ depositMsat: 50_000n });
        await vi.waitFor(async () => expect((await shop.getUsage(id)).spentMsat).toBe(10_000n));
        expect((await store.list({ kind: 'purchase' })).map((e) => [e.status, e.account])).toEqual([
          ['succeeded', id],
        ]);
        await store.close();
      } finally {
        await api.close();
      }
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it(
    'killed after paying a session top-up: the next process sends the top-up, and the session goes on',
    async () => {
      const shop = createMemoryStore();
      const paywall = createPaywall({
        lightning: network.backend('shop'),
        store: shop,
        secrets: [createMasterSecret()],
        rateLimits: { challenges: false },
        logger: { warn: () => undefined, error: () => undefined },
        sessions: { idleTimeout: 600 },
      });
      const route = paywall.route({ service: 'calls', price: '10 sat', balance: '30 sat' });
      const api = await listen(
        createServer(
          withPaywall(paywall, route, (req, res) => {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ paid: req.payment.protocol }));
          }),
        ),
      );
      try {
        const wallet = agent('crash-top-up');
        const db = join(dir, 'top-up.sqlite');
        const url = `${api.url}/calls`;
        // The deposit (30 sat) serves three calls; the fourth pays a top-up and is killed.
        const args = [url, wallet.connection, db, 'after-pay:2', 'mpp-session', '4'];
        const crashed = await runChild(args);
        expect(crashed.signal).toBe('SIGKILL');
        expect(wallet.spent()).toBe(60_000n);
        const before = createSqliteClientStore({ path: db });
        const [session] = await before.listSessions({ states: ['open'] });
        const id = session?.id as string;
        expect((await before.pendingPayments()).map((e) => [e.account, e.amountMsat])).toEqual([
          [id, 30_000n],
        ]);
        await before.close();
        expect(await shop.getSession(id)).toMatchObject({ depositMsat: 30_000n });

        const resumed = await runChild([url, wallet.connection, db, 'none', 'mpp-session']);
        expect(JSON.parse(resumed.stdout)).toMatchObject({
          status: 200,
          body: { paid: 'mpp' },
          paid: false,
        });
        // Paid once: the top-up was credited to the session, and the call drew from it.
        expect(wallet.spent()).toBe(60_000n);
        expect(await shop.getSession(id)).toMatchObject({ depositMsat: 60_000n });
        await vi.waitFor(async () => expect((await shop.getUsage(id)).spentMsat).toBe(40_000n));
        const store = createSqliteClientStore({ path: db });
        expect(
          (await store.list({ kind: 'purchase' })).map((e) => [e.status, e.account, e.amountMsat]),
        ).toEqual([
          ['succeeded', id, 30_000n],
          ['succeeded', id, 30_000n],
        ]);
        const budget = createBudget({ store, limits: { day: '100 sat' } });
        expect(await budget.status()).toEqual([
          expect.objectContaining({ spentMsat: 60_000n, heldMsat: 0n }),
        ]);
        await store.close();
      } finally {
        await api.close();
      }
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it(
    'killed before the wallet was asked: the next process pays once, and only once in all',
    async () => {
      const wallet = agent('crash-before');
      const db = join(dir, 'before.sqlite');
      const url = `${server.url}/spec/report?price=10`;

      const crashed = await runChild([url, wallet.connection, db, 'before-pay']);
      expect(crashed.signal).toBe('SIGKILL');
      expect(wallet.spent()).toBe(0n);

      const resumed = await runChild([url, wallet.connection, db, 'none']);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 200, paid: true });
      expect(wallet.spent()).toBe(10_000n);
      const store = createSqliteClientStore({ path: db });
      expect((await store.list()).map((e) => e.status).sort()).toEqual(['pending', 'succeeded']);
      await store.close();
    },
    CHILD_TEST_TIMEOUT_MS,
  );
});
