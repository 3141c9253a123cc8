// Dev Lightning node: invoices created per second (in process: fresh preimage, BOLT11 encode + ECDSA
// sign with the node key, one row written to the SQLite file in WAL mode), against BOLT11
// decode + signature check per second of such an invoice.
//
// Why that baseline: every invoice the node issues is decoded and its signature checked on the other
// side (by the paying client, and again by the safety layer that wraps every backend). Both costs are
// dominated by one secp256k1 operation, so the ratio shows what the node adds on top of the
// cryptography (storage, preimage, bookkeeping): near 1 means issuing keeps pace with checking; far
// below 1 means the ledger, not the signature, is the bottleneck.
//
// Imports the built package: run `npm run build -w @tollway/sdk` first. The last line printed is one
// JSON object (see bench/run-all.js).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeInvoice } from '@tollway/sdk/lightning';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { Bench } from 'tinybench';

const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-invoices-'));
const network = createDevNetwork({ path: join(dir, 'dev-lightning.sqlite') });
network.openWallet('bench');
const ln = network.backend('bench');
const sample = await ln.createInvoice({ amountMsat: 10_000n, memo: 'bench' });

async function create() {
  await ln.createInvoice({ amountMsat: 10_000n, memo: 'bench' });
}

function decode() {
  if (decodeInvoice(sample.paymentRequest).payeePubkey !== network.pubkey) {
    throw new Error('decode: wrong payee');
  }
}

const bench = new Bench({ time: 2000, warmupTime: 300 });
bench.add('dev node createInvoice', create).add('decodeInvoice (signature checked)', decode);
await bench.run();
console.table(bench.table());
await network.close();
rmSync(dir, { recursive: true, force: true });

const [createTask, decodeTask] = bench.tasks;
const value = createTask?.result?.throughput.mean ?? 0;
const baseline = decodeTask?.result?.throughput.mean ?? 0;
console.log(
  JSON.stringify({
    name: 'dev_invoices',
    value: Math.round(value),
    unit: 'invoices/s',
    baseline: Math.round(baseline),
    ratio: Math.round((value / baseline) * 100) / 100,
  }),
);
