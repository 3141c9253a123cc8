// `tollway serve` against the stack it is built on: throughput and p50/p99 latency of
//   (a) the upstream directly,
//   (b) a plain reverse proxy on the same stack (node:http + an undici pool), no payment,
//   (c) the gateway, each request carrying a valid L402 credential it has already seen.
// c/b says what the paywall and the gateway's bookkeeping cost on top of proxying; c/a what the
// whole gateway costs. Targets: c/b >= 0.8 and p99 added by c over b <= 2 ms.
//
// The upstream, the proxy and the gateway each run in their own child process; autocannon drives
// them from this one at 10 connections. Targets alternate in short rounds so drifts of a shared
// machine hit all three alike; throughput is all requests over all rounds' time, latencies the
// median of the rounds. Requests per CPU-second of the serving process are printed too (steadier
// on a busy machine). Imports the built packages: run `npm run build` first. Takes about a minute.
// The last line printed is one JSON object (see bench/run-all.js).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatL402Credential, parseL402Challenges, parseMacaroon } from '@tollway/sdk/l402';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import autocannon from 'autocannon';

const ROUNDS = 5;
const ROUND_SECONDS = 2;
const CONNECTIONS = 10;
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

/** Each child serves one role, tells its URL, and answers CPU-usage questions. */
async function child(role, options) {
  let url;
  if (role === 'upstream') {
    const body = JSON.stringify({ city: 'Oslo', sky: 'clear', temperature: 7 });
    url = await listen(
      createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      }),
    );
  } else if (role === 'proxy') {
    const { Pool } = await import('undici');
    const pool = new Pool(options.upstream, { connections: 256 });
    url = await listen(
      createServer({ noDelay: true }, (req, res) => {
        const headers = [];
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          if (!HOP_BY_HOP.has(req.rawHeaders[i].toLowerCase()))
            headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
        }
        pool.stream(
          { path: req.url, method: req.method, headers, body: null },
          ({ statusCode, headers: upstream }) => {
            const out = {};
            for (const [name, value] of Object.entries(upstream))
              if (!HOP_BY_HOP.has(name)) out[name] = value;
            res.writeHead(statusCode, out);
            return res;
          },
          (error) => {
            if (error && !res.headersSent) {
              res.statusCode = 502;
              res.end();
            }
          },
        );
      }),
    );
  } else {
    const { parseGatewayConfig } = await import('../packages/cli/dist/gateway/config.js');
    const { createGateway } = await import('../packages/cli/dist/gateway/gateway.js');
    const config = parseGatewayConfig({
      listen: '127.0.0.1:0',
      dataDir: options.dataDir,
      lightning: options.lightning,
      metrics: { enabled: true },
      services: [{ name: 'weather', upstream: options.upstream, price: '1 sat' }],
    });
    const quiet = {
      info() {},
      warn() {},
      error: (context, message) => console.error(message, context),
    };
    url = (await createGateway({ config, logger: quiet })).url;
  }
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send({ cpuMs: (user + system) / 1000 });
    }
  });
  process.send({ url });
}

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

function start(role, options) {
  const proc = fork(new URL(import.meta.url).pathname, ['--role', role, JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
    proc.once('message', ({ url }) => resolve({ role, url, proc }));
  });
}

function cpuMs(target) {
  return new Promise((resolve) => {
    target.proc.once('message', (message) => resolve(message.cpuMs));
    target.proc.send('cpu');
  });
}

async function load(target, seconds, headers) {
  const before = await cpuMs(target);
  const result = await autocannon({
    url: `${target.url}/weather/today`,
    connections: CONNECTIONS,
    duration: seconds,
    headers,
  });
  const cpu = (await cpuMs(target)) - before;
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${target.role}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return {
    requests: result.requests.total,
    seconds: result.duration,
    cpuMs: cpu,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollway-bench-gateway-'));
  const network = createDevNetwork({ path: join(dataDir, 'dev-lightning.sqlite') });
  const shop = network.openWallet('shop');
  network.openWallet('agent');
  const devServer = await createDevServer({ network });
  const upstream = await start('upstream', {});
  const proxy = await start('proxy', { upstream: upstream.url });
  const gateway = await start('gateway', {
    upstream: upstream.url,
    dataDir: join(dataDir, 'gateway'),
    lightning: `dev+${devServer.url}?wallet=shop&token=${shop.token}`,
  });
  try {
    const challenge = await fetch(`${gateway.url}/weather/today`);
    const [offer] = parseL402Challenges(challenge.headers.get('www-authenticate') ?? '').filter(
      (c) => c.scheme === 'L402',
    );
    const paid = await network.backend('agent').payInvoice({ paymentRequest: offer.invoice });
    const authorization = formatL402Credential({
      macaroons: [parseMacaroon(offer.macaroon)],
      preimage: Uint8Array.from(Buffer.from(paid.preimage, 'hex')),
    });
    const targets = [
      { target: upstream, label: 'a upstream', headers: {} },
      { target: proxy, label: 'b proxy', headers: {} },
      { target: gateway, label: 'c gateway, paid', headers: { authorization } },
    ];
    for (const { target, headers } of targets) await load(target, 1, headers);
    const rounds = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [index, { target, headers }] of targets.entries())
        rounds[index].push(await load(target, ROUND_SECONDS, headers));
    }
    const summary = rounds.map((runs, index) => {
      const requests = runs.reduce((sum, run) => sum + run.requests, 0);
      return {
        label: targets[index].label,
        rps: requests / runs.reduce((sum, run) => sum + run.seconds, 0),
        perCpuSecond: requests / (runs.reduce((sum, run) => sum + run.cpuMs, 0) / 1000),
        p50: median(runs.map((run) => run.p50)),
        p99: median(runs.map((run) => run.p99)),
      };
    });
    for (const s of summary) {
      console.error(
        `${s.label.padEnd(18)} ${Math.round(s.rps).toString().padStart(7)} req/s  ${Math.round(s.perCpuSecond).toString().padStart(7)} req/CPU-s  p50 ${s.p50} ms  p99 ${s.p99} ms`,
      );
    }
    const [a, b, c] = summary;
    const ratio = c.rps / b.rps;
    console.error(
      `c/b ${ratio.toFixed(3)} (per CPU-second ${(c.perCpuSecond / b.perCpuSecond).toFixed(3)}), c/a ${(c.rps / a.rps).toFixed(3)}, p99 added by c over b ${c.p99 - b.p99} ms`,
    );
    console.log(
      JSON.stringify({
        name: 'gateway_paid_vs_proxy',
        value: Number(ratio.toFixed(3)),
        unit: 'ratio',
        baseline: Math.round(b.rps),
        ratio: Number(ratio.toFixed(3)),
        p99_added_ms: c.p99 - b.p99,
      }),
    );
  } finally {
    for (const target of [upstream, proxy, gateway]) {
      target.proc.removeAllListeners('exit');
      target.proc.kill('SIGTERM');
    }
    await devServer.close();
    await network.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const roleAt = process.argv.indexOf('--role');
if (roleAt >= 0)
  await child(process.argv[roleAt + 1], JSON.parse(process.argv[roleAt + 2] ?? '{}'));
else await main();
