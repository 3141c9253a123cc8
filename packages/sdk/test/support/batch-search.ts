/**
 * A paywalled `GET /search` ($0.001, `{"hits":3}`) on a real node:http server that sells x402
 * batch settlement on a test chain: the set-up the batch-settlement suites share.
 */
import { createServer } from 'node:http';
import type { Hex } from 'viem';
import { withPaywall } from '../../src/adapters/node.js';
import { fixedRate } from '../../src/money.js';
import { createPaywall } from '../../src/server/paywall.js';
import { createMasterSecret } from '../../src/server/root-keys.js';
import type { Store } from '../../src/server/store.js';
import { createX402Offer, type X402OfferKind } from '../../src/server/x402-offer.js';
import { createBatchChannels } from '../../src/x402/batch-channel.js';
import type { Facilitator } from '../../src/x402/facilitator.js';
import { listen } from '../adapters/conformance.js';
import type { TestChain } from './chain.js';
import { createDevSetup } from './paywall.js';

/** What {@link serveBatchSearch} needs. */
export interface BatchSearchOptions {
  chain: TestChain;
  store: Store;
  facilitator: Facilitator;
  /** The key that signs the receiver's claims and refunds. */
  authorizerKey: Hex;
  /** Called each time the handler runs (a paid answer), which answers once it resolves. */
  onServe(): void | Promise<void>;
}

/** Starts the server; `close()` stops it and its paywall. */
export async function serveBatchSearch(
  options: BatchSearchOptions,
): Promise<{ url: string; offer: X402OfferKind; close(): Promise<void> }> {
  const { chain: c, store } = options;
  const offer = createX402Offer({
    facilitator: options.facilitator,
    payTo: c.accounts.payTo.address,
    network: c.network,
    asset: { address: c.token, decimals: 6, ...c.tokenDomain },
    batch: { store, channels: createBatchChannels(options.authorizerKey) },
  });
  const paywall = createPaywall({
    lightning: createDevSetup().shop,
    store,
    secrets: [createMasterSecret()],
    rates: fixedRate('100000'),
    rateLimits: { challenges: false },
    offers: [offer],
  });
  const route = paywall.route({ service: 'search', price: '$0.001' });
  const served = await listen(
    createServer(
      withPaywall(paywall, route, async (_req, res) => {
        await options.onServe();
        res.setHeader('Content-Type', 'application/json');
        res.end('{"hits":3}');
      }),
    ),
  );
  return {
    url: `${served.url}/search`,
    offer,
    close: async () => {
      await served.close();
      await paywall.close();
    },
  };
}
