/**
 * A paying fetch that pays x402 only, from a test chain's payer (its token allowed, $1 = 1000 sat),
 * with a ledger in memory and a budget of `perRequest` a request and 1000 sat a day: the agent
 * of the suites that pay `upto` on anvil.
 */
import { createBudget } from '../../src/client/budget.js';
import { createMemoryClientStore } from '../../src/client/memory-store.js';
import { createPayingFetch } from '../../src/client/paying-fetch.js';
import { fixedRate } from '../../src/money.js';
import { createEvmWallet } from '../../src/x402/evm-wallet.js';
import type { TestChain } from './chain.js';

/**
 * The `x402` options of a paying fetch that pays from the chain's payer ($1 = 1000 sat);
 * `batch`: with the chain's RPC, so that it pays `batch-settlement` channels too.
 */
export function chainPayerX402(c: TestChain, { batch = false } = {}) {
  return {
    wallet: createEvmWallet({
      privateKey: c.accounts.payer.privateKey,
      allowedAssets: [{ network: c.network, address: c.token }],
      ...(batch ? { rpcUrl: c.rpcUrl } : {}),
    }),
    rates: fixedRate('100000'),
  };
}

export function createChainPayingFetch(c: TestChain, perRequest: string) {
  const store = createMemoryClientStore();
  const budget = createBudget({ store, limits: { perRequest, day: '1000 sat' } });
  const fetch402 = createPayingFetch({
    wallets: [],
    store,
    budget,
    preferences: ['x402'],
    x402: chainPayerX402(c),
  });
  return { store, budget, fetch402 };
}
