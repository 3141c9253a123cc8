// A metered, streamed LLM call through `tollway serve` against the same call through a plain
// reverse proxy on the same stack (node:http + an undici pool): throughput and p50/p99 latency of
//   (b) the proxy, passing the call and its stream through,
//   (c) the gateway, the call drawing on a prepaid balance (an L402 token it has seen): the model
//       read from the body, the reservation drawn from the balance's lease,
//       `stream_options.include_usage` asked for, every event of the stream read by the meter, the usage-only chunk kept from
//       the client, the charge settled at the usage and the receipt written as an SSE comment.
//   (d) the gateway, the same call drawing a fixed price from a balance, unmetered: the share of
//       c/b that the balance's draw and its charge in the store take, before any metering.
//   (e) the gateway, the same call paid by a token valid for a time (no balance, no store, no
//       metering): what the gateway's paid path costs on this call before anything is drawn.
// c/b says what metering costs on top of proxying. Targets: c/b >= 0.85 and p99 added <= 1 ms.
// b -> e -> d -> c adds one layer at a time: the paid gateway, the balance's durable draw (each
// call's charge written before its answer ends), then metering; the line printed last says what
// each layer takes of the proxy's calls per second.
//
// The upstream (an OpenAI-style chat completions stream of 20 content chunks, written at once),
// the proxy and the gateway each run in their own child process; autocannon drives them from this
// one at 10 connections. Targets alternate in short rounds so drifts of a shared machine hit both
// alike; throughput is all requests over all rounds' time, latencies the median of the rounds.
// Requests per CPU-second of the serving process are printed too. Imports the built packages:
// run `npm run build` first. The gateway draws balances from leases (`paywall.balanceLeases`, the
// default: each call's charge written before its answer ends, concurrent calls' charges in one
// store write); `BALANCE_LEASES=0` turns them off. Takes about a minute. The last line printed
// is one JSON object (see bench/run-all.js).
//
// `BASE=<checkout>` measures a change back to back: a second gateway, built from that checkout
// (run `npm run build` there too), serves c and d in the same alternating rounds, and the ratios
// of the two builds' CPU per call are printed (this checkout's over the base's: below 1 is
// cheaper). Two gateway processes of one build differ too: A/A runs (`BASE` this checkout) read
// 0.91–0.97 here, and 1.09–1.10 in bench/gateway.js. Repeat a run, and trust a difference beyond
// that spread only.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import autocannon from 'autocannon';
import {
  answerCpuQuestions,
  cpuMs,
  listen,
  payL402,
  roleArguments,
  startRole,
} from './support/children.js';
import { createPlainProxy } from './support/plain-proxy.js';

const ROUNDS = 5;
const ROUND_SECONDS = 2;
const CONNECTIONS = 10;
const PIECES = 20;
const BODY = JSON.stringify({
  model: 'bench-model',
  max_tokens: 64,
  stream: true,
  messages: [{ role: 'user', content: 'Count from one to twenty, one number per line.' }],
});

/** An OpenAI chat completions stream: usage only when the request asks for it. */
function streamAnswer(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const withUsage = body.stream_options?.include_usage === true;
    const base = `"id":"chatcmpl-b","object":"chat.completion.chunk","created":1767225600,"model":"${body.model}"`;
    const tail = withUsage ? ',"usage":null' : '';
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.write(
      `data: {${base},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]${tail}}\n\n`,
    );
    for (let i = 1; i <= PIECES; i += 1) {
      res.write(
        `data: {${base},"choices":[{"index":0,"delta":{"content":"${i}\\n"},"finish_reason":null}]${tail}}\n\n`,
      );
    }
    res.write(
      `data: {${base},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]${tail}}\n\n`,
    );
    if (withUsage) {
      res.write(
        `data: {${base},"choices":[],"usage":{"prompt_tokens":21,"completion_tokens":40,"total_tokens":61}}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  });
}

/** Each child serves one role, tells its URL, and answers CPU-usage questions. */
async function child(role, options) {
  let url;
  if (role === 'upstream') {
    url = await listen(createServer(streamAnswer));
  } else if (role === 'proxy') {
    url = await listen(createPlainProxy(options.upstream, { withBody: true }));
  } else {
    const cli = `${options.root}/packages/cli/dist/gateway`;
    const { parseGatewayConfig } = await import(`${cli}/config.js`);
    const { createGateway } = await import(`${cli}/gateway.js`);
    const config = parseGatewayConfig({
      listen: '127.0.0.1:0',
      dataDir: options.dataDir,
      lightning: options.lightning,
      metrics: { enabled: true },
      // Balances are drawn from per-instance leases (docs/guides/charging.md), the default;
      // BALANCE_LEASES=0 holds and settles each call on its own, to compare.
      paywall: {
        rateLimits: { challenges: false },
        ...(process.env.BALANCE_LEASES === '0' ? { balanceLeases: false } : {}),
      },
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: `${options.upstream}/v1`,
          stripPrefix: true,
          balance: '1000 sat',
          llm: { models: { 'bench-model': { input: '1 sat', output: '1 sat' } } },
        },
        {
          name: 'timed',
          path: '/timed/v1',
          upstream: `${options.upstream}/v1`,
          stripPrefix: true,
          price: '1 sat',
        },
        {
          name: 'drawn',
          path: '/drawn/v1',
          upstream: `${options.upstream}/v1`,
          stripPrefix: true,
          price: '1 msat',
          balance: '1000 sat',
        },
      ],
    });
    const quiet = {
      info() {},
      warn() {},
      error: (context, message) => console.error(message, context),
    };
    url = (await createGateway({ config, logger: quiet })).url;
  }
  answerCpuQuestions();
  process.send({ url });
}

async function load(target, seconds, headers, prefix = '') {
  const before = await cpuMs(target);
  const result = await autocannon({
    url: `${target.url}${prefix}/v1/chat/completions`,
    method: 'POST',
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...headers },
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

/** Checks that the gateway meters the call: the stream ends with its receipt, without usage. */
async function checkMetered(url, authorization) {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: BODY,
  });
  const text = await response.text();
  if (!/^: tollway-charged 1 msat$/m.test(text) || text.includes('"choices":[]'))
    throw new Error(`the gateway did not meter the stream:\n${text}`);
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollway-bench-metering-'));
  const network = createDevNetwork({ path: join(dataDir, 'dev-lightning.sqlite') });
  const shop = network.openWallet('shop');
  network.openWallet('agent');
  const devServer = await createDevServer({ network });
  const upstream = await startRole(import.meta.url, 'upstream', {});
  const proxy = await startRole(import.meta.url, 'proxy', { upstream: upstream.url });
  const startGateway = (root, name) =>
    startRole(import.meta.url, 'gateway', {
      root,
      upstream: upstream.url,
      dataDir: join(dataDir, name),
      lightning: `dev+${devServer.url}?wallet=shop&token=${shop.token}`,
    });
  const gateway = await startGateway(new URL('..', import.meta.url).pathname, 'gateway');
  const base =
    process.env.BASE === undefined ? undefined : await startGateway(process.env.BASE, 'base');
  try {
    const buy = async (url, prefix) => {
      const challenge = await fetch(`${url}${prefix}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      const header = challenge.headers.get('www-authenticate');
      return (await payL402(header, network.backend('agent'))).authorization;
    };
    const gatewayTargets = async (target, name) => {
      const authorization = await buy(target.url, '');
      await checkMetered(target.url, authorization);
      return [
        { target, label: `c ${name}, metered`, headers: { authorization }, prefix: '' },
        {
          target,
          label: `d ${name}, drawn`,
          headers: { authorization: await buy(target.url, '/drawn') },
          prefix: '/drawn',
        },
      ];
    };
    const timed = {
      target: gateway,
      label: 'e gateway, timed',
      headers: { authorization: await buy(gateway.url, '/timed') },
      prefix: '/timed',
    };
    const targets = [
      { target: proxy, label: 'b proxy', headers: {}, prefix: '' },
      ...(await gatewayTargets(gateway, 'gateway')),
      timed,
      ...(base === undefined ? [] : await gatewayTargets(base, 'base')),
    ];
    for (const { target, headers, prefix } of targets) await load(target, 1, headers, prefix);
    const rounds = targets.map(() => []);
    // Every other round runs the targets in reverse order, so that none is always the one after a
    // given other.
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = [...targets.keys()];
      if (round % 2 === 1) order.reverse();
      for (const index of order) {
        const { target, headers, prefix } = targets[index];
        rounds[index].push(await load(target, ROUND_SECONDS, headers, prefix));
      }
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
        `${s.label.padEnd(20)} ${Math.round(s.rps).toString().padStart(7)} calls/s  ${Math.round(s.perCpuSecond).toString().padStart(7)} calls/CPU-s  p50 ${s.p50} ms  p99 ${s.p99} ms`,
      );
    }
    const [b, c, d, e, cBase, dBase] = summary;
    const ratio = c.rps / b.rps;
    const perCpu = (x, y) => (x.perCpuSecond / y.perCpuSecond).toFixed(3);
    console.error(
      `c/b ${ratio.toFixed(3)} (per CPU-second ${perCpu(c, b)}), p99 added by c over b ${c.p99 - b.p99} ms; unmetered draw d/b ${(d.rps / b.rps).toFixed(3)} (per CPU-second ${perCpu(d, b)}), metering c/d ${(c.rps / d.rps).toFixed(3)}`,
    );
    console.error(
      `layers, per CPU-second: paid gateway e/b ${perCpu(e, b)}, durable draw d/e ${perCpu(d, e)}, metering c/d ${perCpu(c, d)}`,
    );
    const paired =
      cBase === undefined
        ? {}
        : {
            base_ratio: Number((cBase.rps / b.rps).toFixed(3)),
            base_drawn_ratio: Number((dBase.rps / b.rps).toFixed(3)),
            cpu_vs_base: Number((cBase.perCpuSecond / c.perCpuSecond).toFixed(3)),
            drawn_cpu_vs_base: Number((dBase.perCpuSecond / d.perCpuSecond).toFixed(3)),
          };
    if (cBase !== undefined) {
      console.error(
        `base: c/b ${paired.base_ratio}, d/b ${paired.base_drawn_ratio}; CPU per call, this build over the base: c ${paired.cpu_vs_base}, d ${paired.drawn_cpu_vs_base}`,
      );
    }
    console.log(
      JSON.stringify({
        name: 'gateway_metered_stream_vs_proxy',
        value: Number(ratio.toFixed(3)),
        unit: 'ratio',
        baseline: Math.round(b.rps),
        ratio: Number(ratio.toFixed(3)),
        p99_added_ms: c.p99 - b.p99,
        drawn_ratio: Number((d.rps / b.rps).toFixed(3)),
        timed_ratio: Number((e.rps / b.rps).toFixed(3)),
        ...paired,
      }),
    );
  } finally {
    for (const target of [upstream, proxy, gateway, base]) {
      if (target === undefined) continue;
      target.proc.removeAllListeners('exit');
      target.proc.kill('SIGTERM');
    }
    await devServer.close();
    await network.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const role = roleArguments();
if (role !== undefined) await child(role.role, role.options);
else await main();
