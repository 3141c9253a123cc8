// Security of the gateway's HTTP/1.1 listener, spoken to over raw sockets: what Node's parser
// refuses gets a JSON problem body and a stable code too (finding 6); framing the parser lets
// through but that two servers could read differently is refused before anything reaches the
// upstream (request smuggling); and connections that do not send a request in time, or too many
// of them, are closed (finding 7).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { createHarness, type Harness, type RawAnswer, sendRaw } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

function openService(): Record<string, unknown> {
  return { services: [{ name: 'open', upstream: harness.upstream.url, auth: 'off' }] };
}

function hostOf(gateway: Gateway): string {
  return new URL(gateway.url).host;
}

function expectProblem(answer: RawAnswer, status: number, code: string): void {
  expect({ status: answer.status, type: answer.headers['content-type'] }).toEqual({
    status,
    type: 'application/problem+json',
  });
  expect(JSON.parse(answer.body)).toMatchObject({ status, code });
}

describe('what Node refuses is answered with a problem body (finding 6)', () => {
  it('431 request_headers_too_large for a 1 MB Authorization, then closes', async () => {
    const gateway = await harness.start(openService());
    const answer = await sendRaw(
      gateway.url,
      `GET /x HTTP/1.1\r\nHost: ${hostOf(gateway)}\r\nAuthorization: L402 ${'a'.repeat(1_000_000)}\r\n\r\n`,
    );
    expectProblem(answer, 431, 'request_headers_too_large');
    expect(answer.closedAfterMs).toBeDefined();
  });

  it('400 malformed_request for what the parser cannot read', async () => {
    const gateway = await harness.start(openService());
    const host = hostOf(gateway);
    const cases = {
      'CL and TE': `POST /x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      'two Content-Length': `POST /x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
      'space in the target': `GET /a b HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      'bare LF': `GET /x HTTP/1.1\nHost: ${host}\n\n`,
      'space before the colon': `POST /x HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
      'obs-fold': `POST /x HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
      'NUL in a value': `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-A: a\u0000b\r\n\r\n`,
      'bad chunk size': `POST /x HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const answer = await sendRaw(gateway.url, bytes);
      expect([name, answer.status, answer.headers['content-type']]).toEqual([
        name,
        400,
        'application/problem+json',
      ]);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'malformed_request' });
    }
    expect(harness.received).toEqual([]);
  });

  it('400 malformed_request without a Host, with two Hosts, and for CONNECT', async () => {
    const gateway = await harness.start(openService());
    const host = hostOf(gateway);
    for (const bytes of [
      'GET /x HTTP/1.1\r\n\r\n',
      `GET /x HTTP/1.1\r\nHost: ${host}\r\nHost: other.example\r\n\r\n`,
      `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    ]) {
      expectProblem(await sendRaw(gateway.url, bytes), 400, 'malformed_request');
    }
    expect(harness.received).toEqual([]);
  });

  it('routes an absolute-form target by its own authority (RFC 9112 §3.2.2), sent on in origin form', async () => {
    const gateway = await harness.start({
      services: [{ name: 'here', host: '127.0.0.1', upstream: harness.upstream.url, auth: 'off' }],
    });
    const answer = await sendRaw(
      gateway.url,
      `GET http://${hostOf(gateway)}/weather?city=Oslo HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n`,
    );
    expect(answer.status).toBe(200);
    expect(harness.received.map((request) => request.url)).toEqual(['/weather?city=Oslo']);
  });

  it('400 invalid_path for the asterisk form', async () => {
    const gateway = await harness.start(openService());
    const answer = await sendRaw(
      gateway.url,
      `OPTIONS * HTTP/1.1\r\nHost: ${hostOf(gateway)}\r\n\r\n`,
    );
    expectProblem(answer, 400, 'invalid_path');
  });
});

describe('framing two servers could read differently never reaches the upstream', () => {
  it('refuses transfer codings other than a lone chunked, which Node passes to the handler', async () => {
    const gateway = await harness.start(openService());
    const host = hostOf(gateway);
    for (const coding of ['xchunked', 'gzip, chunked', 'identity', 'chunked, chunked']) {
      const answer = await sendRaw(
        gateway.url,
        `POST /x HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: ${coding}\r\n\r\n0\r\n\r\n`,
      );
      expect([coding, answer.status]).toEqual([coding, 400]);
      expect(JSON.parse(answer.body || '{}')).toMatchObject({ code: 'malformed_request' });
    }
    expect(harness.received).toEqual([]);
  });

  it('forwards a body that looks like a request as a body, re-framed, never as a second request', async () => {
    const gateway = await harness.start(openService());
    const host = hostOf(gateway);
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    await sendRaw(
      gateway.url,
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${smuggled.length}\r\nConnection: close\r\n\r\n${smuggled}`,
    );
    const chunk = smuggled.length.toString(16);
    await sendRaw(
      gateway.url,
      `POST /b HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}\r\n${smuggled}\r\n0\r\n\r\n`,
    );
    expect(harness.received.map(({ method, url, body }) => [method, url, body])).toEqual([
      ['POST', '/a', smuggled],
      ['POST', '/b', smuggled],
    ]);
  });
});

describe('connections that send no request in time are closed (finding 7)', () => {
  const limits = {
    connections: { headersTimeout: '1s', requestTimeout: '2s', keepAliveTimeout: '1s' },
  };

  it('closes a connection that sends nothing, and a slowloris, after headersTimeout', async () => {
    const gateway = await harness.start({ ...limits, ...openService() });
    const idle = sendRaw(gateway.url, '', { waitMs: 5000 });
    const lines = [`GET /x HTTP/1.1\r\n`, `Host: ${hostOf(gateway)}\r\n`];
    for (let i = 0; i < 40; i++) lines.push(`X-Slow-${i}: 1\r\n`);
    const slow = sendRawSlowly(gateway.url, lines, 150, 5000);
    const [idleAnswer, slowAnswer] = await Promise.all([idle, slow]);
    expect(idleAnswer.closedAfterMs).toBeLessThan(3000);
    expect(slowAnswer.closedAfterMs).toBeLessThan(3000);
    expectProblem(slowAnswer, 408, 'request_timeout');
    expect(harness.received).toEqual([]);
  });

  it('closes an idle keep-alive connection after keepAliveTimeout', async () => {
    const gateway = await harness.start({ ...limits, ...openService() });
    const answer = await sendRaw(
      gateway.url,
      `GET /x HTTP/1.1\r\nHost: ${hostOf(gateway)}\r\n\r\n`,
      { waitMs: 5000 },
    );
    expect(answer.status).toBe(200);
    expect(answer.closedAfterMs).toBeLessThan(3000);
  });

  it('cuts a request whose body trickles in past requestTimeout', async () => {
    const gateway = await harness.start({ ...limits, ...openService() });
    const lines = [`POST /x HTTP/1.1\r\nHost: ${hostOf(gateway)}\r\nContent-Length: 100\r\n\r\n`];
    for (let i = 0; i < 100; i++) lines.push('a');
    const answer = await sendRawSlowly(gateway.url, lines, 100, 6000);
    expect(answer.closedAfterMs).toBeLessThan(4500);
  });

  it('holds at most connections.max connections; the next is closed at once', async () => {
    const gateway = await harness.start({
      connections: { headersTimeout: '5s', max: 3 },
      ...openService(),
    });
    const held = [1, 2, 3].map(() => sendRaw(gateway.url, '', { waitMs: 1500 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const refused = await sendRaw(gateway.url, `GET /x HTTP/1.1\r\nHost: x\r\n\r\n`, {
      waitMs: 1000,
    });
    expect(refused.status).toBeUndefined();
    expect(refused.closedAfterMs).toBeLessThan(500);
    for (const answer of await Promise.all(held)) expect(answer.closedAfterMs).toBeUndefined();
    expect((await fetch(`${gateway.url}/x`)).status).toBe(200);
  });

  it('refuses limits Node cannot apply', async () => {
    await expect(
      harness.start({ connections: { headersTimeout: '10s', requestTimeout: '5s' }, services: [] }),
    ).rejects.toThrow(/connections\.headersTimeout/);
  });
});

/** Sends `parts` one at a time, `everyMs` apart, on one connection; resolves as {@link sendRaw}. */
function sendRawSlowly(
  url: string,
  parts: readonly string[],
  everyMs: number,
  waitMs: number,
): Promise<RawAnswer> {
  const first = parts[0] ?? '';
  let next = 1;
  return sendRaw(url, first, {
    waitMs,
    onSocket: (socket) => {
      const timer = setInterval(() => {
        if (next >= parts.length || socket.destroyed) {
          clearInterval(timer);
          return;
        }
        socket.write(parts[next] ?? '');
        next += 1;
      }, everyMs);
      socket.once('close', () => clearInterval(timer));
    },
  });
}
