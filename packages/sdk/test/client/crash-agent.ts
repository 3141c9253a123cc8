/**
 * A child process for the crash test of the paying fetch: fetches argv[3] with the wallet of
 * connection string argv[4], the SQLite agent store argv[5] and a 100 sat daily budget, then prints
 * `{status, body, paid}`. argv[6] injects a crash by SIGKILL: `after-pay` once the wallet has paid,
 * before the client records anything; `before-pay` after the pending ledger entry, before the
 * wallet is asked; `none` runs normally; `after-pay:N`, `before-pay:N`: the same at the wallet's
 * Nth payment. argv[7], when given, is the preferences (comma-separated, e.g. `mpp-session`);
 * argv[8] how many times to fetch the URL (default 1; the last answer is printed).
 */
import { createBudget } from '../../src/client/budget.js';
import { createPayingFetch, getPayment } from '../../src/client/paying-fetch.js';
import { createSqliteClientStore } from '../../src/client/sqlite-store.js';
import type { ClientProtocol } from '../../src/client/types.js';
import { connectLightning } from '../../src/lightning/connect.js';
import type { LightningBackend } from '../../src/lightning/types.js';

const [, , , url = '', connection = '', db = '', crash = 'none', prefer, calls = '1'] =
  process.argv;
const [when, nth = '1'] = crash.split(':');
const real = await connectLightning(connection);
let payments = 0;
const wallet: LightningBackend = {
  ...real,
  async payInvoice(params) {
    payments += 1;
    const now = payments === Number(nth);
    if (now && when === 'before-pay') process.kill(process.pid, 'SIGKILL');
    const result = await real.payInvoice(params);
    if (now && when === 'after-pay') process.kill(process.pid, 'SIGKILL');
    return result;
  },
};
const store = createSqliteClientStore({ path: db });
const budget = createBudget({ store, limits: { day: '100 sat' } });
const fetch402 = createPayingFetch({
  wallets: wallet,
  store,
  budget,
  maxFeeMsat: 0n,
  ...(prefer === undefined ? {} : { preferences: prefer.split(',') as ClientProtocol[] }),
});
let response = await fetch402(url);
for (let call = 1; call < Number(calls); call++) {
  await response.arrayBuffer();
  response = await fetch402(url);
}
const paid = getPayment(response) !== undefined;
process.stdout.write(
  JSON.stringify({ status: response.status, body: await response.json(), paid }),
);
await store.close();
await real.close();
