/**
 * The shared Lightning backend suite against the real dev node: the `dev` HTTP backend talks to a dev
 * node served on loopback, backed by a SQLite file. "Outside" is another wallet of the same network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevBackend } from '../../src/lightning/dev/backend.js';
import { createDevNetwork } from '../../src/lightning/dev/node.js';
import { createDevServer, type DevServerFault } from '../../src/lightning/dev/server.js';
import { type BackendHarness, describeBackendSuite } from './backend-suite.js';

async function startDevHarness(): Promise<BackendHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-suite-'));
  const network = createDevNetwork({ path: join(dir, 'dev-lightning.sqlite') });
  let fault: DevServerFault | undefined;
  const server = await createDevServer({ network, fault: () => fault });
  const ours = network.openWallet('ours');
  network.openWallet('outside');
  const outside = network.backend('outside');
  return {
    backend: createDevBackend({ url: server.url, wallet: ours.name, token: ours.token }),
    async payIncoming(paymentRequest, amountMsat) {
      await outside.payInvoice({
        paymentRequest,
        ...(amountMsat !== undefined ? { amountMsat } : {}),
      });
    },
    async createExternalInvoice(p) {
      const created = await outside.createInvoice({
        amountMsat: p.amountMsat ?? 0n,
        ...(p.expirySeconds !== undefined ? { expirySeconds: p.expirySeconds } : {}),
      });
      const { preimage = '' } = await outside.lookupInvoice(created.paymentHash);
      return { paymentRequest: created.paymentRequest, paymentHash: created.paymentHash, preimage };
    },
    async timesPaid(paymentHash) {
      // The ledger settles an invoice at most once; count the outside wallet's settled invoice.
      const status = await outside.lookupInvoice(paymentHash);
      return status.state === 'settled' ? 1 : 0;
    },
    async setBalance(msat) {
      network.setBalance(ours.name, msat);
    },
    fault(mode) {
      fault = mode;
    },
    async close() {
      await server.close();
      await network.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeBackendSuite('dev (HTTP)', startDevHarness);
