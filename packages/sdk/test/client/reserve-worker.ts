/**
 * A child process for the cross-process budget test: opens the SQLite agent store at argv[3], says
 * "ready", waits for "go" on stdin, fires `count` reservations of `msat` each at a budget whose
 * `total` is `limit` msat, and prints how many were held and how the others failed.
 */
import { createInterface } from 'node:readline';
import { createBudget } from '../../src/client/budget.js';
import { createSqliteClientStore } from '../../src/client/sqlite-store.js';
import { isTollwayError } from '../../src/errors.js';

const [, , , path = '', count = '0', msat = '0', limit = '0'] = process.argv;
const store = createSqliteClientStore({ path });
const budget = createBudget({ store, limits: { total: BigInt(limit) } });
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) if (line === 'go') break;
const results = await Promise.allSettled(
  Array.from({ length: Number(count) }, (_, i) =>
    budget.reserve({
      origin: 'https://api.example.com',
      url: `https://api.example.com/${process.pid}/${i}`,
      protocol: 'l402',
      amountMsat: BigInt(msat),
      maxFeeMsat: 0n,
    }),
  ),
);
const codes = results.map((r) =>
  r.status === 'fulfilled' ? 'held' : isTollwayError(r.reason) ? r.reason.code : String(r.reason),
);
await store.close();
process.stdout.write(`${JSON.stringify(codes)}\n`);
