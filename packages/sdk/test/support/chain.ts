/**
 * A real local EVM chain for tests: anvil from npm (`@foundry-rs/anvil`, the platform binary
 * resolved directly), chain id 31337 on a free port, with our EIP-3009 token TestUSDC deployed
 * (contracts/TestUSDC.sol, built into contracts/artifacts.json by scripts/compile-contracts.mjs),
 * Multicall3Lite's code placed at Multicall3's canonical address, and fresh funded accounts.
 *
 * No orphans: anvil runs under a small `sh` watchdog that kills it as soon as the watchdog's stdin
 * closes. That stdin is a pipe from this process, so however this process ends (close(), a failed
 * test, an uncaught exception, SIGKILL) the pipe closes and anvil goes with it.
 *
 * When anvil cannot run: with `CI` set, `startTestChain` throws (the run fails); otherwise it prints
 * a loud warning and returns undefined, and the caller skips its tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  type Abi,
  type Address,
  type Chain,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

/** A key pair on the test chain. */
export interface TestAccount {
  address: Address;
  privateKey: Hex;
}

/** A running anvil with TestUSDC deployed. */
export interface TestChain {
  /** JSON-RPC endpoint on 127.0.0.1. */
  rpcUrl: string;
  /** viem chain object for id 31337, pointing at {@link rpcUrl}. */
  chain: Chain;
  /** The CAIP-2 network id x402 uses for this chain. */
  network: 'eip155:31337';
  /** Address of the TestUSDC contract (6 decimals). */
  token: Address;
  /** The token's EIP-712 domain name and version, as x402 requirements carry them in `extra`. */
  tokenDomain: { name: string; version: string };
  /**
   * Fresh accounts: `deployer` (owns the token, has ETH), `facilitator` (has ETH to pay gas),
   * `payer` (has 10 USDC and no ETH), `payTo` (empty).
   */
  accounts: Record<'deployer' | 'facilitator' | 'payer' | 'payTo', TestAccount>;
  /** Process id of anvil itself (not of its watchdog). */
  anvilPid: number;
  /** A viem public client on the chain. */
  client: PublicClient;
  /** TestUSDC balance of `address`, in base units. */
  balanceOf(address: Address): Promise<bigint>;
  /** Mints `amount` base units of TestUSDC to `to`. */
  mint(to: Address, amount: bigint): Promise<void>;
  /** Kills anvil and waits until it is gone. */
  close(): Promise<void>;
}

interface Artifact {
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

/** Multicall3's address on every chain where it is deployed. */
export const MULTICALL3_ADDRESS: Address = '0xcA11bde05977b3631167028862bE2a173976CA11';

const artifacts: { contracts: Record<'TestUSDC' | 'Multicall3Lite', Artifact> } = JSON.parse(
  readFileSync(new URL('../../../../contracts/artifacts.json', import.meta.url), 'utf8'),
);

/** The TestUSDC ABI, for reading and writing the token with viem. */
export const testUsdcAbi: Abi = artifacts.contracts.TestUSDC.abi;

const STARTUP_TIMEOUT_MS = 20_000;

/**
 * Starts `$0 "$@"` (anvil) in the background, prints its pid, kills it when stdin reaches end of
 * file, and exits with anvil's status when anvil ends first.
 */
export const WATCHDOG = [
  'exec 3<&0',
  '"$0" "$@" &',
  'anvil=$!',
  'echo "anvil pid $anvil"',
  '(read -r _ <&3; kill -9 "$anvil" 2>/dev/null) &',
  'wait "$anvil"',
].join('\n');

const FIX =
  'Fix: `npm install` at the repository root installs @foundry-rs/anvil with the anvil binary for ' +
  'this platform (@foundry-rs/anvil-<os>-<arch>); anvil needs a POSIX sh.';

/** The anvil binary shipped in the npm package for this platform. */
export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return createRequire(import.meta.url).resolve(
    `@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`,
  );
}

/** Resolves when `child` has exited. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Spawns anvil under the watchdog; resolves with its RPC URL and pid once it listens. */
async function spawnAnvil(): Promise<{ rpcUrl: string; pid: number; stop: () => Promise<void> }> {
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', '31337', '--accounts', '0'];
  const child = spawn('/bin/sh', ['-c', WATCHDOG, anvilBinary(), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stop = async () => {
    child.stdin?.end();
    await exited(child);
  };
  let output = '';
  // Keep draining both streams for anvil's whole life: a full pipe would block it.
  const started = new Promise<{ rpcUrl: string; pid: number }>((resolve, reject) => {
    let pid = 0;
    let rpcUrl = '';
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      pid ||= Number(/anvil pid (\d+)/.exec(output)?.[1] ?? 0);
      rpcUrl ||= /Listening on (127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? '';
      if (pid !== 0 && rpcUrl !== '') resolve({ rpcUrl: `http://${rpcUrl}`, pid });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`anvil exited with code ${code}: ${output}`)));
    setTimeout(
      () => reject(new Error(`anvil did not start in ${STARTUP_TIMEOUT_MS} ms: ${output}`)),
      STARTUP_TIMEOUT_MS,
    ).unref();
  });
  try {
    return { ...(await started), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function createAccount(): TestAccount {
  const privateKey = generatePrivateKey();
  return { address: privateKeyToAccount(privateKey).address, privateKey };
}

/** Deploys TestUSDC and Multicall3Lite, funds the accounts, and builds the {@link TestChain}. */
async function setUpChain(
  rpcUrl: string,
  anvilPid: number,
  stop: () => Promise<void>,
): Promise<TestChain> {
  const chain = defineChain({ ...foundry, rpcUrls: { default: { http: [rpcUrl] } } });
  const transport = http(rpcUrl);
  const client = createPublicClient({ chain, transport, pollingInterval: 50 });
  const testClient = createTestClient({ chain, transport, mode: 'anvil' });
  const accounts = {
    deployer: createAccount(),
    facilitator: createAccount(),
    payer: createAccount(),
    payTo: createAccount(),
  };
  const ether = 100n * 10n ** 18n;
  await testClient.setBalance({ address: accounts.deployer.address, value: ether });
  await testClient.setBalance({ address: accounts.facilitator.address, value: ether });
  await testClient.setCode({
    address: MULTICALL3_ADDRESS,
    bytecode: artifacts.contracts.Multicall3Lite.deployedBytecode,
  });

  const deployer = createWalletClient({
    account: privateKeyToAccount(accounts.deployer.privateKey),
    chain,
    transport,
  });
  const { abi, bytecode } = artifacts.contracts.TestUSDC;
  const deployed = await client.waitForTransactionReceipt({
    hash: await deployer.deployContract({ abi, bytecode }),
  });
  const token = deployed.contractAddress;
  if (!token) throw new Error('TestUSDC deployment returned no contract address');

  const mint = async (to: Address, amount: bigint) => {
    const hash = await deployer.writeContract({
      address: token,
      abi,
      functionName: 'mint',
      args: [to, amount],
    });
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new Error(`mint reverted: ${hash}`);
  };
  await mint(accounts.payer.address, 10_000_000n);

  return {
    rpcUrl,
    chain,
    network: 'eip155:31337',
    token,
    tokenDomain: { name: 'USD Coin', version: '2' },
    accounts,
    anvilPid,
    client,
    balanceOf: async (address) =>
      (await client.readContract({
        address: token,
        abi,
        functionName: 'balanceOf',
        args: [address],
      })) as bigint,
    mint,
    close: stop,
  };
}

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
  let anvil: Awaited<ReturnType<typeof spawnAnvil>>;
  try {
    anvil = await spawnAnvil();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI) throw new Error(`anvil for tests is unavailable: ${reason}\n${FIX}`);
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\nEVM CHAIN TESTS SKIPPED: anvil cannot run (${reason.split('\n')[0]}).\n${FIX}\n${bar}\n`,
    );
    return undefined;
  }
  try {
    return await setUpChain(anvil.rpcUrl, anvil.pid, anvil.stop);
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}
