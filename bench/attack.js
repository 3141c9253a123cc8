// A bounded attack on a real `tollway serve` process, replaying what an attacker tried (see
// docs/guides/security.md): (1) a flood of unpaid requests from 100 client networks (127.0.N.1 on
// loopback, each its own /24) for 10 s, which costs an invoice per 402; (2) thousands of sockets
// that send nothing and hundreds of slowloris sockets that send one header line a second; (3)
// oversized and malformed input. The gateway runs with its default limits, except a 5 s
// `challengeExpiry` so that the pruning of expired challenge records shows within the run.
//
// Prints what it saw, then one JSON line: requests per second of the flood and how they were
// answered, invoices created, challenge rows in the store after the flood and after expiry, the
// gateway's open sockets at peak and once the timeouts passed, the answers to oversized input, the
// gateway's peak RSS, and whether it still answers health. Not part of `npm test`: about 45 s.
// Imports the built packages: run `npm run build` first.
import { spawn } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import Database from 'better-sqlite3';

const FLOOD_SECONDS = 10;
const FLOOD_NETWORKS = 100;
const IDLE_SOCKETS = 2000;
const SLOWLORIS_SOCKETS = 300;
/** The default `connections.headersTimeout` (10 s), the deadline check (1 s), and a margin. */
const SOCKET_WATCH_MS = 14_000;
const CHALLENGE_EXPIRY_SECONDS = 5;
const ADMIN_TOKEN = 'attack-bench-admin-token-0123456789';
const here = new URL('..', import.meta.url).pathname;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the gateway as an operator would: `tollway serve --config …`; resolves its URL. */
function startGateway(config) {
  const proc = spawn(
    process.execPath,
    [join(here, 'packages/cli/bin/tollway.js'), 'serve', '--config', config],
    {
      env: { ...process.env, TOLLWAY_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    proc.once('exit', (code) => reject(new Error(`tollway serve exited with ${code}: ${out}`)));
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /tollway gateway on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ proc, url: match[1] });
    });
  });
}

/** The gateway's open sockets (listeners, clients, upstream and store connections). */
function openSockets(pid) {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count += 1;
    } catch {
      // The descriptor closed while we looked.
    }
  }
  return count;
}

/** The gateway's peak resident memory, MB (VmHWM). */
function rssPeakMb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('VmHWM:'));
  return Math.round(Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024);
}

function countChallenges(file) {
  const db = new Database(file, { readonly: true });
  try {
    return Number(db.prepare('SELECT count(*) FROM challenges').pluck().get());
  } finally {
    db.close();
  }
}

/**
 * One request through `agent`; resolves its status, also when the gateway answered before the body
 * was sent whole and closed (0 when no answer came).
 */
function get(url, path, agent, headers = {}, body = undefined, method = 'GET') {
  return new Promise((resolve) => {
    let status = 0;
    const req = request(`${url}${path}`, { agent, headers, method }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => resolve(status));
      res.on('error', () => resolve(status));
    });
    req.on('error', () => setTimeout(() => resolve(status), 100));
    req.end(body);
  });
}

/**
 * The status of the answer to `head` followed by `body` on a raw socket: read as soon as it comes,
 * even when the gateway answers before the body is sent whole and closes (0 when none came).
 */
function rawStatus(url, head, body) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let text = '';
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(head);
      socket.write(body);
    });
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on('close', () => resolve(0));
  });
}

/** Unpaid requests from `FLOOD_NETWORKS` /24 networks, one keep-alive connection each. */
async function flood(url) {
  const statuses = {};
  let requests = 0;
  const started = performance.now();
  const until = started + FLOOD_SECONDS * 1000;
  const workers = Array.from({ length: FLOOD_NETWORKS }, async (_, n) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: `127.0.${n + 1}.1` });
    while (performance.now() < until) {
      const status = await get(url, '/api/item', agent);
      statuses[status] = (statuses[status] ?? 0) + 1;
      requests += 1;
    }
    agent.destroy();
  });
  await Promise.all(workers);
  const seconds = (performance.now() - started) / 1000;
  return { requests, requestsPerSecond: Math.round(requests / seconds), statuses };
}

/** Opens idle and slowloris sockets; watches the gateway's sockets until the timeouts cut them. */
async function holdSockets(url, pid) {
  const { hostname, port } = new URL(url);
  const baseline = openSockets(pid);
  /** How long each socket lived, from connected to closed by the gateway, ms. */
  const lifetimes = [];
  const started = performance.now();
  const timers = [];
  const open = (slow) =>
    new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      let connectedAt = 0;
      socket.on('error', () => {});
      // Read what the gateway sends (a 408 problem), so that its closing is seen.
      socket.resume();
      socket.on('close', () => lifetimes.push(performance.now() - connectedAt));
      socket.on('connect', () => {
        connectedAt = performance.now();
        if (slow) {
          socket.write(`GET /api/item HTTP/1.1\r\nHost: ${hostname}\r\n`);
          let line = 0;
          const timer = setInterval(() => {
            if (!socket.destroyed) socket.write(`X-Slow-${line++}: 1\r\n`);
          }, 1000);
          timers.push(timer);
          socket.on('close', () => clearInterval(timer));
        }
        resolve(socket);
      });
    });
  const sockets = [];
  for (let i = 0; i < IDLE_SOCKETS; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: 100 }, () => open(false)))));
  }
  sockets.push(...(await Promise.all(Array.from({ length: SLOWLORIS_SOCKETS }, () => open(true)))));
  let peak = 0;
  while (performance.now() - started < SOCKET_WATCH_MS) {
    peak = Math.max(peak, openSockets(pid));
    await sleep(250);
  }
  const stillOpen = sockets.length - lifetimes.length;
  for (const timer of timers) clearInterval(timer);
  for (const socket of sockets) socket.destroy();
  return {
    opened: sockets.length,
    gatewaySocketsBefore: baseline,
    gatewaySocketsPeak: peak,
    gatewaySocketsAfter: openSockets(pid),
    closedByGateway: lifetimes.length,
    longestLifetimeMs: Math.round(Math.max(0, ...lifetimes)),
    stillOpen,
    watchedMs: SOCKET_WATCH_MS,
  };
}

/** Oversized and malformed input; each answer's status. */
async function oversized(url) {
  const agent = new Agent({ keepAlive: false });
  const mcp = { 'content-type': 'application/json' };
  const call = (extra) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'search', ...extra },
    });
  const cases = {
    authorization1MB: () =>
      get(url, '/api/item', agent, { authorization: `L402 ${'a'.repeat(1_000_000)}` }),
    headers3000: () =>
      get(
        url,
        '/api/item',
        agent,
        Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`x-h${i}`, '1'])),
      ),
    jsonBody10MB: () => {
      const body = call({ arguments: { text: 'a'.repeat(10_000_000) } });
      const head = `POST /mcp HTTP/1.1\r\nHost: ${new URL(url).host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
      return rawStatus(url, head, body);
    },
    jsonDepth100k: () =>
      get(url, '/mcp', agent, mcp, `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'POST'),
    duplicateKeys50k: () =>
      get(
        url,
        '/mcp',
        agent,
        mcp,
        `{${Array.from({ length: 50_000 }, () => '"k":1').join(',')}}`,
        'POST',
      ),
    dotSegments: () => get(url, '/api/%252e%252e/admin', agent),
  };
  const answers = {};
  for (const [name, run] of Object.entries(cases)) answers[name] = await run();
  agent.destroy();
  return answers;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-attack-'));
  const network = createDevNetwork({ path: join(dir, 'dev-lightning.sqlite') });
  const shop = network.openWallet('shop');
  const devServer = await createDevServer({ network });
  const upstream = createServer((_req, res) => res.end('{"ok":true}'));
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  const config = join(dir, 'tollway.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'gateway'),
      lightning: `dev+${devServer.url}?wallet=shop&token=${shop.token}`,
      admin: { token: ADMIN_TOKEN },
      paywall: { challengeExpiry: CHALLENGE_EXPIRY_SECONDS },
      services: [
        { name: 'api', path: '/api', upstream: upstreamUrl, price: '1 sat' },
        { name: 'tools', path: '/mcp', upstream: upstreamUrl, mcp: { tools: { search: '5 sat' } } },
      ],
    }),
  );
  const gateway = await startGateway(config);
  const pid = gateway.proc.pid;
  try {
    console.error('flood …');
    const floodResult = await flood(gateway.url);
    await sleep(1500);
    const store = join(dir, 'gateway', 'tollway.sqlite');
    const rowsAfterFlood = countChallenges(store);
    console.error('waiting for the challenges to expire …');
    await sleep(CHALLENGE_EXPIRY_SECONDS * 1000 + 1000);
    await get(gateway.url, '/api/item', new Agent({ localAddress: '127.0.200.1' }));
    await sleep(1500);
    const rowsAfterExpiry = countChallenges(store);
    console.error('idle and slowloris sockets …');
    const sockets = await holdSockets(gateway.url, pid);
    console.error('oversized input …');
    const oversizedAnswers = await oversized(gateway.url);
    const health = await fetch(`${gateway.url}/_tollway/health`);
    const result = {
      name: 'attack',
      flood: {
        seconds: FLOOD_SECONDS,
        networks: FLOOD_NETWORKS,
        ...floodResult,
        invoices: floodResult.statuses[402] ?? 0,
      },
      store: { challengeRowsAfterFlood: rowsAfterFlood, challengeRowsAfterExpiry: rowsAfterExpiry },
      sockets: { idle: IDLE_SOCKETS, slowloris: SLOWLORIS_SOCKETS, ...sockets },
      oversized: oversizedAnswers,
      rssPeakMb: rssPeakMb(pid),
      healthyAfter: health.status === 200,
    };
    console.error(JSON.stringify(result, null, 2));
    console.log(JSON.stringify(result));
  } finally {
    gateway.proc.removeAllListeners('exit');
    gateway.proc.kill('SIGTERM');
    await new Promise((resolve) => gateway.proc.once('exit', resolve));
    upstream.closeAllConnections();
    upstream.close();
    await devServer.close();
    await network.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
