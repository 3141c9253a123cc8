/**
 * A child process for the shared-database test of the paying fetch: opens the SQLite agent store
 * argv[3] with the wallet of connection string argv[4] and an ample budget, says "ready", waits for
 * "go" on stdin, fetches every URL of argv[5..] at once, and prints one JSON line: per URL its
 * status (or error code) and the msat this call paid.
 */
import { createInterface } from 'node:readline';
import { createBudget } from '../../src/client/budget.js';
import { createPayingFetch, getPayment } from '../../src/client/paying-fetch.js';
import { createSqliteClientStore } from '../../src/client/sqlite-store.js';
import { isTollwayError } from '../../src/errors.js';
import { connectLightning } from '../../src/lightning/connect.js';

const [, , , db = '', connection = '', ...urls] = process.argv;
const wallet = await connectLightning(connection);
const store = createSqliteClientStore({ path: db });
const budget = createBudget({ store, limits: { day: '100000 sat' } });
const fetch402 = createPayingFetch({ wallets: wallet, store, budget });
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) if (line === 'go') break;
const results = await Promise.all(
  urls.map(async (url) => {
    try {
      const response = await fetch402(url);
      await response.arrayBuffer();
      return {
        url,
        status: response.status,
        paidMsat: String(getPayment(response)?.amountMsat ?? 0n),
      };
    } catch (error) {
      return { url, status: isTollwayError(error) ? error.code : String(error), paidMsat: '0' };
    }
  }),
);
process.stdout.write(`${JSON.stringify(results)}\n`);
await store.close();
await wallet.close();
