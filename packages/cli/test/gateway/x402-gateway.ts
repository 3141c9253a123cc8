/**
 * The set-up the gateway's x402 suites share: an in-process gateway on a dev Lightning wallet that
 * offers x402 on a test chain, the chain balances those suites check, and the official
 * `@x402/fetch` client paying `exact` from the chain's payer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { privateKeyToAccount } from 'viem/accounts';
import type { TestChain } from '../../../sdk/test/support/chain.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { x402ConfigBlock } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** What differs between the suites' gateways; the rest is the shared config. */
export interface X402GatewayOptions {
  services: Array<Record<string, unknown>>;
  /** The `paywall` block; default: L402 only, $1 = 1000 sat, no challenge rate limit. */
  paywall?: Record<string, unknown>;
  /** Keys added to the test chain's `x402` block (`batch`, `upto`). */
  x402?: Record<string, unknown>;
  /** Environment besides `FACILITATOR_KEY`, which is always the chain's facilitator. */
  env?: Record<string, string>;
  /** Stops the Lightning node before the gateway starts: no invoice can be minted. */
  lightningDown?: boolean;
}

/** A running gateway, its Lightning network (wallet `shop`), and how to stop both. */
export interface X402Gateway {
  gateway: Gateway;
  network: DevNetwork;
  close(): Promise<void>;
}

/** Starts a gateway offering x402 on `chain`, with its data in a fresh temporary directory. */
export async function startX402Gateway(
  chain: TestChain,
  options: X402GatewayOptions,
): Promise<X402Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-gw-x402-'));
  const network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop');
  const lightning = network.backend('shop');
  if (options.lightningDown) await network.close();
  const env = { FACILITATOR_KEY: chain.accounts.facilitator.privateKey, ...options.env };
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      dataDir: dir,
      lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
      paywall: options.paywall ?? {
        protocols: ['l402'],
        usdPerBtc: '100000',
        rateLimits: { challenges: false },
      },
      x402: { ...x402ConfigBlock(chain), ...options.x402 },
      services: options.services,
    },
    { env },
  );
  const gateway = await createGateway({
    config,
    lightning,
    logger: quiet,
    baseDir: dir,
    env,
  });
  return {
    gateway,
    network,
    close: async () => {
      await gateway.close();
      if (!options.lightningDown) await network.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The TestUSDC balances of the chain's payer and of its `payTo` account, in that order. */
export async function payerAndPayTo(chain: TestChain): Promise<[bigint, bigint]> {
  return [
    await chain.balanceOf(chain.accounts.payer.address),
    await chain.balanceOf(chain.accounts.payTo.address),
  ];
}

/**
 * The official x402 client with the official `exact` scheme, signing as the chain's payer and
 * paying in the chain's TestUSDC only.
 */
function officialExactClient(chain: TestChain): x402Client {
  const client = new x402Client();
  const payer = privateKeyToAccount(chain.accounts.payer.privateKey);
  client.register('eip155:*', new ExactEvmScheme(payer));
  client.setSpendControls({ allowedAssets: [{ network: chain.network, asset: chain.token }] });
  return client;
}

/** `fetchImpl` wrapped by the official `@x402/fetch` paying `exact` as the chain's payer. */
export function officialExactFetch(
  chain: TestChain,
  fetchImpl: typeof fetch = fetch,
): typeof fetch {
  return wrapFetchWithPayment(fetchImpl, officialExactClient(chain));
}
