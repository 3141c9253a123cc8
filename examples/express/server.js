// A paid API on Express 5: GET / is free, GET /forecast costs 10 sat (L402 or MPP).
// Invoices come from the embedded dev Lightning node, a SANDBOX with play money.
import { requirePayment } from '@tollway/sdk/express';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import express from 'express';

const dir = process.env.TOLLWAY_DIR ?? '.tollway';
const network = createDevNetwork({ path: `${dir}/dev-lightning.sqlite` });
network.openWallet('shop', { balanceMsat: 0n });

const paywall = createPaywall({
  lightning: network.backend('shop'),
  store: createSqliteStore({ path: `${dir}/paywall.sqlite` }),
  secrets: [process.env.TOLLWAY_SECRET ?? createMasterSecret()],
});
const forecast = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });

const app = express();
app.get('/', (_req, res) => {
  res.send('Try GET /forecast (10 sat).\n');
});
app.get('/forecast', requirePayment(paywall, forecast), (req, res) => {
  res.json({ city: 'Oslo', sky: 'clear', paidWith: req.payment.protocol });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`Express example listening on http://127.0.0.1:${server.address().port}`);
});
