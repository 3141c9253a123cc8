/**
 * A gRPC call that ended both ways is not reset upstream. nghttp2 (Node's HTTP/2, so grpc-js
 * servers) counts a peer's stream resets among its "glitches" and, past a burst of a thousand,
 * sends GOAWAY with INTERNAL_ERROR, failing every call on the connection: a gateway that cancelled
 * each finished call (its stream not yet marked closed) was told to go away after about a
 * thousand calls (`bench/gateway.js`'s gRPC phase failed that way). The upstream here is a raw
 * `node:http2` server answering gRPC unary calls as grpc-js does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };
/** More calls than nghttp2's burst of glitches (1000) on one connection. */
const CALLS = 1500;
const IN_FLIGHT = 10;

const bytes = {
  serialize: (value: Buffer) => value,
  deserialize: (value: Buffer) => value,
};
/** A gRPC unary upstream on `node:http2`, counting the connections it was asked for. */
async function startRawUpstream(): Promise<{
  server: Http2Server;
  url: string;
  sessions: number;
  close(): void;
}> {
  const server = createServer();
  const upstream = { server, url: '', sessions: 0, close: () => {} };
  const open = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    upstream.sessions += 1;
    open.add(session);
    session.once('close', () => open.delete(session));
  });
  upstream.close = () => {
    for (const session of open) session.destroy();
    server.close();
  };
  server.on('stream', (stream) => {
    // As grpc-js does: the answer goes once the request's message is in, before its end is read.
    stream.once('data', () => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x6f, 0x6b]));
      stream.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  upstream.url = `http://127.0.0.1:${port}`;
  return upstream;
}

describe('gRPC upstream streams', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-grpc-resets-'));
  let network: DevNetwork;
  let upstream: Awaited<ReturnType<typeof startRawUpstream>>;
  let gateway: Gateway;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    upstream = await startRawUpstream();
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        h2c: true,
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        services: [
          {
            name: 'raw',
            path: '/test.Raw/',
            upstream: upstream.url,
            price: '1 sat',
            allowlist: ['/test.Raw/'],
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
  });

  afterAll(async () => {
    await gateway?.close();
    upstream?.close();
    network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves more calls than the upstream takes resets on one connection', async () => {
    const client = new grpc.Client(
      gateway.url.replace('http://', ''),
      grpc.credentials.createInsecure(),
    );
    const say = () =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          '/test.Raw/Say',
          bytes.serialize,
          bytes.deserialize,
          Buffer.from('hi'),
          (error, value) => (error || value === undefined ? reject(error) : resolve(value)),
        ),
      );
    try {
      for (let sent = 0; sent < CALLS; sent += IN_FLIGHT) {
        const answers = await Promise.all(Array.from({ length: IN_FLIGHT }, say));
        for (const answer of answers) expect(answer.toString()).toBe('ok');
      }
    } finally {
      client.close();
    }
    expect(upstream.sessions).toBe(1);
  });
});
