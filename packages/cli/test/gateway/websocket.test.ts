/**
 * WebSockets through a real gateway: a real `ws` server behind it and real `ws` clients in front.
 * The upgrade is paid; messages, binary frames, subprotocols and close codes pass both ways; a
 * time-bound token closes the socket when it expires; a balance pays per message and per period,
 * exactly, with the client told before it is cut off.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { accountOf, payL402 } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** What the upstream saw of each socket. */
interface Seen {
  protocol: string;
  token: string | undefined;
  closed?: { code: number; reason: string };
}

async function startUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const server: Server = createServer();
  const wss = new WebSocketServer({
    server,
    handleProtocols: (offered) => [...offered][0] ?? false,
  });
  const seen: Seen[] = [];
  wss.on('connection', (socket, req) => {
    const entry: Seen = {
      protocol: socket.protocol,
      token: req.headers['x-tollway-token-id'] as string | undefined,
    };
    seen.push(entry);
    socket.on('message', (data, binary) => {
      if (!binary && String(data) === 'push') {
        for (let i = 0; i < 3; i++) socket.send(`pushed ${i}`);
        return;
      }
      socket.send(binary ? data : `echo ${data}`, { binary });
    });
    socket.on('close', (code, reason) => {
      entry.closed = { code, reason: reason.toString() };
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A client socket and everything it received, until it closed. */
interface Opened {
  socket: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string; at: number }>;
}

function open(url: string, authorization: string, protocols: string[] = []): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers: { authorization } });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(String(data)));
    const closed = new Promise<{ code: number; reason: string; at: number }>((done) =>
      socket.on('close', (code, reason) =>
        done({ code, reason: reason.toString(), at: Date.now() }),
      ),
    );
    socket.once('open', () => resolve({ socket, messages, closed }));
    socket.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: ${res.statusCode}`)),
    );
    socket.once('error', reject);
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('WebSockets through the gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-ws-'));
  let network: DevNetwork;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gateway: Gateway;
  let wsUrl: string;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent');
    upstream = await startUpstream();
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        paywall: { rateLimits: { challenges: false } },
        services: [
          { name: 'chat', path: '/chat', upstream: upstream.url, price: '5 sat', uses: 5 },
          { name: 'brief', path: '/brief', upstream: upstream.url, price: '5 sat', validFor: '2s' },
          {
            name: 'metered',
            path: '/metered',
            upstream: upstream.url,
            price: '1 sat',
            balance: '20 sat',
            websocket: { perMessage: '1 sat', messages: 'client' },
          },
          {
            name: 'timed',
            path: '/timed',
            upstream: upstream.url,
            price: '1 sat',
            balance: '10 sat',
            websocket: { perPeriod: '2 sat', period: '300ms' },
          },
          {
            name: 'down',
            path: '/down',
            upstream: 'http://127.0.0.1:9',
            price: '5 sat',
            uses: 1,
          },
        ],
      },
      { env: {} },
    );
    gateway = await createGateway({
      config,
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
    });
    wsUrl = gateway.url.replace('http://', 'ws://');
  });

  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const buy = async (path: string): Promise<string> =>
    payL402(await fetch(`${gateway.url}${path}`), network.backend('agent'));

  it('answers an unpaid upgrade with the 402 and its challenges', async () => {
    const refused = await new Promise<{ status: number; challenge: string }>((resolve) => {
      const socket = new WebSocket(`${wsUrl}/chat`);
      socket.once('unexpected-response', (_req, res) =>
        resolve({
          status: res.statusCode ?? 0,
          challenge: String(res.headers['www-authenticate']),
        }),
      );
    });
    expect(refused.status).toBe(402);
    expect(refused.challenge).toMatch(/L402 macaroon="/);
  });

  it('proxies a paid socket both ways: text, binary, subprotocol, close code; the upgrade is charged', async () => {
    const authorization = await buy('/chat');
    const client = await open(`${wsUrl}/chat`, authorization, ['v2.chat', 'v1.chat']);
    expect(client.socket.protocol).toBe('v2.chat');
    client.socket.send('hello');
    client.socket.send(Buffer.from([1, 2, 3]));
    client.socket.send('push');
    await waitFor(() => client.messages.length === 5);
    expect(client.messages.slice(0, 1)).toEqual(['echo hello']);
    expect(client.messages.slice(2)).toEqual(['pushed 0', 'pushed 1', 'pushed 2']);
    const last = upstream.seen.at(-1) as Seen;
    expect(last.protocol).toBe('v2.chat');
    expect(last.token).toMatch(/^[0-9a-f]{64}$/);
    client.socket.close(4000, 'bye');
    await client.closed;
    await waitFor(() => last.closed !== undefined);
    expect(last.closed).toEqual({ code: 4000, reason: 'bye' });
    await waitFor(async () => (await gateway.store.getUsage(accountOf(authorization))).uses === 1);
  });

  it('closes the socket with 4402 "payment expired" when the token expires, after telling the client', async () => {
    const authorization = await buy('/brief');
    const client = await open(`${wsUrl}/brief`, authorization);
    const closed = await client.closed;
    expect(closed).toMatchObject({ code: 4402, reason: 'payment expired' });
    const notice = JSON.parse(client.messages[0] ?? '{}');
    expect(notice).toMatchObject({ type: 'tollway.payment', event: 'expiring' });
    // The token's expiry is whole seconds: the socket closed at it, not before, not long after.
    const expiresAt = Date.parse(notice.expiresAt);
    expect(closed.at).toBeGreaterThanOrEqual(expiresAt);
    expect(closed.at - expiresAt).toBeLessThan(1000);
  });

  it('draws each message from the balance, exactly, and closes when it is spent', async () => {
    const authorization = await buy('/metered');
    const client = await open(`${wsUrl}/metered`, authorization);
    for (let i = 0; i < 25; i++) client.socket.send(`m${i}`);
    const closed = await client.closed;
    expect(closed).toMatchObject({ code: 4402, reason: 'balance exhausted' });
    // 20 sat: 1 for the upgrade, 19 messages of 1 sat.
    const echoes = client.messages.filter((message) => message.startsWith('echo '));
    expect(echoes).toEqual(Array.from({ length: 19 }, (_, i) => `echo m${i}`));
    const notices = client.messages.filter((message) => message.startsWith('{'));
    expect(JSON.parse(notices[0] ?? '{}')).toMatchObject({ event: 'balance_low' });
    const account = accountOf(authorization);
    await waitFor(async () => (await gateway.store.getUsage(account)).heldMsat === 0n);
    expect((await gateway.store.getUsage(account)).spentMsat).toBe(20_000n);
  });

  it('charges the messages forwarded when the client leaves early, and no more', async () => {
    const authorization = await buy('/metered');
    const client = await open(`${wsUrl}/metered`, authorization);
    for (let i = 0; i < 3; i++) client.socket.send(`m${i}`);
    await waitFor(() => client.messages.filter((m) => m.startsWith('echo ')).length === 3);
    client.socket.close();
    await client.closed;
    const account = accountOf(authorization);
    await waitFor(async () => (await gateway.store.getUsage(account)).heldMsat === 0n);
    expect((await gateway.store.getUsage(account)).spentMsat).toBe(4_000n);
  });

  it('draws each started period and closes when the next one cannot be paid', async () => {
    const authorization = await buy('/timed');
    const client = await open(`${wsUrl}/timed`, authorization);
    const closed = await client.closed;
    expect(closed).toMatchObject({ code: 4402, reason: 'balance exhausted' });
    const account = accountOf(authorization);
    await waitFor(async () => (await gateway.store.getUsage(account)).heldMsat === 0n);
    // 10 sat: 1 for the upgrade, then four periods of 2 sat; the fifth does not fit.
    expect((await gateway.store.getUsage(account)).spentMsat).toBe(9_000n);
  });

  it('charges nothing when the upstream cannot be reached', async () => {
    const authorization = await buy('/down');
    for (let i = 0; i < 2; i++) {
      await expect(open(`${wsUrl}/down`, authorization)).rejects.toThrow(/502/);
    }
    expect((await gateway.store.getUsage(accountOf(authorization))).uses).toBe(0);
  });
});
