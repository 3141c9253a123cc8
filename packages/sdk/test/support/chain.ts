/**
 * The local EVM chain for tests: `startLocalChain` from `@tollway/sdk/x402/local-chain` with fresh
 * random accounts (`payer` has 10 USDC and no ETH, `payTo` is empty).
 *
 * When anvil cannot run: with `CI` set, `startTestChain` throws (the run fails); otherwise it prints
 * a loud warning and returns undefined, and the caller skips its tests.
 */
import type { Abi } from 'viem';
import {
  AnvilUnavailableError,
  type LocalChain,
  readLocalChainArtifacts,
  startLocalChain,
} from '../../src/x402/local-chain.js';

export { anvilBinary, MULTICALL3_ADDRESS, WATCHDOG } from '../../src/x402/local-chain.js';

/** A running anvil with TestUSDC deployed. */
export type TestChain = LocalChain;

/** The TestUSDC ABI, for reading and writing the token with viem. */
export const testUsdcAbi: Abi = readLocalChainArtifacts().contracts.TestUSDC.abi;

const FIX =
  'Fix: `npm install` at the repository root installs @foundry-rs/anvil with the anvil binary for ' +
  'this platform (@foundry-rs/anvil-<os>-<arch>); anvil needs a POSIX sh.';

/**
 * Starts anvil and deploys the token; undefined when anvil cannot run outside CI.
 *
 * @example
 * ```ts
 * const chain = await startTestChain();
 * afterAll(() => chain?.close());
 * describe.skipIf(chain === undefined)('on a real chain', () => { … });
 * ```
 */
export async function startTestChain(): Promise<TestChain | undefined> {
  try {
    return await startLocalChain({ accounts: 'fresh' });
  } catch (error) {
    if (!(error instanceof AnvilUnavailableError)) throw error;
    const reason = error.message;
    if (process.env.CI) throw new Error(`anvil for tests is unavailable: ${reason}\n${FIX}`);
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\nEVM CHAIN TESTS SKIPPED: anvil cannot run (${reason.split('\n')[0]}).\n${FIX}\n${bar}\n`,
    );
    return undefined;
  }
}
