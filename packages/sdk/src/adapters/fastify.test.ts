import { PassThrough } from 'node:stream';
import Fastify, { type FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import {
  type AdapterHarness,
  describeConformance,
  describeSqliteConcurrency,
  send,
  toJson,
} from '../../test/adapters/conformance.js';
import { describeTracing } from '../../test/adapters/tracing.js';
import { createDevSetup, createMemoryLogger } from '../../test/support/paywall.js';
import { createPaywall } from '../server/paywall.js';
import { createMasterSecret } from '../server/root-keys.js';
import type { PaywallRequest } from '../server/types.js';
import { createMemoryStore } from '../stores/memory.js';
import { paywallPlugin, requirePayment } from './fastify.js';

const echo = async (request: FastifyRequest) =>
  toJson({ payment: request.payment, body: request.body });

const harness: AdapterHarness = {
  name: 'fastify',
  async serve(paywall, routes, { onError }) {
    const app = Fastify();
    await app.register(paywallPlugin);
    for (const { method, path, route, stream, status, chunks } of routes) {
      app.route({
        method,
        url: path,
        preHandler: requirePayment(paywall, route, { onError }),
        handler: async (request, reply) => {
          if (chunks !== undefined) {
            const body = new PassThrough();
            for (const chunk of chunks) body.write(chunk);
            body.end();
            return reply.type('text/event-stream').send(body);
          }
          if (stream === undefined) {
            return reply
              .code(status?.() ?? 200)
              .type('application/json')
              .send(await echo(request));
          }
          const body = new PassThrough();
          body.write('first\n');
          void stream().then(() => body.end('last\n'));
          return reply.type('text/plain').send(body);
        },
      });
    }
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, close: () => app.close() };
  },
};

describeConformance(harness);
describeTracing(harness);
describeSqliteConcurrency(harness);

describe('fastify adapter specifics', () => {
  it("declares request.payment once, and takes the client address from Fastify's trustProxy", async () => {
    const dev = createDevSetup();
    const paywall = createPaywall({
      lightning: dev.shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      logger: createMemoryLogger(),
    });
    const seen: PaywallRequest[] = [];
    const spy = {
      handle: (request: PaywallRequest, route: Parameters<typeof paywall.handle>[1]) => {
        seen.push(request);
        return paywall.handle(request, route);
      },
    };
    const app = Fastify({ trustProxy: true });
    await app.register(paywallPlugin);
    await app.register(paywallPlugin);
    const free = paywall.route({ free: true });
    app.get('/free', { preHandler: requirePayment(spy, free) }, async (request) => ({
      decorated: app.hasRequestDecorator('payment'),
      protocol: request.payment?.protocol,
    }));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const response = await send(`${url}/free?x=1`, {
        headers: [['X-Forwarded-For', '198.51.100.7']],
      });
      expect(response.json()).toEqual({ decorated: true, protocol: 'free' });
      expect(seen.map(({ url, clientIp }) => [url, clientIp])).toEqual([
        ['/free?x=1', '198.51.100.7'],
      ]);
    } finally {
      await app.close();
      await paywall.close();
      await dev.network.close();
    }
  });
});
