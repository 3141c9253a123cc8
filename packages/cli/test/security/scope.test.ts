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
