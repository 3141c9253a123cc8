// CPU time the paywall adds to a paid request, per adapter: each adapter's middleware (and the
// engine behind it) called on a real request captured from loopback, a valid L402 credential the
// engine has already seen, the handler after the paywall a no-op. Nanoseconds of CPU per call
// (process.cpuUsage, so time other processes take from this shared machine does not count), the
// median of rounds of 100 000 calls, each adapter in a process of its own (so the engine's code
// sees one adapter's request shape, as in an app).
//
// Why: `bench/engine.js` measures the same cost as a share of a whole HTTP request, where it is a
// few per cent and the machine's noise is larger. This one shows a change of 50 ns. Compare two
// builds by running it in each worktree, alternating.
//
// `ADAPTERS=node,express node bench/adapter-cost.js` measures some of them only. Imports the built
// package: run `npm run build -w @tollway/sdk` first. The last line printed is one JSON object.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatL402Credential, parseL402Challenges, parseMacaroon } from '@tollway/sdk/l402';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';

const ADAPTERS = (process.env.ADAPTERS ?? 'node,express,fastify,hono').split(',');
const ROUNDS = 15;
const CALLS = 100_000;
// What a client sends besides the credential; the engine reads headers by scanning them.
const HEADERS = { 'user-agent': 'bench', accept: '*/*', 'accept-encoding': 'gzip' };

/** Serves `/capture` on `adapter`'s framework; resolves with its URL and the captured request. */
async function capture(adapter) {
  let captured;
  const seen = new Promise((resolve) => {
    captured = resolve;
  });
  let url;
  if (adapter === 'node') {
    const server = createServer((req, res) => {
      captured({ req, res });
      res.end();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${server.address().port}`;
  } else if (adapter === 'express') {
    const { default: express } = await import('express');
    const app = express();
    app.get('/capture', (req, res) => {
      captured({ req, res });
      res.end();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${server.address().port}`;
  } else if (adapter === 'fastify') {
    const { default: Fastify } = await import('fastify');
    const { paywallPlugin } = await import('@tollway/sdk/fastify');
    const app = Fastify();
    await app.register(paywallPlugin);
    app.get('/capture', async (request, reply) => {
      captured({ request, reply });
      return '';
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  } else {
    const { Hono } = await import('hono');
    const { serve } = await import('@hono/node-server');
    const app = new Hono();
    app.get('/capture', (c) => {
      captured({ c });
      return c.body(null);
    });
    url = await new Promise((resolve) => {
      serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
        resolve(`http://127.0.0.1:${info.port}`),
      );
    });
  }
  return { url, seen };
}

/** The adapter's middleware as one call on the captured request. */
async function middleware(adapter, paywall, route, captured) {
  const noop = () => {};
  if (adapter === 'node') {
    const { withPaywall } = await import('@tollway/sdk/node');
    const paid = withPaywall(paywall, route, noop);
    return () => paid(captured.req, captured.res);
  }
  if (adapter === 'express') {
    const { requirePayment } = await import('@tollway/sdk/express');
    const paid = requirePayment(paywall, route);
    return () => paid(captured.req, captured.res, noop);
  }
  if (adapter === 'fastify') {
    const { requirePayment } = await import('@tollway/sdk/fastify');
    const paid = requirePayment(paywall, route);
    return () => paid.call(undefined, captured.request, captured.reply, noop);
  }
  const { getConnInfo } = await import('@hono/node-server/conninfo');
  const { requirePayment } = await import('@tollway/sdk/hono');
  const paid = requirePayment(paywall, route, { getConnInfo });
  const next = () => Promise.resolve();
  return () => paid(captured.c, next);
}

/** Child process: one adapter, measured; sends the median ns per call. */
async function child(adapter) {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-adapter-'));
  try {
    const network = createDevNetwork({ path: join(dir, 'dev-lightning.sqlite') });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent', { balanceMsat: 10n ** 15n });
    const paywall = createPaywall({
      lightning: network.backend('shop'),
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
    });
    const route = paywall.route({ service: 'forecast', price: '10 sat' });
    const { url, seen } = await capture(adapter);
    // The credential: pay a 402 of the engine's (asked directly), then present it once.
    const unpaid = await paywall.handle(
      { method: 'GET', url: '/capture', headers: new Headers(), clientIp: '127.0.0.1' },
      route,
    );
    const [offer] = parseL402Challenges(
      unpaid.response.headers.find(([name]) => name === 'WWW-Authenticate')[1],
    );
    const paid = await network.backend('agent').payInvoice({ paymentRequest: offer.invoice });
    const authorization = formatL402Credential({
      macaroons: [parseMacaroon(offer.macaroon)],
      preimage: Buffer.from(paid.preimage, 'hex'),
    });
    await fetch(`${url}/capture`, { headers: { ...HEADERS, authorization } });
    const captured = await seen;
    const call = await middleware(adapter, paywall, route, captured);
    call();
    const payment =
      captured.req?.payment ?? captured.request?.payment ?? captured.c?.get('payment');
    if (payment?.protocol !== 'l402') throw new Error(`${adapter}: the paid request did not pass`);
    const costs = [];
    for (let round = 0; round <= ROUNDS; round++) {
      const before = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) call();
      const { user, system } = process.cpuUsage(before);
      // Round 0 warms up.
      if (round > 0) costs.push(((user + system) * 1000) / CALLS);
    }
    costs.sort((a, b) => a - b);
    process.send({ ns: Math.round(costs[costs.length >> 1]) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (process.argv[2] === 'child') {
  await child(process.argv[3]);
} else {
  const ns = {};
  for (const adapter of ADAPTERS) {
    const worker = fork(new URL(import.meta.url), ['child', adapter], { stdio: 'inherit' });
    ns[adapter] = await new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`${adapter} exited with ${code}`)));
      worker.once('message', (message) => resolve(message.ns));
    });
  }
  console.table(
    Object.entries(ns).map(([adapter, cost]) => ({ adapter, 'CPU ns per paid request': cost })),
  );
  const worst = Math.max(...Object.values(ns));
  console.log(
    JSON.stringify({ name: 'engine_adapter_cost', value: worst, unit: 'ns', adapters: ns }),
  );
}
