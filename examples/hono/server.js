// A paid API on Hono 4 (served by @hono/node-server): GET / is free, GET /forecast costs 10 sat
// (L402 or MPP). Invoices come from the Lightning node TOLLWAY_LIGHTNING names: for a first try,
// the dev node that `npx tollway dev node` runs (a SANDBOX with play money) prints one.
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { withPaywall } from '@tollway/sdk/hono';
import { connectLightning } from '@tollway/sdk/lightning';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import { Hono } from 'hono';

if (!process.env.TOLLWAY_LIGHTNING) {
  console.error('Set TOLLWAY_LIGHTNING: run `npx tollway dev node` and copy the line it prints.');
  process.exit(64);
}
const dir = process.env.TOLLWAY_DIR ?? '.tollway';
const paywall = createPaywall({
  lightning: await connectLightning(process.env.TOLLWAY_LIGHTNING),
  store: createSqliteStore({ path: `${dir}/paywall.sqlite` }),
  secrets: [process.env.TOLLWAY_SECRET ?? createMasterSecret()],
});
const forecast = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });

const app = new Hono();
app.get('/', (c) => c.text('Try GET /forecast (10 sat).\n'));
const sky = (c) => c.json({ city: 'Oslo', sky: 'clear', paidWith: c.get('payment').protocol });
app.get('/forecast', withPaywall(paywall, forecast, sky, { getConnInfo }));

const port = Number(process.env.PORT ?? 3000);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`Hono example listening on http://127.0.0.1:${info.port}`);
});
