/**
 * Several `tollway serve` processes (the built CLI) sharing one PostgreSQL database, one dev
 * Lightning node over HTTP (wallet `shop` sells, `agent` buys) and one master secret: the set-up
 * of the suites about instances behaving as one. Needs `npm run build` (CI builds before testing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { createMasterSecret } from '@tollway/sdk/server';
import type { TestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Instance, startInstance } from './instances.js';

export interface Cluster {
  network: DevNetwork;
  /** The connection string of the instances' database. */
  database: string;
  /** The running instances, in the order they were started. */
  instances: Instance[];
  /**
   * Writes instance `name`'s YAML: `listen`, its own `dataDir`, the shared `store`, `lightning` and
   * `secrets`, then `lines` (`admin`, `paywall`, `services`…). Returns its path.
   */
  writeConfig(name: string, lines: readonly string[]): string;
  /** Starts instance `name` with `lines` and adds it to `instances`. */
  start(name: string, lines: readonly string[]): Promise<Instance>;
  /** The instance at `index`; throws when there is none. */
  instance(index: number): Instance;
  /** Stops every instance with `signal` and waits for them to exit. */
  stopAll(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the instances (with `signal`), the dev node and its server; deletes the files. */
  close(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the dev node and creates the database; no instance yet. `env` is what every instance
 * gets besides `TOLLWAY_TEST_SECRETS` (e.g. `UPSTREAM`).
 */
export async function startCluster(
  postgres: TestPostgres,
  env: NodeJS.ProcessEnv,
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-cluster-'));
  const network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop');
  network.openWallet('agent');
  const devServer: DevServer = await createDevServer({ network });
  const database = await postgres.createDatabase();
  const instanceEnv = { ...env, TOLLWAY_TEST_SECRETS: createMasterSecret() };
  const instances: Instance[] = [];
  const writeConfig = (name: string, lines: readonly string[]) => {
    const file = join(dir, `${name}.yaml`);
    const head = [
      'listen: 127.0.0.1:0',
      `dataDir: ./${name}`,
      `store: ${database}`,
      `lightning: dev+${devServer.url}?wallet=shop&token=${shop.token}`,
      'secrets: { env: TOLLWAY_TEST_SECRETS }',
    ];
    writeFileSync(file, [...head, ...lines, ''].join('\n'));
    return file;
  };
  const stopAll = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const stopping = instances.splice(0);
    for (const instance of stopping) instance.process.kill(signal);
    await Promise.all(stopping.map((instance) => instance.exited));
  };
  return {
    network,
    database,
    instances,
    writeConfig,
    start: async (name, lines) => {
      const instance = await startInstance(writeConfig(name, lines), instanceEnv);
      instances.push(instance);
      return instance;
    },
    instance: (index) => {
      const found = instances[index];
      if (found === undefined) throw new Error(`no instance ${index}`);
      return found;
    },
    stopAll,
    close: async (signal) => {
      await stopAll(signal);
      await devServer.close();
      await network.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
