// How fast the `tollway` command starts, against a bare `node -e 0`, in one run: `tollway --version`
// (what every invocation pays before doing anything) and `tollway fetch` of a paid route with a
// cached credential (what an agent that shells out pays per call).
//
// Why that baseline: Node's own start-up is the floor no Node command can go under; the ratio says
// how much the command adds to it. Goals (issue 16): `--version` within 2× `node -e 0`, and a cached
// `tollway fetch` within 0.3 s.
//
// The paid route sits behind the real paywall engine (node adapter, memory store) on loopback; the
// first `tollway fetch` buys its token from the embedded dev Lightning node through the node's HTTP
// API and caches it in a temporary agent database, which every measured fetch then reuses. Paired
// runs: each round runs the three commands one after another, in a rotating order; each figure is
// the median of its runs. Spawns the built CLI: run `npm run build` first. Prints one JSON line per
// measurement, `cli_version` and `cli_fetch_cached` (see bench/run-all.js).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';

const ROUNDS = 21;
const BIN = new URL('../packages/cli/bin/tollway.js', import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-cli-'));
const network = createDevNetwork({ path: join(dir, 'dev.sqlite') });
network.openWallet('shop');
const agent = network.openWallet('agent');
const node = await createDevServer({ network, port: 0 });
const paywall = createPaywall({
  lightning: network.backend('shop'),
  store: createMemoryStore(),
  secrets: [createMasterSecret()],
  rateLimits: { challenges: false, challengesTotal: false },
});
const route = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
const handler = withPaywall(paywall, route, (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"city":"Oslo","sky":"clear"}');
});
const server = createServer((req, res) => void handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/v1/forecast`;

const env = { ...process.env, TOLLWAY_AGENT_DB: join(dir, 'agent.sqlite') };
delete env.TOLLWAY_WALLET;
const wallet = `dev+${node.url}?wallet=agent&token=${agent.token}`;
const commands = {
  node: [process.execPath, ['-e', '0']],
  version: [process.execPath, [BIN, '--version']],
  fetch: [process.execPath, [BIN, 'fetch', url, '--wallet', wallet, '--json']],
};

/** Runs a command to its end; resolves with its wall time in ms, or rejects with what it printed. */
function time([file, args]) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, output });
      else reject(new Error(`${[file, ...args].join(' ')} exited ${code}: ${output}`));
    });
  });
}

// The first fetch pays and caches the token; the second must reuse it.
const paid = JSON.parse((await time(commands.fetch)).output);
if (paid.status !== 200 || paid.payment === null) throw new Error('the first fetch did not pay');
const reused = JSON.parse((await time(commands.fetch)).output);
if (reused.status !== 200 || reused.payment !== null) throw new Error('the token was not reused');

const runs = { node: [], version: [], fetch: [] };
const order = Object.keys(runs);
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < order.length; i++) {
    const name = order[(round + i) % order.length];
    runs[name].push((await time(commands[name])).ms);
  }
}
server.close();
await node.close();
await network.close();
rmSync(dir, { recursive: true, force: true });

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const baseline = median(runs.node);
const results = [
  { name: 'cli_version', value: median(runs.version) },
  { name: 'cli_fetch_cached', value: median(runs.fetch) },
].map(({ name, value }) => ({
  name,
  value: Math.round(value),
  unit: 'ms',
  baseline: Math.round(baseline),
  ratio: Number((value / baseline).toFixed(2)),
}));
console.table(
  [['node -e 0', baseline], ...results.map((r) => [r.name, r.value])].map(([command, ms]) => ({
    command,
    'median ms': Math.round(ms),
  })),
);
for (const result of results) console.log(JSON.stringify(result));
