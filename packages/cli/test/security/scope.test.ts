// Security of what a token buys and what the upstream is told: a request reaches the upstream only
// as the gateway decided on it. The path the scope was checked on is the path sent (finding 5:
// encoded and double-encoded `..`, and their siblings in other servers' readings); the method the
// scope was checked on is the method the upstream runs (no method-override headers); and headers
// that only the gateway (or a trusted proxy) may set cannot be forged by the client, in any
// spelling (finding 10: `Forwarded`, `X_Tollway_*`).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { payL402 } from '../gateway/support.js';
import { createHarness, type Harness, send, sendRaw } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

/** `/s/paid` is priced and its tokens are scoped to it (GET only); the rest of `/s` is free. */
function scopedServices(): Record<string, unknown> {
  return {
    services: [
      {
        name: 'paid',
        path: '/s/paid',
        upstream: harness.upstream.url,
        price: '5 sat',
        scope: { paths: ['/s/paid'], methods: ['GET'] },
      },
      { name: 'free', path: '/s', upstream: harness.upstream.url, auth: 'off' },
    ],
  };
}

async function buyToken(gateway: Gateway): Promise<string> {
  return payL402(await fetch(`${gateway.url}/s/paid/x`), harness.agent);
}

describe('the path checked is the path sent (finding 5)', () => {
  it('refuses encoded and double-encoded dot segments with 400 invalid_path, token or not', async () => {
    const gateway = await harness.start(scopedServices());
    const authorization = await buyToken(gateway);
    for (const path of [
      '/s/paid/..%2Ffree',
      '/s/paid/%252e%252e/free',
      '/s/paid/%2e%2e/free',
      '/s/paid/.%2E/free',
      '/s/paid/..%5Cfree',
      '/s/paid%2F..%2Ffree',
      '/s/paid/..;/free',
      '/s/paid;x/y',
      '/s/paid%00/y',
      '/s/paid/%zz',
    ]) {
      for (const headers of [{ authorization }, {}]) {
        const answer = await send(gateway.url, path, { headers });
        expect([path, answer.status]).toEqual([path, 400]);
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_path' });
      }
    }
    expect(harness.received).toEqual([]);
  });

  it('refuses backslashes, which some servers read as slashes', async () => {
    const gateway = await harness.start(scopedServices());
    const host = new URL(gateway.url).host;
    for (const path of ['/s/paid\\..\\free', '/s\\paid/x']) {
      const answer = await sendRaw(
        gateway.url,
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      expect([path, answer.status]).toEqual([path, 400]);
    }
    expect(harness.received).toEqual([]);
  });

  it('decides on the canonical path and sends that path: unreserved escapes decoded, slashes merged', async () => {
    const gateway = await harness.start(scopedServices());
    // `%70aid` is `paid` and `//` one slash to most servers: the paid service must price them.
    for (const path of ['/s/%70aid/x', '//s//paid/x']) {
      expect([path, (await send(gateway.url, path)).status]).toEqual([path, 402]);
    }
    const authorization = await buyToken(gateway);
    const paid = await send(gateway.url, `/s/%70aid//x%2a?q=%2e%2e`, {
      headers: { authorization },
    });
    expect(paid.status).toBe(200);
    expect(harness.received.map((request) => request.url)).toEqual(['/s/paid/x%2A?q=%2e%2e']);
  });
});

describe('the method checked is the method run (finding 5)', () => {
  it('drops method-override headers, in every spelling, before the upstream', async () => {
    const gateway = await harness.start(scopedServices());
    const authorization = await buyToken(gateway);
    const answer = await send(gateway.url, `/s/paid/x`, {
      headers: {
        authorization,
        'x-http-method-override': 'DELETE',
        'X-HTTP-Method': 'DELETE',
        'x-method-override': 'DELETE',
        'X-Original-Method': 'DELETE',
      },
    });
    expect(answer.status).toBe(200);
    const sent = harness.received[0]?.headers ?? {};
    expect(Object.keys(sent).filter((name) => name.includes('method'))).toEqual([]);
  });

  it('drops headers that re-target the request (X-Original-URL, X-Rewrite-URL)', async () => {
    const gateway = await harness.start(scopedServices());
    await send(gateway.url, `/s/free`, {
      headers: {
        'x-original-url': '/s/paid/x',
        'x-rewrite-url': '/s/paid/x',
      },
    });
    expect(harness.received).toHaveLength(1);
    expect(harness.received[0]?.headers['x-original-url']).toBeUndefined();
    expect(harness.received[0]?.headers['x-rewrite-url']).toBeUndefined();
  });
});

describe('the client cannot speak for the gateway (finding 10)', () => {
  it('replaces a client Forwarded header, as X-Forwarded-For, unless trustProxy', async () => {
    const gateway = await harness.start(scopedServices());
    await send(gateway.url, `/s/free`, {
      headers: {
        forwarded: 'for=6.6.6.6;proto=https',
        'x-real-ip': '6.6.6.6',
        'true-client-ip': '6.6.6.6',
        'x-forwarded-port': '443',
        'x-forwarded-prefix': '/admin',
      },
    });
    const sent = harness.received[0]?.headers ?? {};
    expect(JSON.stringify(sent)).not.toContain('6.6.6.6');
    expect(sent['x-forwarded-port']).toBeUndefined();
    expect(sent['x-forwarded-prefix']).toBeUndefined();
    expect(sent.forwarded).toBe(`for=127.0.0.1;host="${new URL(gateway.url).host}";proto=http`);
  });

  it('keeps a trusted proxy’s Forwarded and appends its own element', async () => {
    const gateway = await harness.start({ ...scopedServices(), paywall: { trustProxy: 1 } });
    await send(gateway.url, `/s/free`, { headers: { forwarded: 'for=203.0.113.9' } });
    expect(harness.received[0]?.headers.forwarded).toBe(
      `for=203.0.113.9, for=127.0.0.1;host="${new URL(gateway.url).host}";proto=http`,
    );
  });

  it('drops every header whose name holds an underscore (CGI, WSGI, Rack and PHP read _ as -)', async () => {
    const gateway = await harness.start(scopedServices());
    await send(gateway.url, `/s/free`, {
      headers: {
        X_Tollway_Token_Id: 'forged',
        x_tollway_protocol: 'l402',
        X_Forwarded_For: '6.6.6.6',
        'X-Kept': 'yes',
      },
    });
    const names = (harness.received[0]?.rawHeaders ?? []).filter((_, i) => i % 2 === 0);
    expect(names.filter((name) => name.includes('_'))).toEqual([]);
    expect(harness.received[0]?.headers['x-kept']).toBe('yes');
    expect(harness.received[0]?.headers['x-tollway-protocol']).toBe('free');
  });

  it('never lets Connection remove a header the gateway sets', async () => {
    const gateway = await harness.start(scopedServices());
    await send(gateway.url, `/s/free`, {
      headers: {
        connection: 'x-forwarded-for, x-tollway-protocol, forwarded',
      },
    });
    expect(harness.received[0]?.headers).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-tollway-protocol': 'free',
      forwarded: expect.stringContaining('for=127.0.0.1'),
    });
  });
});
