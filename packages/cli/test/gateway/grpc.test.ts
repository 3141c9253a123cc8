/**
 * gRPC through a real gateway: a real `@grpc/grpc-js` server behind it (cleartext HTTP/2), a real
 * `@grpc/grpc-js` client in front (h2c), unary, server-streaming and bidirectional calls paid
 * with L402 in metadata — the Go-style form lnd's `l402.ClientInterceptor` sends (`macaroon` =
 * hex of the macaroon with a `preimage=` caveat) and `Authorization: L402 …` — and an unpaid call
 * answered as that interceptor reads it. What is charged follows the call's outcome.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { addFirstPartyCaveat, encodeMacaroon, parseMacaroon } from '@tollway/sdk/l402';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

interface Message {
  text: string;
  fail?: boolean;
  delayMs?: number;
  count?: number;
  token?: string;
}

const json = {
  serialize: (value: Message) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Message,
};

function method(path: string, requestStream: boolean, responseStream: boolean) {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

/** The test service: unary `Say`, server-streaming `Count`, bidirectional `Chat`. */
const echoService = {
  Say: method('/test.Echo/Say', false, false),
  Count: method('/test.Echo/Count', false, true),
  Chat: method('/test.Echo/Chat', true, true),
} as const;

const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
type Client = InstanceType<typeof EchoClient> & Record<string, (...args: unknown[]) => unknown>;

function tokenOf(call: { metadata: grpc.Metadata }): string {
  return String(call.metadata.get('x-tollway-token-id')[0] ?? '');
}

/** The upstream: a real grpc-js server on cleartext HTTP/2. */
async function startEchoServer(): Promise<{ address: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Say(call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>): void {
      if (call.request.fail === true) {
        callback({ code: grpc.status.FAILED_PRECONDITION, details: 'asked to fail' });
        return;
      }
      const answer = (): void => callback(null, { text: call.request.text, token: tokenOf(call) });
      if (call.request.delayMs === undefined) answer();
      else setTimeout(answer, call.request.delayMs);
    },
    Count(call: grpc.ServerWritableStream<Message, Message>): void {
      const trailer = new grpc.Metadata();
      trailer.set('x-counted', String(call.request.count ?? 0));
      for (let i = 1; i <= (call.request.count ?? 0); i++) call.write({ text: String(i) });
      call.end(trailer);
    },
    Chat(call: grpc.ServerDuplexStream<Message, Message>): void {
      call.on('data', (message: Message) => call.write({ text: `echo ${message.text}` }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    address: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** What lnd's `l402.ClientInterceptor` requires of a payment-required error. */
function isPaymentRequired(error: grpc.ServiceError): boolean {
  return (
    (error.code === grpc.status.INTERNAL || error.code === grpc.status.UNKNOWN) &&
    error.details.toLowerCase().includes('payment required')
  );
}

/** The challenge as lnd's interceptor reads it: its regex, first match over the metadata values. */
function readChallenge(error: grpc.ServiceError): { macaroon: string; invoice: string } {
  const pattern = /(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"/;
  for (const value of error.metadata.get('www-authenticate')) {
    const match = pattern.exec(String(value));
    if (match !== null) return { macaroon: match[2] ?? '', invoice: match[3] ?? '' };
  }
  throw new Error('no challenge in the metadata');
}

function unary(
  client: Client,
  name: string,
  request: Message,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<{ value?: Message; error?: grpc.ServiceError; headers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    const call = client[name]?.(
      request,
      metadata,
      options,
      (error: grpc.ServiceError | null, value: Message) =>
        resolve(
          error === null
            ? { value, ...(headers ? { headers } : {}) }
            : { error, ...(headers ? { headers } : {}) },
        ),
    ) as grpc.ClientUnaryCall;
    call.on('metadata', (received) => {
      headers = received;
    });
  });
}

describe('gRPC through the gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-grpc-'));
  let network: DevNetwork;
  let upstream: Awaited<ReturnType<typeof startEchoServer>>;
  let gateway: Gateway;
  let client: Client;
  let downClient: Client;

  beforeAll(async () => {
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent');
    upstream = await startEchoServer();
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        h2c: true,
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        paywall: { rateLimits: { challenges: false } },
        services: [
          {
            name: 'echo',
            path: '/test.Echo/',
            upstream: upstream.address,
            price: '10 sat',
            grpc: { methods: { '/test.Echo/Count': '20 sat' } },
            uses: 3,
          },
          {
            name: 'down',
            path: '/test.Down/',
            upstream: `http://127.0.0.1:${await freePort()}`,
            price: '10 sat',
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
    const target = gateway.url.replace('http://', '');
    client = new EchoClient(target, grpc.credentials.createInsecure()) as Client;
    const DownClient = grpc.makeGenericClientConstructor(
      { Say: method('/test.Down/Say', false, false) },
      'Down',
    );
    downClient = new DownClient(target, grpc.credentials.createInsecure()) as Client;
  });

  afterAll(async () => {
    client?.close();
    downClient?.close();
    await gateway?.close();
    await upstream?.close();
    network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Pays the challenge of an unpaid call the way lnd's interceptor does: `macaroon` metadata. */
  async function buyToken(
    c: Client,
    name: string,
  ): Promise<{ metadata: grpc.Metadata; macaroon: string; preimage: string }> {
    const unpaid = await unary(c, name, { text: 'hello' });
    expect(unpaid.error).toBeDefined();
    const error = unpaid.error as grpc.ServiceError;
    expect(isPaymentRequired(error)).toBe(true);
    const challenge = readChallenge(error);
    const paid = await network.backend('agent').payInvoice({ paymentRequest: challenge.invoice });
    const withPreimage = addFirstPartyCaveat(
      parseMacaroon(challenge.macaroon),
      `preimage=${paid.preimage}`,
    );
    const metadata = new grpc.Metadata();
    metadata.set('macaroon', Buffer.from(encodeMacaroon(withPreimage)).toString('hex'));
    return { metadata, macaroon: challenge.macaroon, preimage: paid.preimage };
  }

  it('answers an unpaid call as Aperture does: status 13, "payment required", LSAT then L402', async () => {
    const unpaid = await unary(client, 'Say', { text: 'hello' });
    const error = unpaid.error as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INTERNAL);
    expect(error.details).toBe('payment required');
    const challenges = error.metadata.get('www-authenticate').map(String).join(', ');
    expect(challenges).toMatch(/^LSAT macaroon="[^"]+", invoice="lnbcrt[^"]+", L402 macaroon=/);
  });

  it('passes a unary call paid with the macaroon metadata lnd-style clients send', async () => {
    const { metadata } = await buyToken(client, 'Say');
    const paid = await unary(client, 'Say', { text: 'hello' }, metadata);
    expect(paid.error).toBeUndefined();
    expect(paid.value?.text).toBe('hello');
    expect(paid.value?.token).toMatch(/^[0-9a-f]{64}$/);
    expect(paid.headers?.get('tollway-charged')).toEqual(['1 uses']);
  });

  it('accepts Authorization: L402 <macaroon>:<preimage> in metadata too', async () => {
    const { macaroon, preimage } = await buyToken(client, 'Say');
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `L402 ${macaroon}:${preimage}`);
    const paid = await unary(client, 'Say', { text: 'again' }, metadata);
    expect(paid.value?.text).toBe('again');
  });

  it('prices a method of its own: a token for a 10 sat method does not buy a 20 sat one', async () => {
    const { metadata } = await buyToken(client, 'Say');
    const messages: string[] = [];
    const refused = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.Count?.(
        { text: 'x', count: 2 },
        metadata,
      ) as grpc.ClientReadableStream<Message>;
      call.on('data', (message: Message) => messages.push(message.text));
      call.on('error', resolve);
    });
    expect(messages).toEqual([]);
    expect(isPaymentRequired(refused)).toBe(true);
    expect(refused.details).toContain('price_exceeds_token');
  });

  it('streams a server-streaming call and passes its trailers through', async () => {
    const unpaid = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.Count?.({ text: 'x', count: 1 }) as grpc.ClientReadableStream<Message>;
      call.on('data', () => {});
      call.on('error', resolve);
    });
    const challenge = readChallenge(unpaid);
    const paid = await network.backend('agent').payInvoice({ paymentRequest: challenge.invoice });
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `L402 ${challenge.macaroon}:${paid.preimage}`);
    const messages: string[] = [];
    const trailers = await new Promise<grpc.StatusObject>((resolve, reject) => {
      const call = client.Count?.(
        { text: 'x', count: 5 },
        metadata,
      ) as grpc.ClientReadableStream<Message>;
      call.on('data', (message: Message) => messages.push(message.text));
      call.on('status', resolve);
      call.on('error', reject);
    });
    expect(messages).toEqual(['1', '2', '3', '4', '5']);
    expect(trailers.code).toBe(grpc.status.OK);
    expect(trailers.metadata.get('x-counted')).toEqual(['5']);
  });

  it('proxies a bidirectional call both ways', async () => {
    const { metadata } = await buyToken(client, 'Say');
    const call = client.Chat?.(metadata) as grpc.ClientDuplexStream<Message, Message>;
    const received: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (message: Message) => {
        received.push(message.text);
        // Each answer arrives before the next message is sent: both directions are live.
        if (received.length < 3) call.write({ text: String(received.length + 1) });
        else call.end();
      });
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ text: '1' });
    await ended;
    expect(received).toEqual(['echo 1', 'echo 2', 'echo 3']);
  });

  it('charges nothing for a call the upstream ends with an error before any message', async () => {
    const { metadata } = await buyToken(client, 'Say');
    for (let i = 0; i < 4; i++) {
      const failed = await unary(client, 'Say', { text: 'x', fail: true }, metadata);
      expect(failed.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(failed.error?.metadata.get('tollway-charged')).toEqual(['0']);
    }
    // Three uses were bought; four failures took none.
    for (let i = 0; i < 3; i++) {
      const paid = await unary(client, 'Say', { text: `ok ${i}` }, metadata);
      expect(paid.value?.text).toBe(`ok ${i}`);
    }
    const spent = await unary(client, 'Say', { text: 'x' }, metadata);
    expect(isPaymentRequired(spent.error as grpc.ServiceError)).toBe(true);
  });

  it('honours the deadline: the call ends DEADLINE_EXCEEDED, and is not charged', async () => {
    const { metadata } = await buyToken(client, 'Say');
    const late = await unary(client, 'Say', { text: 'x', delayMs: 2000 }, metadata, {
      deadline: Date.now() + 300,
    });
    expect(late.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    for (let i = 0; i < 3; i++) {
      const paid = await unary(client, 'Say', { text: `ok ${i}` }, metadata);
      expect(paid.value?.text).toBe(`ok ${i}`);
    }
  });

  it('charges nothing when the upstream cannot be reached', async () => {
    const { metadata } = await buyToken(downClient, 'Say');
    for (let i = 0; i < 2; i++) {
      const failed = await unary(downClient, 'Say', { text: 'x' }, metadata);
      expect(failed.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(failed.error?.details).toContain('nothing was charged');
      expect(failed.error?.metadata.get('tollway-charged')).toEqual(['0']);
    }
    const account = accountOfMetadata(metadata);
    expect((await gateway.store.getUsage(account)).uses).toBe(0);
  });
});

/** The account (payment hash) of a `macaroon` metadata value. */
function accountOfMetadata(metadata: grpc.Metadata): string {
  const hex = String(metadata.get('macaroon')[0]);
  const macaroon = parseMacaroon(Buffer.from(hex, 'hex').toString('base64'));
  return Buffer.from(macaroon.identifier.subarray(2, 34)).toString('hex');
}
