import { createServer } from 'node:http';
import express, { type Request, type Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdapterHarness,
  describeConformance,
  listen,
  type Served,
  send,
  toJson,
} from '../../test/adapters/conformance.js';
import { describeTracing } from '../../test/adapters/tracing.js';
import { createDevSetup, createMemoryLogger, payL402 } from '../../test/support/paywall.js';
import { createPaywall } from '../server/paywall.js';
import { createMasterSecret } from '../server/root-keys.js';
import type { PaywallRequest } from '../server/types.js';
import { createMemoryStore } from '../stores/memory.js';
import { requirePayment } from './express.js';

/** Answers `{ payment, body }` with the route's status. */
function echo(status: () => number = () => 200) {
  return (req: Request, res: Response): void => {
    res
      .status(status())
      .type('application/json')
      .send(toJson({ payment: req.payment, body: req.body }));
  };
}

// The body parser runs after the paywall, so the adapter reads the raw body and must leave it.
const harness: AdapterHarness = {
  name: 'express',
  serve(paywall, routes, { onError }) {
    const app = express();
    for (const { method, path, route, stream, status, chunks } of routes) {
      const paid = requirePayment(paywall, route, { onError });
      if (chunks !== undefined) {
        app.post(path, paid, express.json(), (_req, res) => {
          res.type('text/event-stream');
          for (const chunk of chunks) res.write(chunk);
          res.end();
        });
      } else if (stream !== undefined) {
        app.get(path, paid, async (_req, res) => {
          res.type('text/plain').write('first\n');
          await stream();
          res.end('last\n');
        });
      } else if (method === 'GET') app.get(path, paid, echo(status));
      else app.post(path, paid, express.json({ limit: '1mb' }), echo(status));
    }
    return listen(createServer(app));
  },
};

describeConformance(harness);
describeTracing(harness);

describe('express adapter specifics', () => {
  let dev: ReturnType<typeof createDevSetup>;
  let served: Served;
  const seen: PaywallRequest[] = [];

  beforeAll(async () => {
    dev = createDevSetup();
    const paywall = createPaywall({
      lightning: dev.shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      rateLimits: { challenges: false },
      logger: createMemoryLogger(),
    });
    const spy = {
      handle: (request: PaywallRequest, route: Parameters<typeof paywall.handle>[1]) => {
        seen.push(request);
        return paywall.handle(request, route);
      },
    };
    const priced = paywall.route({
      service: 'priced',
      readsBody: true,
      price: (request) => `${(request.body as { sats: number }).sats} sat`,
    });
    const app = express();
    app.set('trust proxy', 1);
    // Mounted in a router, where Express rewrites req.url: the engine must see the original.
    const router = express.Router();
    router.post('/priced', express.json(), requirePayment(spy, priced), echo());
    app.use('/v1', router);
    served = await listen(createServer(app));
  });

  afterAll(async () => {
    await served.close();
    await dev.network.close();
  });

  it('reuses req.body from a parser that ran first, sees the original URL and req.ip', async () => {
    const body = JSON.stringify({ sats: 3 });
    const unpaid = await send(`${served.url}/v1/priced?x=1`, {
      method: 'POST',
      body,
      headers: [['X-Forwarded-For', '198.51.100.7']],
    });
    expect(unpaid.status).toBe(402);
    expect(seen.map(({ url, clientIp }) => [url, clientIp])).toEqual([
      ['/v1/priced?x=1', '198.51.100.7'],
    ]);
    const credential = await payL402(unpaid, dev.agent);
    const paid = await send(`${served.url}/v1/priced`, {
      method: 'POST',
      body,
      headers: [['Authorization', credential]],
    });
    expect(paid.json()).toMatchObject({ payment: { protocol: 'l402' }, body: { sats: 3 } });
  });
});
