// A paid API on plain node:http: GET / is free, GET /forecast costs 10 sat (L402 or MPP).
// Invoices come from the Lightning node TOLLWAY_LIGHTNING names: for a first try, the dev node
// that `npx tollway dev node` runs (a SANDBOX with play money) prints one.
import { createServer } from 'node:http';
import { connectLightning } from '@tollway/sdk/lightning';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';

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

const paidForecast = withPaywall(paywall, forecast, (req, res) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ city: 'Oslo', sky: 'clear', paidWith: req.payment.protocol }));
});

const server = createServer((req, res) => {
  const path = req.url?.split('?')[0];
  if (req.method === 'GET' && path === '/forecast') return void paidForecast(req, res);
  if (req.method === 'GET' && path === '/') return void res.end('Try GET /forecast (10 sat).\n');
  res.writeHead(404).end();
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`node:http example listening on http://127.0.0.1:${server.address().port}`);
});
