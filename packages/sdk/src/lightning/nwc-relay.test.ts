import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { type NostrRelayDouble, startNostrRelay } from '../../test/doubles/nostr-relay.js';
import { isTollwayError } from '../errors.js';
import { createRelayClient } from './nwc-relay.js';

const key = generateSecretKey();
const note = (content: string) =>
  finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content }, key);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A relay that answers every REQ with junk, a forged event, a good event and EOSE, and refuses events. */
async function startMisbehavingRelay(): Promise<{ url: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket: WebSocket) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as [string, string, ...unknown[]];
      if (frame[0] === 'EVENT') {
        const event = frame[1] as unknown as { id: string };
        socket.send(JSON.stringify(['OK', event.id, false, 'blocked: not today']));
        return;
      }
      if (frame[0] !== 'REQ') return;
      const id = frame[1];
      if (JSON.stringify(frame[2]).includes('"kinds":[7]')) {
        socket.send(JSON.stringify(['CLOSED', id, 'error: too many subscriptions']));
        return;
      }
      const forged = { ...note('forged'), content: 'tampered' };
      for (const junk of [
        'not json',
        '{"a":1}',
        '["EVENT"]',
        JSON.stringify(['EVENT', id, { id: 1 }]),
      ]) {
        socket.send(junk);
      }
      socket.send(JSON.stringify(['EVENT', id, forged]));
      socket.send(JSON.stringify(['EVENT', 'someone-else', note('not yours')]));
      socket.send(JSON.stringify(['EVENT', id, note('genuine')]));
      socket.send(JSON.stringify(['EOSE', id]));
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('relay client', () => {
  let relay: NostrRelayDouble;
  beforeAll(async () => {
    relay = await startNostrRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('reports an unreachable relay as backend_unavailable', async () => {
    const client = createRelayClient({ urls: ['ws://127.0.0.1:1'], connectTimeoutMs: 1_000 });
    const sub = client.subscribe({ kinds: [1] }, { onEvent: () => {} });
    expect(isTollwayError(await rejection(sub.ready), 'backend_unavailable')).toBe(true);
    expect(isTollwayError(await rejection(client.publish(note('x'))), 'backend_unavailable')).toBe(
      true,
    );
    await client.close();
  });

  it('fails over to the next relay of the list', async () => {
    const client = createRelayClient({
      urls: ['ws://127.0.0.1:1', relay.url],
      connectTimeoutMs: 1_000,
    });
    await client.publish(note('via the second relay'));
    expect(relay.accepted.some((e) => e.content === 'via the second relay')).toBe(true);
    await client.close();
  });

  it('hands over only signed events of its own subscription, and reports refusals', async () => {
    const bad = await startMisbehavingRelay();
    const client = createRelayClient({ urls: [bad.url], connectTimeoutMs: 1_000 });
    try {
      const received: string[] = [];
      const sub = client.subscribe({ kinds: [1] }, { onEvent: (e) => received.push(e.content) });
      await sub.ready;
      expect(received).toEqual(['genuine']);
      const refused = await rejection(client.publish(note('refused')));
      expect(isTollwayError(refused, 'backend_unavailable')).toBe(true);
      expect((refused as Error).message).toContain('blocked: not today');
      const closed = client.subscribe({ kinds: [7] }, { onEvent: () => {} });
      expect((await rejection(closed.ready)) as Error).toMatchObject({
        code: 'backend_unavailable',
      });
    } finally {
      await client.close();
      await bad.close();
    }
  });

  it('renews its subscriptions after the relay drops the connection', async () => {
    const author = getPublicKey(key);
    const client = createRelayClient({ urls: [relay.url], connectTimeoutMs: 1_000 });
    const publisher = createRelayClient({ urls: [relay.url], connectTimeoutMs: 1_000 });
    try {
      const received: string[] = [];
      let lost = 0;
      const sub = client.subscribe(
        { kinds: [1], authors: [author], limit: 0 },
        { onEvent: (e) => received.push(e.content), onLost: () => (lost += 1) },
      );
      await sub.ready;
      relay.dropAll();
      const deadline = Date.now() + 5_000;
      while (!received.includes('after the drop') && Date.now() < deadline) {
        await publisher.publish(note('after the drop')).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(received).toContain('after the drop');
      expect(lost).toBe(1);
    } finally {
      await client.close();
      await publisher.close();
    }
  });

  it('closes promptly while a handshake hangs', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const client = createRelayClient({
      urls: [`ws://127.0.0.1:${port}`],
      connectTimeoutMs: 30_000,
    });
    const sub = client.subscribe({ kinds: [1] }, { onEvent: () => {} });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await client.close();
    // Far from the 30 s connect timeout it would otherwise wait out.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isTollwayError(await rejection(sub.ready), 'backend_unavailable')).toBe(true);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
});
