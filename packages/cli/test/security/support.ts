/**
 * Real parts for the security suites: a dev Lightning network (a shop wallet for the gateway, an
 * agent wallet that pays), an upstream that records every request it receives, gateways started on
 * loopback from a config object, and a raw socket client that sends bytes no HTTP client would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightningBackend } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { readBody, startUpstream, type Upstream } from '../gateway/support.js';

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** One request as the upstream received it. */
export interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Every header line as sent, names in their original spelling. */
  rawHeaders: string[];
  body: string;
}

/** What a suite shares: the network, the recording upstream, and the gateways it started. */
export interface Harness {
  shop: LightningBackend;
  agent: LightningBackend;
  upstream: Upstream;
  /** The requests the upstream received since the last {@link Harness.reset}. */
  received: Received[];
  /** Starts a gateway on 127.0.0.1:0 with `input` over the defaults (admin token, dev wallet). */
  start(
    input: Record<string, unknown>,
    options?: { env?: Record<string, string> },
  ): Promise<Gateway>;
  /** The data folder of a gateway this harness started. */
  dataDir(gateway: Gateway): string;
  /** Closes the gateways started since the last reset and forgets what the upstream saw. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the shared parts; call `reset` after each test and `close` after the suite.
 *
 * @example
 * ```ts
 * const harness = await createHarness();
 * const gateway = await harness.start({ services: [{ name: 'open', upstream: harness.upstream.url, auth: 'off' }] });
 * ```
 */
export async function createHarness(): Promise<Harness> {
  const network: DevNetwork = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop');
  network.openWallet('agent');
  const received: Received[] = [];
  const upstream = await startUpstream(async (req, res) => {
    const body = (await readBody(req)).toString('utf8');
    received.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: { ...req.headers },
      rawHeaders: [...req.rawHeaders],
      body,
    });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ upstream: true, url: req.url }));
  });
  const started: Array<{ gateway: Gateway; dir: string }> = [];
  const dirs = new WeakMap<Gateway, string>();
  async function reset(): Promise<void> {
    for (const { gateway, dir } of started.splice(0).reverse()) {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    }
    received.length = 0;
  }
  return {
    shop: network.backend('shop'),
    agent: network.backend('agent'),
    upstream,
    received,
    async start(input, options = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'tollway-security-'));
      const env = options.env ?? {};
      const config = parseGatewayConfig(
        {
          listen: '127.0.0.1:0',
          dataDir: dir,
          lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
          admin: { token: ADMIN_TOKEN },
          ...input,
        },
        { env },
      );
      try {
        const gateway = await createGateway({
          config,
          lightning: network.backend('shop'),
          logger: quiet,
          baseDir: dir,
          env,
        });
        started.push({ gateway, dir });
        dirs.set(gateway, dir);
        return gateway;
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    },
    dataDir(gateway) {
      const dir = dirs.get(gateway);
      if (dir === undefined) throw new Error('not a gateway of this harness');
      return dir;
    },
    reset,
    async close() {
      await reset();
      await upstream.close();
      await network.close();
    },
  };
}

/** An answer read off a raw socket, or how the connection ended without one. */
export interface RawAnswer {
  /** The status of the first response, or undefined when the connection ended without one. */
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent. */
  text: string;
  /** How long until the server closed the connection, ms; undefined when the wait ran out first. */
  closedAfterMs: number | undefined;
}

/**
 * Sends `bytes` over a new TCP connection to the gateway at `url` and collects what comes back
 * until the server closes the connection or `waitMs` passes (then the client closes it).
 *
 * @example
 * ```ts
 * const answer = await sendRaw(gateway.url, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
 * ```
 */
export function sendRaw(
  url: string,
  bytes: string | Buffer,
  options: { waitMs?: number; localAddress?: string; onSocket?: (socket: Socket) => void } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const waitMs = options.waitMs ?? 2000;
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const chunks: Buffer[] = [];
    let waitedOut = false;
    const socket = connect({
      host: hostname,
      port: Number(port),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    socket.on('connect', () => {
      if (bytes.length > 0) socket.write(bytes);
      options.onSocket?.(socket);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      waitedOut = true;
      socket.destroy();
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      const closedAfterMs = waitedOut ? undefined : performance.now() - startedAt;
      resolve(parseRawAnswer(Buffer.concat(chunks).toString('latin1'), closedAfterMs));
    });
  });
}

function parseRawAnswer(text: string, closedAfterMs: number | undefined): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (end < 0 || match === null) {
    return { status: undefined, headers: {}, body: '', text, closedAfterMs };
  }
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? Number.NaN);
  const rest = text.slice(end + 4);
  const body = Number.isNaN(length) ? rest : rest.slice(0, length);
  return { status: Number(match[1]), headers, body, text, closedAfterMs };
}

/** An answer read whole. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Sends one request through `node:http` with `path` exactly as given (a URL string would be
 * normalised first: `%2e%2e` and backslashes resolved) and any header, a body on any method too.
 *
 * @example
 * ```ts
 * const answer = await send(gateway.url, '/s/paid/..%2Ffree', { headers: { authorization } });
 * ```
 */
export function send(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname,
        port: Number(port),
        path,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
      },
      (res) => {
        readBody(res).then(
          (body) =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString() }),
          reject,
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
