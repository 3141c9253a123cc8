// Two agent processes sharing one SQLite agent database (and one wallet) against Tollway's own
// engine on loopback: each process calls 25 paid paths of its own at once, every path its own
// service, so a token saved for one path is refused on every other. Every call must be answered,
// each path paid exactly once, and nothing paid twice.
//
// The processes reach the engine through a relay that fixes the interleaving that makes this hard
// (left to chance, it varies with the machine's load): every call of both processes is challenged
// at once, before either process holds a token, and a refused credential is answered only once both
// processes have been served, so that tokens of both meet in the shared database.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createBudget, createSqliteClientStore } from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const runner = fileURLToPath(new URL('run-ts.mjs', import.meta.url));
const agentScript = fileURLToPath(new URL('shared-agent.ts', import.meta.url));
/** Each child compiles the SDK's sources first (several seconds on a busy machine). */
const CHILD_TEST_TIMEOUT_MS = 180_000;
const PATHS_PER_PROCESS = 25;

interface CallResult {
  url: string;
  status: number | string;
  paidMsat: string;
}

let dir: string;
let network: DevNetwork;
let devServer: DevServer;
let server: Server;
let relay: Server;
let base: string;
/** Price in sat of each paid path: /a/0 … /a/24 and /b/0 … /b/24, all different. */
const prices = new Map<string, number>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollway-shared-db-'));
  network = createDevNetwork({ path: join(dir, 'dev.sqlite') });
  network.openWallet('shop', { balanceMsat: 0n });
  devServer = await createDevServer({ network });
  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
  });
  const handlers = new Map<string, ReturnType<typeof withPaywall>>();
  for (const [offset, agent] of ['a', 'b'].entries()) {
    for (let i = 0; i < PATHS_PER_PROCESS; i++) {
      const path = `/${agent}/${i}`;
      const price = offset * PATHS_PER_PROCESS + i + 1;
      prices.set(path, price);
      const route = paywall.route({ service: `${agent}${i}`, price: `${price} sat` });
      handlers.set(
        path,
        withPaywall(paywall, route, (req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ path: req.url }));
        }),
      );
    }
  }
  server = createServer((req, res) => {
    const handler = handlers.get(req.url ?? '');
    if (handler === undefined) res.writeHead(404).end();
    else void handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay = createRelay(
    `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    2 * PATHS_PER_PROCESS,
  );
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
});

/** A promise, and the function that resolves it. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/**
 * Forwards GET requests (with their Authorization) to `target`. Challenges to requests without a
 * credential are held until `calls` of them are ready, then all sent at once; a 401 or 402 answering
 * a credential waits until both processes (paths `/a/…` and `/b/…`) have been answered a 200.
 */
function createRelay(target: string, calls: number): Server {
  const challenged = gate();
  const served = { a: gate(), b: gate() };
  let ready = 0;
  return createServer(async (req, res) => {
    const authorization = req.headers.authorization;
    const upstream = await fetch(`${target}${req.url}`, {
      headers: authorization === undefined ? {} : { authorization },
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    if (upstream.status === 200) served[req.url?.startsWith('/a/') ? 'a' : 'b'].open();
    else if (authorization === undefined) {
      if (++ready === calls) challenged.open();
      await challenged.opened;
    } else await Promise.all([served.a.opened, served.b.opened]);
    for (const [name, value] of upstream.headers) {
      if (!['content-length', 'connection', 'keep-alive', 'transfer-encoding'].includes(name)) {
        res.setHeader(name, value);
      }
    }
    res.writeHead(upstream.status).end(body);
  });
}

afterAll(async () => {
  for (const each of [relay, server]) {
    each.closeAllConnections();
    await new Promise((resolve) => each.close(resolve));
  }
  await devServer.close();
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

function collect(child: ChildProcessWithoutNullStreams): Promise<string> {
  let text = '';
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return new Promise((done) => child.once('close', () => done(text)));
}

describe('two processes, one agent database', () => {
  it(
    'answers every call of both processes, paying each path once and nothing twice',
    async () => {
      const balanceMsat = 10_000_000n;
      const { token } = network.openWallet('agent', { balanceMsat });
      const connection = `dev+${devServer.url}?wallet=agent&token=${token}`;
      const db = join(dir, 'agent.sqlite');
      await createSqliteClientStore({ path: db }).close();
      const urls = (agent: string) =>
        Array.from({ length: PATHS_PER_PROCESS }, (_, i) => `${base}/${agent}/${i}`);
      const children = ['a', 'b'].map((agent) =>
        spawn(process.execPath, [runner, agentScript, db, connection, ...urls(agent)]),
      );
      const lines = children.map((child) =>
        createInterface({ input: child.stdout })[Symbol.asyncIterator](),
      );
      const next = async (i: number) => (await lines[i]?.next())?.value as string;
      const stderr = children.map((child) => collect(child));
      expect(await Promise.all([next(0), next(1)])).toEqual(['ready', 'ready']);
      for (const child of children) child.stdin.write('go\n');
      const outputs = await Promise.all([next(0), next(1)]);
      for (const child of children) child.stdin.end();
      expect(await Promise.all(stderr)).toEqual(['', '']);

      const results = outputs.flatMap((out) => JSON.parse(out) as CallResult[]);
      expect(results.filter((r) => r.status !== 200)).toEqual([]);
      const priceOf = (url: string) => BigInt(prices.get(new URL(url).pathname) ?? 0) * 1000n;
      for (const result of results) expect(BigInt(result.paidMsat)).toBe(priceOf(result.url));
      const sum = [...prices.values()].reduce((total, price) => total + BigInt(price) * 1000n, 0n);
      expect(balanceMsat - (network.getWallet('agent')?.balanceMsat ?? 0n)).toBe(sum);
      const store = createSqliteClientStore({ path: db });
      const entries = await store.list();
      expect(entries.filter((e) => e.status === 'succeeded')).toHaveLength(2 * PATHS_PER_PROCESS);
      expect(entries.filter((e) => e.status !== 'succeeded')).toEqual([]);
      expect((await store.totals()).map((t) => t.amountMsat)).toEqual([sum]);
      const budget = createBudget({ store, limits: { day: '100000 sat' } });
      expect(await budget.status()).toEqual([
        expect.objectContaining({ spentMsat: sum, heldMsat: 0n }),
      ]);
      await store.close();
    },
    CHILD_TEST_TIMEOUT_MS,
  );
});
