import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, type Handler, Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import {
  type AdapterHarness,
  describeConformance,
  type Served,
  send,
  toJson,
} from '../../test/adapters/conformance.js';
import { describeTracing } from '../../test/adapters/tracing.js';
import { headerValues } from '../../test/support/paywall.js';
import type { PaywallDecision, PaywallRequest } from '../server/types.js';
import { type HonoPaywallOptions, type PaywallEnv, requirePayment, withPaywall } from './hono.js';

function serveApp(app: Hono<PaywallEnv>): Promise<Served> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      }),
    );
  });
}

type ServedRoute = Parameters<AdapterHarness['serve']>[1][number];

/** The conformance suite's handler for one route, as a Hono handler. */
function conformanceHandler({ method, stream, status, chunks }: ServedRoute): Handler<PaywallEnv> {
  return async (c) => {
    if (chunks !== undefined) {
      await c.req.json();
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
          controller.close();
        },
      });
      return c.body(body, 200, { 'Content-Type': 'text/event-stream' });
    }
    if (stream !== undefined) {
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode('first\n'));
          await stream();
          controller.enqueue(encoder.encode('last\n'));
          controller.close();
        },
      });
      return c.body(body, 200, { 'Content-Type': 'text/plain' });
    }
    const body = method === 'POST' ? await c.req.json() : undefined;
    return c.body(toJson({ payment: c.get('payment'), body }), (status?.() ?? 200) as 200, {
      'Content-Type': 'application/json',
    });
  };
}

/** The conformance suite with the paywall as middleware before the handler, or wrapped around it. */
function harness(form: 'middleware' | 'wrapped'): AdapterHarness {
  return {
    name: form === 'middleware' ? 'hono' : 'hono withPaywall',
    handlerErrorsReachAdapter: form === 'wrapped',
    serve(paywall, routes, { onError }) {
      const app = new Hono<PaywallEnv>();
      for (const served of routes) {
        const { method, path, route } = served;
        const handler = conformanceHandler(served);
        const options = { getConnInfo, onError };
        if (form === 'middleware') {
          app.on(method, path, requirePayment(paywall, route, options), handler);
        } else {
          app.on(method, path, withPaywall(paywall, route, handler, options));
        }
      }
      return serveApp(app);
    },
  };
}

for (const form of ['middleware', 'wrapped'] as const) {
  describeConformance(harness(form));
  describeTracing(harness(form));
}

/** Serves one free route and returns what the engine was given. */
async function translated(options: Partial<HonoPaywallOptions>, init: Parameters<typeof send>[1]) {
  const seen: PaywallRequest[] = [];
  const clientIps: string[] = [];
  // Stands in for the engine: passes when the body reads, refuses (as the engine does) when not.
  // It reads the client address while the request is open, as the engine does.
  const spy = {
    handle: async (request: PaywallRequest): Promise<PaywallDecision> => {
      seen.push(request);
      clientIps.push(request.clientIp);
      try {
        const body = JSON.stringify((await request.jsonBody?.()) ?? null);
        return {
          kind: 'pass',
          payment: { protocol: 'free', service: 'api' },
          headers: [['X-Body', body]],
        };
      } catch (error) {
        const body = JSON.stringify(`error: ${(error as Error).message}`);
        return {
          kind: 'respond',
          response: { status: 400, headers: [['X-Body', body]], body: '' },
        };
      }
    },
  };
  const app = new Hono<PaywallEnv>();
  // A route priced by its body: the adapter hands the engine a body reader for such routes only.
  const route = { service: 'api', readsBody: true } as Parameters<typeof requirePayment>[1];
  app.all('*', requirePayment(spy, route, { getConnInfo, ...options }), async (c) =>
    c.text(c.req.method === 'POST' ? await c.req.text() : ''),
  );
  const served = await serveApp(app);
  try {
    const response = await send(`${served.url}/a?b=1`, init);
    return { request: seen[0], clientIp: clientIps[0], response };
  } finally {
    await served.close();
  }
}

describe('hono adapter specifics', () => {
  it('translates path and query, headers, and the client address per trustProxy', async () => {
    const headers: Array<[string, string]> = [['X-Forwarded-For', '198.51.100.1, 203.0.113.9']];
    const plain = await translated({}, { headers });
    expect(plain.request).toMatchObject({ method: 'GET', url: '/a?b=1' });
    expect(plain.clientIp).toBe('127.0.0.1');
    expect((await translated({ trustProxy: 1 }, { headers })).clientIp).toBe('203.0.113.9');
    expect((await translated({ trustProxy: true }, { headers })).clientIp).toBe('198.51.100.1');
  });

  it("reads node-server's headers as they arrived, and the Request's on other runtimes", async () => {
    const headers: Array<[string, string]> = [
      ['Authorization', 'L402 one'],
      ['X-Tag', 'a'],
      ['authorization', 'L402 two'],
      ['x-tag', 'b'],
    ];
    const onNode = (await translated({}, { headers })).request;
    // Every Authorization line apart, so the engine can refuse conflicting credentials.
    expect(onNode?.authorization).toEqual(['L402 one', 'L402 two']);
    expect(onNode?.headers.get('X-TAG')).toBe('a, b');
    expect(onNode?.headers.has('origin')).toBe(false);

    // Without node-server's bindings (Bun, Deno, workers, app.request): the Web Request's headers.
    const seen: PaywallRequest[] = [];
    const spy = {
      handle: (request: PaywallRequest): PaywallDecision => {
        seen.push(request);
        return { kind: 'pass', payment: { protocol: 'free', service: 'api' }, headers: [] };
      },
    };
    const app = new Hono<PaywallEnv>();
    const route = { service: 'api' } as Parameters<typeof requirePayment>[1];
    app.get(
      '/',
      withPaywall(spy, route, (c) => c.text('ok'), { getConnInfo }),
    );
    const response = await app.request('/', { headers: { 'X-Tag': 'c' } });
    expect(await response.text()).toBe('ok');
    expect(seen[0]?.authorization).toBeUndefined();
    expect(seen[0]?.headers.get('x-tag')).toBe('c');
  });

  it('reads the body up to bodyLimit and leaves it readable', async () => {
    const small = await translated({ bodyLimit: 16 }, { method: 'POST', body: '{"n":1}' });
    expect(headerValues(small.response, 'x-body')).toEqual(['{"n":1}']);
    expect(small.response.body).toBe('{"n":1}');
    const big = JSON.stringify({ n: 'x'.repeat(64) });
    for (const headers of [[], [['Transfer-Encoding', 'chunked']]] as Array<
      Array<[string, string]>
    >) {
      const refused = await translated({ bodyLimit: 16 }, { method: 'POST', body: big, headers });
      expect(headerValues(refused.response, 'x-body')).toEqual([
        '"error: the request body exceeds 16 bytes"',
      ]);
    }
  });

  it("adds the engine's headers to Responses the handler builds itself, immutable ones too", async () => {
    const decision: PaywallDecision = {
      kind: 'pass',
      payment: { protocol: 'free', service: 'api' },
      headers: [
        ['Payment-Receipt', 'receipt'],
        ['Vary', 'Origin'],
      ],
    };
    const spy = { handle: async () => decision };
    // The engine's usual paid answer comes at once, not as a promise: the wrapped form's path.
    const immediate = { handle: () => decision };
    const app = new Hono<PaywallEnv>();
    const route = { service: 'api' } as Parameters<typeof requirePayment>[1];
    const paid = requirePayment(spy, route, { getConnInfo });
    const raw = () => new Response('raw');
    const proxy = (c: Context) => fetch(new URL('/upstream', c.req.url));
    app.get('/', paid, raw);
    // A fetch() response has immutable headers: the adapter copies the response first.
    app.get('/upstream', () => new Response('upstream'));
    app.get('/proxied', paid, proxy);
    app.get('/wrapped', withPaywall(immediate, route, raw, { getConnInfo }));
    app.get('/wrapped/proxied', withPaywall(immediate, route, proxy, { getConnInfo }));
    const served = await serveApp(app);
    try {
      for (const [path, body] of [
        ['/', 'raw'],
        ['/proxied', 'upstream'],
        ['/wrapped', 'raw'],
        ['/wrapped/proxied', 'upstream'],
      ]) {
        const response = await send(`${served.url}${path}`);
        expect(response.body).toBe(body);
        expect(headerValues(response, 'payment-receipt')).toEqual(['receipt']);
        expect(headerValues(response, 'vary')).toEqual(['Origin']);
      }
    } finally {
      await served.close();
    }
  });
});
