// A paid API on Fastify 5: GET / is free, GET /forecast costs 10 sat (L402 or MPP).
// Invoices come from the Lightning node TOLLWAY_LIGHTNING names: for a first try, the dev node
// that `npx tollway dev node` runs (a SANDBOX with play money) prints one.
import { paywallPlugin, requirePayment } from '@tollway/sdk/fastify';
import { connectLightning } from '@tollway/sdk/lightning';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import Fastify from 'fastify';

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

const app = Fastify();
await app.register(paywallPlugin);
app.get('/', async () => 'Try GET /forecast (10 sat).\n');
app.get('/forecast', { preHandler: requirePayment(paywall, forecast) }, async (request) => ({
  city: 'Oslo',
  sky: 'clear',
  paidWith: request.payment.protocol,
}));

const url = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`Fastify example listening on ${url}`);
