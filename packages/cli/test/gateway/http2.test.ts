/**
 * The gateway's listener over TLS: one port answers HTTP/2 and HTTP/1.1 by ALPN, HTTP/2 requests
 * are proxied to HTTP/1.1 upstreams with their bodies, and gRPC reaches an upstream over TLS
 * (verified with the service's `tls.caFile`). Cleartext HTTP/2 is taken only when `h2c` is on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCert } from '../../../sdk/test/doubles/tls.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { readBody, startUpstream, type Upstream } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

const ping = {
  path: '/test.Ping/Ping',
  requestStream: false,
  responseStream: false,
  requestSerialize: (value: string) => Buffer.from(value),
  requestDeserialize: (bytes: Buffer) => bytes.toString(),
  responseSerialize: (value: string) => Buffer.from(value),
  responseDeserialize: (bytes: Buffer) => bytes.toString(),
};

function h2Request(
  url: string,
  ca: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string; alpn: string | false | undefined }> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { ca });
    session.on('error', reject);
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    stream.on('response', (received) => {
      status = Number(received[':status']);
    });
    readBody(stream as never).then((bytes) => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status, body: bytes.toString(), alpn });
    }, reject);
    if (body !== undefined) stream.end(body);
  });
}

describe('the TLS listener', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-h2-'));
  const cert = createSelfSignedCert();
  let network: DevNetwork;
  let http1: Upstream;
  let grpcServer: grpc.Server;
  let gateway: Gateway;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    writeFileSync(join(dir, 'cert.pem'), cert.certPem);
    writeFileSync(join(dir, 'key.pem'), cert.keyPem);
    http1 = await startUpstream(async (req, res) => {
      const body = await readBody(req);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, body: body.toString() }));
    });
    grpcServer = new grpc.Server();
    grpcServer.addService(
      { Ping: ping },
      {
        Ping: (call: grpc.ServerUnaryCall<string, string>, done: grpc.sendUnaryData<string>) =>
          done(null, `pong ${call.request}`),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [
          { cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) },
        ]),
        (error, bound) => (error === null ? resolve(bound) : reject(error)),
      ),
    );
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') },
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        services: [
          {
            name: 'ping',
            path: '/test.Ping/',
            upstream: `https://127.0.0.1:${port}`,
            tls: { caFile: join(dir, 'cert.pem') },
            auth: 'off',
          },
          { name: 'rest', path: '/', upstream: http1.url, auth: 'off' },
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
    await http1?.close();
    grpcServer?.forceShutdown();
    network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves https:// and proxies an HTTP/2 request, body and all, to an HTTP/1.1 upstream', async () => {
    expect(gateway.url).toMatch(/^https:\/\//);
    const answer = await h2Request(
      gateway.url,
      cert.certPem,
      { ':method': 'POST', ':path': '/echo?x=1', 'content-type': 'text/plain' },
      'over h2',
    );
    expect(answer.alpn).toBe('h2');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ method: 'POST', url: '/echo?x=1', body: 'over h2' });
  });

  it('answers HTTP/1.1 on the same port', async () => {
    const answer = await new Promise<{ status: number; body: string; alpn: unknown }>(
      (resolve, reject) => {
        const options = { ca: cert.certPem, ALPNProtocols: ['http/1.1'] };
        const req = request(`${gateway.url}/plain`, options, (res) => {
          const alpn = (res.socket as { alpnProtocol?: unknown }).alpnProtocol;
          readBody(res).then(
            (body) => resolve({ status: res.statusCode ?? 0, body: body.toString(), alpn }),
            reject,
          );
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(answer.alpn).toBe('http/1.1');
    expect(JSON.parse(answer.body).url).toBe('/plain');
  });

  it('carries gRPC over TLS on both sides', async () => {
    const Client = grpc.makeGenericClientConstructor({ Ping: ping }, 'Ping');
    const client = new Client(
      gateway.url.replace('https://', ''),
      grpc.credentials.createSsl(Buffer.from(cert.certPem)),
    ) as unknown as {
      Ping: (value: string, done: (e: unknown, v: string) => void) => void;
      close(): void;
    };
    const answer = await new Promise<string>((resolve, reject) =>
      client.Ping('tls', (error, value) => (error ? reject(error) : resolve(value))),
    );
    client.close();
    expect(answer).toBe('pong tls');
  });
});

describe('h2c', () => {
  it('is refused in the config together with tls', () => {
    expect(() =>
      parseGatewayConfig(
        {
          lightning: 'dev+http://127.0.0.1:9?wallet=a&token=b',
          h2c: true,
          tls: { certFile: 'c.pem', keyFile: 'k.pem' },
          services: [],
        },
        { env: {} },
      ),
    ).toThrow(/h2c: is cleartext HTTP\/2/);
  });
});
