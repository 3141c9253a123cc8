import { createServer, type ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  type AdapterHarness,
  describeConformance,
  describePostgresConcurrency,
  describeSqliteConcurrency,
  listen,
  send,
  toJson,
} from '../../test/adapters/conformance.js';
import { describeTracing } from '../../test/adapters/tracing.js';
import type { PaywallRequest } from '../server/types.js';
import { createPaywallRequest, type PaidRequest, withPaywall } from './node.js';

/** Answers `{ payment, body }` with the route's status. */
function echo(status: () => number = () => 200) {
  return async (req: PaidRequest, res: ServerResponse): Promise<void> => {
    let text = '';
    for await (const chunk of req) text += chunk;
    res.statusCode = status();
    res.setHeader('Content-Type', 'application/json');
    res.end(toJson({ payment: req.payment, body: text === '' ? undefined : JSON.parse(text) }));
  };
}

/** A handler that streams: `first`, then (after `gate`) `last`. */
function streaming(gate: () => Promise<void>) {
  return async (_req: PaidRequest, res: ServerResponse): Promise<void> => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('first\n');
    await gate();
    res.end('last\n');
  };
}

/** A handler that reads the body, then answers `chunks` as an event stream, one write each. */
function chunked(chunks: readonly string[]) {
  return async (req: PaidRequest, res: ServerResponse): Promise<void> => {
    for await (const _chunk of req);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    for (const chunk of chunks) res.write(chunk);
    res.end();
  };
}

const harness: AdapterHarness = {
  name: 'node',
  serve(paywall, routes, { onError }) {
    const handlers = new Map(
      routes.map(({ method, path, route, stream, status, chunks }) => [
        `${method} ${path}`,
        withPaywall(
          paywall,
          route,
          chunks !== undefined
            ? chunked(chunks)
            : stream === undefined
              ? echo(status)
              : streaming(stream),
          { onError },
        ),
      ]),
    );
    return listen(
      createServer((req, res) => {
        const handler = handlers.get(`${req.method} ${req.url?.split('?')[0]}`);
        if (handler === undefined) res.writeHead(404).end();
        else void handler(req, res);
      }),
    );
  },
};

describeConformance(harness);
describeTracing(harness);
describeSqliteConcurrency(harness);
await describePostgresConcurrency(harness);

/** Serves one handler that answers with the translated request. */
async function translating(options: Parameters<typeof createPaywallRequest>[1]) {
  return listen(
    createServer(async (req, res) => {
      const request: PaywallRequest = createPaywallRequest(req, options);
      const body = await request.jsonBody?.().catch((error: Error) => `error: ${error.message}`);
      let rest = '';
      for await (const chunk of req) rest += chunk;
      res.end(
        toJson({
          method: request.method,
          url: request.url,
          clientIp: request.clientIp,
          authorization: request.authorization,
          custom: request.headers.get('x-custom'),
          body,
          rest,
        }),
      );
    }),
  );
}

describe('node adapter translation', () => {
  it('keeps the path and query, every header and every Authorization line', async () => {
    const app = await translating({});
    try {
      const response = await send(`${app.url}/a/b?c=1&d=%20`, {
        method: 'POST',
        headers: [
          ['X-Custom', 'one'],
          ['X-Custom', 'two'],
          ['Authorization', 'L402 first'],
          ['Authorization', 'Bearer second'],
        ],
        body: '{"n":1}',
      });
      expect(response.json()).toEqual({
        method: 'POST',
        url: '/a/b?c=1&d=%20',
        clientIp: '127.0.0.1',
        authorization: ['L402 first', 'Bearer second'],
        custom: 'one, two',
        body: { n: 1 },
        rest: '{"n":1}',
      });
    } finally {
      await app.close();
    }
  });

  it('reads X-Forwarded-For only as trustProxy says', async () => {
    const headers: Array<[string, string]> = [['X-Forwarded-For', '198.51.100.1, 203.0.113.9']];
    const seen: unknown[] = [];
    for (const trustProxy of [false, true, 1, 2, 5]) {
      const app = await translating({ trustProxy });
      seen.push((await send(app.url, { headers })).json().clientIp);
      await app.close();
    }
    expect(seen).toEqual([
      '127.0.0.1',
      '198.51.100.1',
      '203.0.113.9',
      '198.51.100.1',
      '198.51.100.1',
    ]);
  });

  it('refuses a body over bodyLimit, with or without Content-Length, and reads it lazily', async () => {
    const app = await translating({ bodyLimit: 16 });
    const big = JSON.stringify({ n: 'x'.repeat(64) });
    try {
      const declared = await send(app.url, { method: 'POST', body: big });
      expect(declared.json().body).toBe('error: the request body exceeds 16 bytes');
      const streamed = await send(app.url, {
        method: 'POST',
        headers: [['Transfer-Encoding', 'chunked']],
        body: big,
      });
      expect(streamed.json().body).toBe('error: the request body exceeds 16 bytes');
      const small = await send(app.url, {
        method: 'POST',
        headers: [['Transfer-Encoding', 'chunked']],
        body: '{"n":1}',
      });
      expect(small.json()).toMatchObject({ body: { n: 1 }, rest: '{"n":1}' });
      const empty = await send(app.url, { method: 'POST', body: '' });
      expect(empty.json()).toMatchObject({ rest: '' });
      expect(empty.json()).not.toHaveProperty('body');
      const malformed = await send(app.url, { method: 'POST', body: '{"n":' });
      expect(malformed.json()).toMatchObject({
        body: 'error: the request body is not JSON',
        rest: '{"n":',
      });
    } finally {
      await app.close();
    }
  });
});
