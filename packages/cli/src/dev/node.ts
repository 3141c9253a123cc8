/**
 * `tollway dev node`: the dev Lightning node alone (a SANDBOX, play money), to pay your own app. It
 * serves the node's HTTP API, keeps its state where `tollway dev` keeps it
 * (`<dir>/.tollway/dev-lightning.sqlite`, so the wallets are the same), opens a wallet for the app
 * to receive with and one to pay with, and prints both connection strings.
 *
 * While a dev node runs (alone or in the sandbox), `<dir>/.tollway/dev-node.json` (mode 0600) holds
 * its URL and admin token, so that `tollway wallet create <name>` run in the same folder needs no
 * flags.
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatMsat } from '@tollway/sdk';
import { createDevNetwork, createDevServer, type DevWallet } from '@tollway/sdk/lightning/dev';

/** The wallets `tollway dev node` opens: the app's, which receives, and the one that pays. */
const WALLETS = { app: 'shop', payer: 'you' } as const;

const HOST = '127.0.0.1';
const NODE_FILE = 'dev-node.json';

/** Where a running dev node is, as `<dir>/.tollway/dev-node.json` holds it. */
export interface DevNodeAddress {
  url: string;
  adminToken: string;
}

/** The folder of the sandbox's state under `dir`. */
export function stateDirOf(dir: string): string {
  return join(dir, '.tollway');
}

/**
 * Makes the state folder private: mode 0700, and every file in it 0600. It holds the dev node's
 * private key and admin token, every wallet token, the master secrets and the token counters; an
 * older version left the folder 0755 and its databases 0644.
 */
export async function privateStateDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  for (const entry of await readdir(stateDir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(stateDir, entry.name), 0o600);
  }
}

/** Records where the dev node of `stateDir` runs (mode 0600: the admin token creates wallets). */
export async function writeDevNodeAddress(
  stateDir: string,
  address: DevNodeAddress,
): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(join(stateDir, NODE_FILE), `${JSON.stringify(address)}\n`, { mode: 0o600 });
}

/** Forgets where the dev node of `stateDir` runs (it stopped). */
export async function removeDevNodeAddress(stateDir: string): Promise<void> {
  await rm(join(stateDir, NODE_FILE), { force: true });
}

/** Where the dev node started from `dir` runs, or undefined when none was started there. */
export async function readDevNodeAddress(dir: string): Promise<DevNodeAddress | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDirOf(dir), NODE_FILE), 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<DevNodeAddress>;
  if (typeof parsed.url !== 'string' || typeof parsed.adminToken !== 'string') return undefined;
  return { url: parsed.url, adminToken: parsed.adminToken };
}

function isAddressInUse(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'EADDRINUSE';
}

/** Runs `start(port)`; when the port is taken, runs it again on a free port and says so. */
export async function onFreePort<T>(
  port: number,
  what: string,
  start: (port: number) => Promise<T>,
  print: (line: string) => void,
): Promise<T> {
  try {
    return await start(port);
  } catch (error) {
    if (port === 0 || !isAddressInUse(error)) throw error;
    print(`  port ${port} is taken, so the ${what} uses a free port instead`);
    return start(0);
  }
}

/** The connection string of a wallet of the dev node at `nodeUrl`. */
export function devConnection(nodeUrl: string, wallet: DevWallet): string {
  return `dev+${nodeUrl}?wallet=${wallet.name}&token=${wallet.token}`;
}

/** Options of {@link runDevNode}. */
export interface RunDevNodeOptions {
  /** The folder whose `.tollway/` holds the state. */
  dir: string;
  /** The node's port (0: any); a taken port is replaced by a free one. */
  port: number;
  /** Aborted on Ctrl-C: the node stops and `runDevNode` resolves. */
  signal: AbortSignal;
  /** Receives the printout, one line at a time. */
  print: (line: string) => void;
}

/**
 * Runs `tollway dev node` until `signal` aborts; resolves to the exit code.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * process.once('SIGINT', () => stop.abort());
 * process.exitCode = await runDevNode({ dir: process.cwd(), port: 8403, signal: stop.signal, print: console.log });
 * ```
 */
export async function runDevNode(options: RunDevNodeOptions): Promise<number> {
  const { print } = options;
  const stateDir = stateDirOf(options.dir);
  await privateStateDir(stateDir);
  const network = createDevNetwork({ path: join(stateDir, 'dev-lightning.sqlite') });
  try {
    print('tollway dev node: a SANDBOX Lightning node with play money. No real bitcoin moves.');
    print(`state: ${stateDir} (kept across restarts; delete it to start over)`);
    print('');
    const app = network.openWallet(WALLETS.app);
    const payer = network.openWallet(WALLETS.payer);
    const node = await onFreePort(
      options.port,
      'dev Lightning node',
      (port) => createDevServer({ network, host: HOST, port }),
      print,
    );
    try {
      await writeDevNodeAddress(stateDir, { url: node.url, adminToken: network.adminToken });
      print(`  dev Lightning node  ${node.url}  (SANDBOX, play money)`);
      print('');
      print(
        `Your app receives with the dev wallet "${app.name}" (connectLightning, or \`lightning:\` in tollway.yaml):`,
      );
      print(`  export TOLLWAY_LIGHTNING='${devConnection(node.url, app)}'`);
      print(
        `Pay with the dev wallet "${payer.name}" (${formatMsat(network.getWallet(payer.name)?.balanceMsat ?? 0n)} of play money):`,
      );
      print(`  export TOLLWAY_WALLET='${devConnection(node.url, payer)}'`);
      print('  npx tollway fetch <URL of a paid route of your app> --max-cost 100');
      print('Another dev wallet: npx tollway wallet create <name>');
      print('');
      print('Press Ctrl-C to stop. Wallets and balances stay in .tollway/ for the next start.');
      await new Promise<void>((resolve) => {
        if (options.signal.aborted) resolve();
        else options.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      print('Stopping…');
      return 0;
    } finally {
      await removeDevNodeAddress(stateDir);
      await node.close();
    }
  } finally {
    await network.close();
  }
}
