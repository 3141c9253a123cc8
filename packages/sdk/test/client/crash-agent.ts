/**
 * A child process for the crash test of the paying fetch: fetches argv[3] with the wallet of
 * connection string argv[4], the SQLite agent store argv[5] and a 100 sat daily budget, then prints
 * `{status, body, paid}`. argv[6] injects a crash by SIGKILL: `after-pay` once the wallet has paid,
 * before the client records anything; `before-pay` after the pending ledger entry, before the
 * wallet is asked; `none` runs normally. argv[7], when given, is the preferences
 * (comma-separated, e.g. `mpp-session`).
 */
import { createBudget } from '../../src/client/budget.js';
import { createPayingFetch, getPayment } from '../../src/client/paying-fetch.js';
import { createSqliteClientStore } from '../../src/client/sqlite-store.js';
import type { ClientProtocol } from '../../src/client/types.js';
import { connectLightning } from '../../src/lightning/connect.js';
import type { LightningBackend } from '../../src/lightning/types.js';

const [, , , url = '', connection = '', db = '', crash = 'none', prefer] = process.argv;
const real = await connectLightning(connection);
const wallet: LightningBackend = {
  ...real,
  async payInvoice(params) {
    if (crash === 'before-pay') process.kill(process.pid, 'SIGKILL');
    const result = await real.payInvoice(params);
    if (crash === 'after-pay') process.kill(process.pid, 'SIGKILL');
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
const response = await fetch402(url);
const paid = getPayment(response) !== undefined;
process.stdout.write(
  JSON.stringify({ status: response.status, body: await response.json(), paid }),
);
await store.close();
await real.close();
