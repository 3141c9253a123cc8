/**
 * A local EVM chain (SANDBOX, test tokens) for `tollway dev --x402` and for tests: anvil from npm
 * (`@foundry-rs/anvil`, the platform binary resolved directly), chain id 31337 on a free port, our
 * EIP-3009 token TestUSDC ("USD Coin" v2, 6 decimals, from the package's contracts/artifacts.json,
 * built by scripts/compile-contracts.mjs) deployed, Multicall3Lite's code placed at Multicall3's
 * canonical address, and funded accounts: anvil's well-known dev keys or fresh random ones.
 * Nothing here is ever worth money.
 *
 * The contracts x402's `upto` and `batch-settlement` schemes call sit at the addresses `@x402/evm`
 * has built in: Permit2 (Uniswap's runtime code, vendored from Uniswap's own test helper in
 * contracts/vendor/permit2.json, see {@link readPermit2Code}), and our own stand-ins for the x402 upto proxy, the
 * batch-settlement contract and its EIP-3009 deposit collector. Each is deployed with the
 * canonical constructor arguments, then its code (immutables included) is copied to the canonical
 * address with `anvil_setCode`.
 *
 * No orphans: anvil runs under a small `sh` watchdog that kills it as soon as the watchdog's stdin
 * closes. That stdin is a pipe from this process, so however this process ends (close(), Ctrl-C,
 * an uncaught exception, SIGKILL) the pipe closes and anvil goes with it.
 *
 * This module imports viem and node:child_process, and `@tollway/sdk/x402` never imports it: load
 * it with a dynamic `import()` where it is optional.
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
import { X402_CONTRACTS } from './evm-contracts.js';

/** A key pair on the local chain. */
export interface LocalChainAccount {
  address: Address;
  privateKey: Hex;
}

/** Options of {@link startLocalChain}. */
export interface LocalChainOptions {
  /**
   * `'anvil-dev'`: anvil's well-known dev keys (public, with 10000 ETH each). `'fresh'`: random keys
   * (anvil starts with `--accounts 0`); `deployer` and `facilitator` get 100 ETH.
   */
  accounts: 'fresh' | 'anvil-dev';
}

/** A running anvil with TestUSDC and the x402 contracts; see {@link startLocalChain}. */
export interface LocalChain {
  /** JSON-RPC endpoint on 127.0.0.1. */
  rpcUrl: string;
  /** viem chain object for id 31337, pointing at {@link rpcUrl}. */
  chain: Chain;
  /** The CAIP-2 id x402 uses for this chain. */
  network: 'eip155:31337';
  /** Address of the TestUSDC contract. */
  token: Address;
  /** The token's decimals and EIP-712 domain. */
  asset: { address: Address; decimals: 6; name: 'USD Coin'; version: '2' };
  /** The token's EIP-712 domain name and version, as x402 requirements carry them in `extra`. */
  tokenDomain: { name: string; version: string };
  /**
   * `deployer` (owns the token, has ETH), `facilitator` (has ETH to pay the settlement gas),
   * `payer` (funded with {@link PAYER_FUNDS} test USDC; no ETH with fresh accounts), `payTo`
   * (receives the payments).
   */
  accounts: Record<'deployer' | 'facilitator' | 'payer' | 'payTo', LocalChainAccount>;
  /** Process id of anvil itself (not of its watchdog). */
  anvilPid: number;
  /** A viem public client on the chain. */
  client: PublicClient;
  /** TestUSDC balance of `address`, in base units. */
  balanceOf(address: Address): Promise<bigint>;
  /**
   * Lets Permit2 spend the TestUSDC of the account of `privateKey` (what an x402 `upto` payer
   * does once, on chain), giving it the ETH for the transaction first.
   */
  approvePermit2(privateKey: Hex): Promise<void>;
  /** Mints `amount` base units of TestUSDC to `to`. */
  mint(to: Address, amount: bigint): Promise<void>;
  /** Kills anvil and waits until it is gone. */
  close(): Promise<void>;
}

/** Thrown by {@link startLocalChain} when anvil itself cannot start; `cause` says why. */
export class AnvilUnavailableError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'AnvilUnavailableError';
  }
}

interface Artifact {
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

/** The compiled contracts the local chain deploys. */
export interface LocalChainArtifacts {
  contracts: Record<
    | 'TestUSDC'
    | 'Multicall3Lite'
    | 'UptoPermit2Proxy'
    | 'BatchSettlement'
    | 'Erc3009DepositCollector',
    Artifact
  >;
}

/** Multicall3's address on every chain where it is deployed. */
export const MULTICALL3_ADDRESS: Address = '0xcA11bde05977b3631167028862bE2a173976CA11';

const MAX_UINT256 = 2n ** 256n - 1n;

const approveAbi = [
  {
    type: 'function',
    name: 'approve',
    stateMutability: 'nonpayable',
    inputs: [
      { name: 'spender', type: 'address' },
      { name: 'value', type: 'uint256' },
    ],
    outputs: [{ type: 'bool' }],
  },
] as const;

/** anvil's default dev keys (mnemonic "test test … junk"): public, SANDBOX only. */
const ANVIL_KEYS = {
  facilitator: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  deployer: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  payTo: '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  payer: '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
} as const satisfies Record<string, Hex>;

/** Test USDC minted to the payer on start: 10 tokens. */
export const PAYER_FUNDS = 10_000_000n;

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

/** Reads contracts/artifacts.json (our compiled contracts), shipped in this package. */
export function readLocalChainArtifacts(): LocalChainArtifacts {
  // src/x402/ and dist/x402/ are both two levels below the package root.
  return JSON.parse(
    readFileSync(new URL('../../contracts/artifacts.json', import.meta.url), 'utf8'),
  );
}

/** `PUSH32 chainId`: how Permit2's runtime code holds the chain id it cached its domain for. */
const pushChainId = (chainId: number): string => `7f${chainId.toString(16).padStart(64, '0')}`;

/**
 * Permit2's runtime code, vendored in contracts/vendor/permit2.json. Uniswap captured it from a
 * deployment on chain 31337 (foundry's default, ours too), so it holds that chain's EIP-712 domain
 * for another address and would check signatures against it. Its cached chain id (an immutable)
 * is set to 1, as in the code at the canonical address on Ethereum: on this chain Permit2 then
 * computes its domain from the address it runs at, as everywhere but chain 1.
 */
function readPermit2Code(): Hex {
  const vendored = JSON.parse(
    readFileSync(new URL('../../contracts/vendor/permit2.json', import.meta.url), 'utf8'),
  ) as { deployedBytecode: Hex };
  const parts = vendored.deployedBytecode.split(pushChainId(31337));
  if (parts.length !== 2) throw new Error("Permit2's vendored code no longer holds chain 31337");
  return parts.join(pushChainId(1)) as Hex;
}

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
async function spawnAnvil(
  extraArgs: readonly string[],
): Promise<{ rpcUrl: string; pid: number; stop: () => Promise<void> }> {
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', '31337', ...extraArgs];
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

function account(privateKey: Hex): LocalChainAccount {
  return { address: privateKeyToAccount(privateKey).address, privateKey };
}

/** What placing contracts needs: the chain's clients and a funded deployer. */
interface Placement {
  client: PublicClient;
  testClient: ReturnType<typeof createTestClient>;
  deployer: ReturnType<typeof createWalletClient>;
  chain: Chain;
}

/** Deploys `artifact` with `args`, then copies its runtime code to `address`. */
async function place(
  placement: Placement,
  artifact: Artifact,
  args: readonly unknown[],
  address: Address,
): Promise<void> {
  const { client, testClient, deployer, chain } = placement;
  const hash = await deployer.deployContract({
    abi: artifact.abi,
    bytecode: artifact.bytecode,
    args,
    account: deployer.account ?? null,
    chain,
  });
  const deployed = (await client.waitForTransactionReceipt({ hash })).contractAddress;
  const code = deployed ? await client.getCode({ address: deployed }) : undefined;
  if (code === undefined) throw new Error(`deploying for ${address} left no code`);
  await testClient.setCode({ address, bytecode: code });
}

/** Places Permit2 and the x402 upto and batch-settlement contracts at their canonical addresses. */
async function placeX402Contracts(
  placement: Placement,
  artifacts: LocalChainArtifacts,
): Promise<void> {
  const { contracts } = artifacts;
  await placement.testClient.setCode({
    address: X402_CONTRACTS.permit2,
    bytecode: readPermit2Code(),
  });
  await place(
    placement,
    contracts.UptoPermit2Proxy,
    [X402_CONTRACTS.permit2],
    X402_CONTRACTS.uptoProxy,
  );
  await place(placement, contracts.BatchSettlement, [], X402_CONTRACTS.batchSettlement);
  await place(
    placement,
    contracts.Erc3009DepositCollector,
    [X402_CONTRACTS.batchSettlement],
    X402_CONTRACTS.erc3009DepositCollector,
  );
}

/**
 * Starts anvil, deploys TestUSDC, places Multicall3Lite and the x402 contracts (see the module
 * comment), funds the accounts, and mints
 * {@link PAYER_FUNDS} to the payer. Rejects with {@link AnvilUnavailableError} when anvil cannot
 * start.
 *
 * @example
 * ```ts
 * const chain = await startLocalChain({ accounts: 'anvil-dev' });
 * try { console.log(await chain.balanceOf(chain.accounts.payer.address)); } finally { await chain.close(); }
 * ```
 */
export async function startLocalChain(options: LocalChainOptions): Promise<LocalChain> {
  const fresh = options.accounts === 'fresh';
  let anvil: Awaited<ReturnType<typeof spawnAnvil>>;
  try {
    anvil = await spawnAnvil(fresh ? ['--accounts', '0'] : []);
  } catch (error) {
    throw new AnvilUnavailableError(error);
  }
  try {
    const { rpcUrl } = anvil;
    const artifacts = readLocalChainArtifacts();
    const chain = defineChain({ ...foundry, rpcUrls: { default: { http: [rpcUrl] } } });
    const transport = http(rpcUrl);
    const client = createPublicClient({ chain, transport, pollingInterval: 50 });
    const testClient = createTestClient({ chain, transport, mode: 'anvil' });
    const key = (name: keyof typeof ANVIL_KEYS) =>
      fresh ? generatePrivateKey() : ANVIL_KEYS[name];
    const accounts = {
      deployer: account(key('deployer')),
      facilitator: account(key('facilitator')),
      payer: account(key('payer')),
      payTo: account(key('payTo')),
    };
    if (fresh) {
      const ether = 100n * 10n ** 18n;
      await testClient.setBalance({ address: accounts.deployer.address, value: ether });
      await testClient.setBalance({ address: accounts.facilitator.address, value: ether });
    }
    await testClient.setCode({
      address: MULTICALL3_ADDRESS,
      bytecode: artifacts.contracts.Multicall3Lite.deployedBytecode,
    });
    const deployer = createWalletClient({
      account: privateKeyToAccount(accounts.deployer.privateKey),
      chain,
      transport,
    });
    await placeX402Contracts({ client, testClient, deployer, chain }, artifacts);
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
    await mint(accounts.payer.address, PAYER_FUNDS);
    return {
      rpcUrl,
      chain,
      network: 'eip155:31337',
      token,
      asset: { address: token, decimals: 6, name: 'USD Coin', version: '2' },
      tokenDomain: { name: 'USD Coin', version: '2' },
      accounts,
      anvilPid: anvil.pid,
      client: client as PublicClient,
      balanceOf: async (address) =>
        (await client.readContract({
          address: token,
          abi,
          functionName: 'balanceOf',
          args: [address],
        })) as bigint,
      mint,
      async approvePermit2(privateKey) {
        const owner = privateKeyToAccount(privateKey);
        await testClient.setBalance({ address: owner.address, value: 10n ** 18n });
        const wallet = createWalletClient({ account: owner, chain, transport });
        const hash = await wallet.writeContract({
          address: token,
          abi: approveAbi,
          functionName: 'approve',
          args: [X402_CONTRACTS.permit2, MAX_UINT256],
        });
        const receipt = await client.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success') throw new Error(`approve reverted: ${hash}`);
      },
      close: anvil.stop,
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}
