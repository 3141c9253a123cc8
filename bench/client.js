// The agent's paying fetch with a cached credential, against plain `fetch` sending the same
// Authorization header to the same paid route, in one run on loopback.
//
// Why that baseline: once an agent holds a credential, every further call should cost what a plain
// request costs. The ratio paying/plain says how much of plain fetch's rate is left; 1 is free.
// The route sits behind the real paywall engine (node adapter, memory store), which both sides pay
// for equally; the first paying call buys the token from the embedded dev Lightning node.
//
// Requests run sequentially (one agent), in short rounds that alternate plain and paying. A round's
// rate is per CPU-second of this process (client and server both run in it), which other processes
// on a shared machine move far less than wall-clock time; the ratio is the median of paired rounds
// (each paying round over the plain round just before it), as in bench/engine.js.
// Imports the built package: run `npm run build -w @tollway/sdk` first. The last line printed is one
// JSON object (see bench/run-all.js).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryClientStore, createPayingFetch, getPayment } from '@tollway/sdk/client';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';

const ROUNDS = 10;
const ROUND_MS = 1000;

const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-client-'));
const network = createDevNetwork({ path: join(dir, 'dev.sqlite') });
network.openWallet('shop');
network.openWallet('agent');
const paywall = createPaywall({
  lightning: network.backend('shop'),
  store: createMemoryStore(),
  secrets: [createMasterSecret()],
});
const route = paywall.route({ service: 'forecast', price: '10 sat' });
const handler = withPaywall(paywall, route, (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"city":"Oslo","sky":"clear"}');
});
const server = createServer((req, res) => void handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/v1/forecast`;

// The agent buys its token once; the credential it caches is what plain fetch replays.
const store = createMemoryClientStore();
const payingFetch = createPayingFetch({ wallets: network.backend('agent'), store });
const first = await payingFetch(url);
await first.text();
if (first.status !== 200 || getPayment(first) === undefined)
  throw new Error(`first call: ${first.status}`);
const paidAgain = await payingFetch(url);
await paidAgain.text();
if (getPayment(paidAgain) !== undefined) throw new Error('the cached credential was not reused');
const cached = await store.findCredential(new URL(url).origin, '/v1/forecast', Date.now());
if (cached === undefined) throw new Error('no cached credential');
const authorization = cached.header.value;

/** One round of sequential calls: calls per wall-clock second and per CPU-second. */
async function round(call) {
  let count = 0;
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  while (performance.now() - start < ROUND_MS) {
    const response = await call();
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`status ${response.status}`);
    count += 1;
  }
  const { user, system } = process.cpuUsage(cpuBefore);
  return {
    wall: (count * 1000) / (performance.now() - start),
    cpu: count / ((user + system) / 1e6),
  };
}

const plainCall = () => fetch(url, { headers: { authorization } });
const payingCall = () => payingFetch(url);
const plain = [];
const paying = [];
// Round 0 warms up.
for (let i = 0; i <= ROUNDS; i++) {
  const plainRound = await round(plainCall);
  const payingRound = await round(payingCall);
  if (i > 0) plain.push(plainRound);
  if (i > 0) paying.push(payingRound);
}
const ratios = paying.map((r, i) => r.cpu / plain[i].cpu).sort((a, b) => a - b);
const ratio = (ratios[(ratios.length - 1) >> 1] + ratios[ratios.length >> 1]) / 2;
const best = (rounds, key) => Math.max(...rounds.map((r) => r[key]));
server.close();
network.close();
rmSync(dir, { recursive: true, force: true });

console.table([
  {
    client: 'plain fetch + same Authorization',
    'req/s': Math.round(best(plain, 'wall')),
    'req/CPU-s': Math.round(best(plain, 'cpu')),
  },
  {
    client: 'paying fetch, cached credential',
    'req/s': Math.round(best(paying, 'wall')),
    'req/CPU-s': Math.round(best(paying, 'cpu')),
  },
]);
console.log(
  JSON.stringify({
    name: 'client_cached_overhead',
    value: Math.round(best(paying, 'cpu')),
    unit: 'req/CPU-s',
    baseline: Math.round(best(plain, 'cpu')),
    ratio: Number(ratio.toFixed(2)),
  }),
);
