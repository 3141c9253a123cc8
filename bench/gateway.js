// `tollway serve` against the stack it is built on: throughput and p50/p99 latency of
//   (a) the upstream directly,
//   (b) a plain reverse proxy on the same stack (node:http + an undici pool), no payment,
//   (c) the gateway, each request carrying a valid L402 credential it has already seen,
//   (d) the same, to a service that tells its upstream nothing (`forwardedHeaders` and
//       `paymentHeaders` off): what the headers the gateway adds by default cost.
// c/b says what the paywall and the gateway's bookkeeping cost on top of proxying (d/b: without
// the headers it adds); c/a what the whole gateway costs. Targets (issue 20): c/b >= 0.9 and p99
// added by c over b <= 1 ms. The upstream's CPU time per request is measured behind each target
// too: the headers the gateway adds are parsed there, on the same two cores (`upstream_cpu_ratio`
// in the JSON line, c over b; `cpu_ratio` and `quiet_cpu_ratio` are c/b and d/b per CPU-second
// of the serving process).
//
// `BASE=<checkout>` measures a change back to back: a second gateway, built from that checkout
// (run `npm run build` there too), serves (c) in the same alternating rounds, and the ratio of
// the two builds' CPU per request is printed (this checkout's over the base's: below 1 is
// cheaper) and added to the last JSON line as `cpu_vs_base`. Two gateway processes of one build
// differ too: A/A runs (`BASE` this checkout) read 1.09 and 1.10 here, and 0.91–0.97 in
// bench/metering.js, whatever the order of the targets. Repeat a run, and trust a difference
// beyond that spread only.
//
// Then the same comparison for gRPC and WebSockets, each against a plain proxy on the stack the
// gateway uses for it, in a second gateway process (h2c on, so the first one's HTTP/1.1 listener
// stays as it was):
//   gRPC: unary calls from one @grpc/grpc-js client (one HTTP/2 connection, 10 calls in flight)
//     to a grpc-js server, through a plain h2c proxy (node:http2 both sides) and through the
//     gateway with an L402 credential in metadata;
//   WebSocket: 10 sockets, each sending a message and waiting for its echo (ws both sides),
//     through a plain relay (ws, message by message) and through the gateway on a paid socket, and
//     on a socket that draws 1 msat per message from a balance.
//
// The upstream, the proxy and the gateway each run in their own child process; autocannon drives
// them from this one at 10 connections. Targets alternate in short rounds so drifts of a shared
// machine hit all three alike; throughput is all requests over all rounds' time, latencies the
// median of the rounds. Requests per CPU-second of the serving process are printed too (steadier
// on a busy machine). `TRACING=1` turns the gateway's tracing on (bench/support/otel.js: the OpenTelemetry
// SDK, spans batched and dropped). Imports the built packages: run `npm run build` first. Takes
// about a minute.
// It prints a JSON line for gRPC and one for WebSockets, then, last, the HTTP one (see
// bench/run-all.js).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import autocannon from 'autocannon';
import { WebSocket, WebSocketServer } from 'ws';
import {
  answerCpuQuestions,
  cpuMs,
  listen,
  payL402,
  roleArguments,
  startRole,
} from './support/children.js';
import { registerDroppingProvider, TRACING } from './support/otel.js';
import { createPlainProxy } from './support/plain-proxy.js';

const ROUNDS = 5;
const ROUND_SECONDS = 2;
const CONNECTIONS = 10;

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
    url = await listen(createPlainProxy(options.upstream, { withBody: false }));
  } else if (role === 'grpc-upstream') {
    const server = new grpc.Server();
    server.addService(ECHO_SERVICE, {
      Say: (call, callback) => callback(null, call.request),
    });
    const port = await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    url = `http://127.0.0.1:${port}`;
  } else if (role === 'grpc-proxy') {
    url = await listen(createGrpcProxy(options.upstream));
  } else if (role === 'ws-upstream') {
    const server = createServer();
    new WebSocketServer({ server }).on('connection', (socket) =>
      socket.on('message', (data, binary) => socket.send(data, { binary })),
    );
    url = await listen(server);
  } else if (role === 'ws-proxy') {
    url = await listen(createWebSocketRelay(options.upstream));
  } else {
    const cli = `${options.root ?? new URL('..', import.meta.url).pathname}/packages/cli/dist/gateway`;
    const { parseGatewayConfig } = await import(`${cli}/config.js`);
    const { createGateway } = await import(`${cli}/gateway.js`);
    if (TRACING) registerDroppingProvider();
    const config = parseGatewayConfig({
      listen: '127.0.0.1:0',
      dataDir: options.dataDir,
      lightning: options.lightning,
      metrics: { enabled: true },
      tracing: { enabled: TRACING },
      services: options.services ?? [
        ...(options.quiet ? [quietService(options.upstream)] : []),
        { name: 'weather', upstream: options.upstream, price: '1 sat' },
      ],
      ...(options.h2c ? { h2c: true } : {}),
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

/** Target (d): `/quiet/…` forwarded as `/…`, without `X-Forwarded-*`, `Forwarded`, `X-Tollway-*`. */
function quietService(upstream) {
  const tellsNothing = { forwardedHeaders: false, paymentHeaders: false };
  return {
    name: 'quiet',
    path: '/quiet',
    stripPrefix: true,
    upstream,
    price: '1 sat',
    ...tellsNothing,
  };
}

/** The gRPC service of the benchmark: unary `Say`, bytes in and out as they are. */
const ECHO_SERVICE = {
  Say: {
    path: '/bench.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: (bytes) => bytes,
    requestDeserialize: (bytes) => bytes,
    responseSerialize: (bytes) => bytes,
    responseDeserialize: (bytes) => bytes,
  },
};
const ECHO_MESSAGE = Buffer.from(JSON.stringify({ city: 'Oslo', sky: 'clear', temperature: 7 }));

/** A plain h2c proxy on node:http2 both sides: streams, headers and trailers passed as they are. */
function createGrpcProxy(upstream) {
  const session = connectHttp2(upstream);
  const server = createHttp2Server();
  server.on('stream', (stream, headers) => {
    const call = session.request(headers);
    let trailers = {};
    stream.pipe(call);
    call.on('response', (answer) => {
      stream.respond(answer, { waitForTrailers: true });
      call.pipe(stream);
    });
    call.on('trailers', (received) => {
      trailers = received;
    });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    call.on('error', () => stream.close(0x2));
    stream.on('error', () => call.close(0x8));
  });
  return server;
}

/** A plain WebSocket relay on ws both sides: each message passed on as it arrives. */
function createWebSocketRelay(upstream) {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const out = new WebSocket(`${upstream.replace('http', 'ws')}${req.url}`);
    out.once('error', () => socket.destroy());
    out.once('open', () =>
      wss.handleUpgrade(req, socket, head, (client) => {
        client.on('message', (data, binary) => out.send(data, { binary }));
        out.on('message', (data, binary) => client.send(data, { binary }));
        client.on('close', () => out.close());
        out.on('close', () => client.close());
      }),
    );
  });
  return server;
}

/**
 * Runs `drive` for `seconds` against `target`, with the CPU time its process and the upstream's
 * (`upstream`, unless it is the target) spent meanwhile.
 */
async function load(target, seconds, drive, upstream) {
  const watched = upstream === target ? undefined : upstream;
  const before = await cpuMs(target);
  const upstreamBefore = watched === undefined ? 0 : await cpuMs(watched);
  const run = await drive(target, seconds);
  const spent = (await cpuMs(target)) - before;
  const upstreamSpent = watched === undefined ? spent : (await cpuMs(watched)) - upstreamBefore;
  return { ...run, cpuMs: spent, upstreamCpuMs: upstreamSpent };
}

/** autocannon, GET `/weather/today` with `headers`. */
function http(headers, prefix = '') {
  return async (target, seconds) => {
    const result = await autocannon({
      url: `${target.url}${prefix}/weather/today`,
      connections: CONNECTIONS,
      duration: seconds,
      headers,
    });
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`${target.role}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    return {
      requests: result.requests.total,
      seconds: result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
    };
  };
}

/** The count, time and p50/p99 (ms) of calls timed by `latencies`. */
function tally(latencies, startedAt) {
  const sorted = latencies.sort((x, y) => x - y);
  const at = (q) => Number((sorted[Math.floor(sorted.length * q)] ?? 0).toFixed(2));
  return {
    requests: sorted.length,
    seconds: (performance.now() - startedAt) / 1000,
    p50: at(0.5),
    p99: at(0.99),
  };
}

/** Unary gRPC calls, CONNECTIONS in flight on one grpc-js client, with `metadata`. */
function grpcCalls(metadata) {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
  return async (target, seconds) => {
    const client = new Client(new URL(target.url).host, grpc.credentials.createInsecure());
    const latencies = [];
    const startedAt = performance.now();
    const until = startedAt + seconds * 1000;
    const call = () =>
      new Promise((resolve, reject) => {
        const sent = performance.now();
        client.Say(ECHO_MESSAGE, metadata, (error) => {
          if (error) reject(new Error(`${target.role}: ${error.code} ${error.details}`));
          else {
            latencies.push(performance.now() - sent);
            resolve();
          }
        });
      });
    const loop = async () => {
      while (performance.now() < until) await call();
    };
    try {
      await Promise.all(Array.from({ length: CONNECTIONS }, loop));
    } finally {
      client.close();
    }
    return tally(latencies, startedAt);
  };
}

/** CONNECTIONS WebSockets to `path`, each sending a message and waiting for its echo. */
function socketEchoes(path, headers) {
  return async (target, seconds) => {
    const sockets = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        () =>
          new Promise((resolve, reject) => {
            const socket = new WebSocket(`${target.url.replace('http', 'ws')}${path}`, { headers });
            socket.once('open', () => resolve(socket));
            socket.once('unexpected-response', (_req, res) =>
              reject(new Error(`${target.role}: upgrade answered ${res.statusCode}`)),
            );
            socket.once('error', reject);
          }),
      ),
    );
    const latencies = [];
    const startedAt = performance.now();
    const until = startedAt + seconds * 1000;
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise((resolve, reject) => {
            let sent = 0;
            const next = () => {
              if (performance.now() >= until) return resolve();
              sent = performance.now();
              socket.send(ECHO_MESSAGE);
            };
            socket.on('message', () => {
              latencies.push(performance.now() - sent);
              next();
            });
            socket.once('close', (code, reason) =>
              reject(new Error(`${target.role}: socket closed ${code} ${reason}`)),
            );
            next();
          }),
      ),
    );
    const result = tally(latencies, startedAt);
    for (const socket of sockets) {
      socket.removeAllListeners('close');
      socket.close();
    }
    return result;
  };
}

function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Warms each target up, then alternates them in ROUNDS short rounds; prints a line each and
 * returns their summaries in order. `upstream` is the process every target ends at: its CPU time
 * per request is summed too (the headers a proxy adds cost the upstream as well).
 */
async function compare(targets, unit, upstream) {
  for (const { target, drive } of targets) await load(target, 1, drive, upstream);
  const rounds = targets.map(() => []);
  // Every other round runs the targets in reverse order, so that none is always the one after a
  // given other (an A/A run of two identical gateways read 1.10 with one fixed order).
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = [...targets.keys()];
    if (round % 2 === 1) order.reverse();
    for (const index of order)
      rounds[index].push(
        await load(targets[index].target, ROUND_SECONDS, targets[index].drive, upstream),
      );
  }
  const summary = rounds.map((runs, index) => {
    const requests = runs.reduce((sum, run) => sum + run.requests, 0);
    return {
      label: targets[index].label,
      rps: requests / runs.reduce((sum, run) => sum + run.seconds, 0),
      perCpuSecond: requests / (runs.reduce((sum, run) => sum + run.cpuMs, 0) / 1000),
      upstreamCpuUs: (runs.reduce((sum, run) => sum + run.upstreamCpuMs, 0) * 1000) / requests,
      p50: median(runs.map((run) => run.p50)),
      p99: median(runs.map((run) => run.p99)),
    };
  });
  for (const s of summary) {
    console.error(
      `${s.label.padEnd(26)} ${Math.round(s.rps).toString().padStart(7)} ${unit}/s  ${Math.round(s.perCpuSecond).toString().padStart(7)} ${unit}/CPU-s  p50 ${s.p50} ms  p99 ${s.p99} ms  upstream ${s.upstreamCpuUs.toFixed(1)} µs CPU each`,
    );
  }
  return summary;
}

/** The JSON line of a paid target `paid` against the plain proxy `plain`. */
function ratioLine(name, plain, paid, extra = {}) {
  const ratio = Number((paid.rps / plain.rps).toFixed(3));
  return JSON.stringify({
    name,
    value: ratio,
    unit: 'ratio',
    baseline: Math.round(plain.rps),
    ratio,
    p99_added_ms: Number((paid.p99 - plain.p99).toFixed(2)),
    ...extra,
  });
}

/** An L402 credential for the 402 at `url` (a GET), paid by the dev network's agent wallet. */
async function buyCredential(network, url) {
  const challenge = await fetch(url);
  const header = challenge.headers.get('www-authenticate');
  return (await payL402(header, network.backend('agent'))).authorization;
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollway-bench-gateway-'));
  const network = createDevNetwork({ path: join(dataDir, 'dev-lightning.sqlite') });
  const shop = network.openWallet('shop');
  network.openWallet('agent');
  const devServer = await createDevServer({ network });
  const lightning = `dev+${devServer.url}?wallet=shop&token=${shop.token}`;
  const children = [];
  const spawn = async (role, options) => {
    const started = await startRole(import.meta.url, role, options);
    children.push(started);
    return started;
  };
  try {
    const upstream = await spawn('upstream', {});
    const proxy = await spawn('proxy', { upstream: upstream.url });
    const gateway = await spawn('gateway', {
      upstream: upstream.url,
      dataDir: join(dataDir, 'gateway'),
      lightning,
      quiet: true,
    });
    const grpcUpstream = await spawn('grpc-upstream', {});
    const grpcProxy = await spawn('grpc-proxy', { upstream: grpcUpstream.url });
    const wsUpstream = await spawn('ws-upstream', {});
    const wsProxy = await spawn('ws-proxy', { upstream: wsUpstream.url });
    const reach = await spawn('gateway', {
      dataDir: join(dataDir, 'gateway-reach'),
      lightning,
      h2c: true,
      services: [
        { name: 'echo', path: '/bench.Echo/', upstream: grpcUpstream.url, price: '1 sat' },
        { name: 'socket', path: '/socket', upstream: wsUpstream.url, price: '1 sat' },
        {
          name: 'metered',
          path: '/metered',
          upstream: wsUpstream.url,
          price: '1 sat',
          balance: '100000 sat',
          websocket: { perMessage: '1 msat', notice: false },
        },
      ],
    });

    const base =
      process.env.BASE === undefined
        ? undefined
        : await spawn('gateway', {
            root: process.env.BASE,
            upstream: upstream.url,
            dataDir: join(dataDir, 'gateway-base'),
            lightning,
          });
    const authorization = await buyCredential(network, `${gateway.url}/weather/today`);
    const metadata = new grpc.Metadata();
    metadata.set('authorization', await buyCredential(network, `${reach.url}/bench.Echo/Say`));
    const socketCredential = await buyCredential(network, `${reach.url}/socket`);
    const meteredCredential = await buyCredential(network, `${reach.url}/metered`);

    const [, grpcPlain, grpcPaid] = await compare(
      [
        { target: grpcUpstream, label: 'gRPC a upstream', drive: grpcCalls(new grpc.Metadata()) },
        { target: grpcProxy, label: 'gRPC b proxy', drive: grpcCalls(new grpc.Metadata()) },
        { target: reach, label: 'gRPC c gateway, paid', drive: grpcCalls(metadata) },
      ],
      'calls',
      grpcUpstream,
    );
    console.error(
      `gRPC c/b ${(grpcPaid.rps / grpcPlain.rps).toFixed(3)} (per CPU-second ${(grpcPaid.perCpuSecond / grpcPlain.perCpuSecond).toFixed(3)}), p99 added ${(grpcPaid.p99 - grpcPlain.p99).toFixed(2)} ms`,
    );
    const [, wsPlain, wsPaid, wsMetered] = await compare(
      [
        { target: wsUpstream, label: 'WS a upstream', drive: socketEchoes('/socket', {}) },
        { target: wsProxy, label: 'WS b relay', drive: socketEchoes('/socket', {}) },
        {
          target: reach,
          label: 'WS c gateway, paid',
          drive: socketEchoes('/socket', { authorization: socketCredential }),
        },
        {
          target: reach,
          label: 'WS d gateway, per message',
          drive: socketEchoes('/metered', { authorization: meteredCredential }),
        },
      ],
      'msgs',
      wsUpstream,
    );
    console.error(
      `WS c/b ${(wsPaid.rps / wsPlain.rps).toFixed(3)}, d/b ${(wsMetered.rps / wsPlain.rps).toFixed(3)}, p99 added by c ${(wsPaid.p99 - wsPlain.p99).toFixed(2)} ms, by d ${(wsMetered.p99 - wsPlain.p99).toFixed(2)} ms`,
    );

    const baseTargets =
      base === undefined
        ? []
        : [
            {
              target: base,
              label: 'c base, paid',
              drive: http({
                authorization: await buyCredential(network, `${base.url}/weather/today`),
              }),
            },
          ];
    const quietCredential = await buyCredential(network, `${gateway.url}/quiet/weather/today`);
    const [a, b, c, d, cBase] = await compare(
      [
        { target: upstream, label: 'a upstream', drive: http({}) },
        { target: proxy, label: 'b proxy', drive: http({}) },
        { target: gateway, label: 'c gateway, paid', drive: http({ authorization }) },
        {
          target: gateway,
          label: 'd gateway, paid, tells nothing',
          drive: http({ authorization: quietCredential }, '/quiet'),
        },
        ...baseTargets,
      ],
      'req',
      upstream,
    );
    const paired =
      cBase === undefined
        ? {}
        : {
            base_ratio: Number((cBase.rps / b.rps).toFixed(3)),
            cpu_vs_base: Number((cBase.perCpuSecond / c.perCpuSecond).toFixed(3)),
          };
    if (cBase !== undefined) {
      console.error(
        `base: c/b ${paired.base_ratio}; CPU per request, this build over the base: ${paired.cpu_vs_base}`,
      );
    }
    const ratio = c.rps / b.rps;
    console.error(
      `c/b ${ratio.toFixed(3)} (per CPU-second ${(c.perCpuSecond / b.perCpuSecond).toFixed(3)}), c/a ${(c.rps / a.rps).toFixed(3)}, p99 added by c over b ${c.p99 - b.p99} ms; telling nothing d/b ${(d.rps / b.rps).toFixed(3)} (per CPU-second ${(d.perCpuSecond / b.perCpuSecond).toFixed(3)}); the upstream's CPU per request behind c and d over behind b ${(c.upstreamCpuUs / b.upstreamCpuUs).toFixed(3)} and ${(d.upstreamCpuUs / b.upstreamCpuUs).toFixed(3)}`,
    );
    console.log(ratioLine('gateway_grpc_paid_vs_proxy', grpcPlain, grpcPaid));
    console.log(
      ratioLine('gateway_websocket_paid_vs_proxy', wsPlain, wsPaid, {
        per_message_ratio: Number((wsMetered.rps / wsPlain.rps).toFixed(3)),
      }),
    );
    console.log(
      JSON.stringify({
        name: 'gateway_paid_vs_proxy',
        value: Number(ratio.toFixed(3)),
        unit: 'ratio',
        baseline: Math.round(b.rps),
        ratio: Number(ratio.toFixed(3)),
        p99_added_ms: c.p99 - b.p99,
        quiet_ratio: Number((d.rps / b.rps).toFixed(3)),
        cpu_ratio: Number((c.perCpuSecond / b.perCpuSecond).toFixed(3)),
        quiet_cpu_ratio: Number((d.perCpuSecond / b.perCpuSecond).toFixed(3)),
        upstream_cpu_ratio: Number((c.upstreamCpuUs / b.upstreamCpuUs).toFixed(3)),
        ...paired,
      }),
    );
  } finally {
    for (const target of children) {
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
