// A command that cannot listen because another program holds its port says so with the coded error
// `port_in_use`, the address and what to do, and exits 1: no raw EADDRINUSE.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-port-'));
let taken: Server;
let port: number;
let network: DevNetwork;
let node: DevServer;
let wallet: string;

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  port = (taken.address() as { port: number }).port;
  network = createDevNetwork({ path: ':memory:' });
  const agent = network.openWallet('agent');
  node = await createDevServer({ network });
  wallet = `dev+${node.url}?wallet=agent&token=${agent.token}`;
});

afterAll(async () => {
  taken.close();
  await node.close();
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a port another program holds', () => {
  it('tollway serve: port_in_use naming the address and the config fields, exit 1', async () => {
    const config = join(dir, 'tollway.yaml');
    writeFileSync(
      config,
      [
        `listen: 127.0.0.1:${port}`,
        `dataDir: ${join(dir, 'data')}`,
        `lightning: '${wallet}'`,
        'services: []',
      ].join('\n'),
    );
    const run = await runCli('serve', '--config', config);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `tollway serve: port_in_use: 127.0.0.1:${port} is already in use by another program; stop it, or choose another port (\`listen\`, \`admin.listen\` or \`metrics.listen\` in the config)\n`,
    );
  });

  it('tollway mcp --http: port_in_use, exit 1', async () => {
    const run = await runCli(
      'mcp',
      '--wallet',
      wallet,
      '--db',
      join(dir, 'agent.sqlite'),
      '--http',
      String(port),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `tollway mcp: port_in_use: 127.0.0.1:${port} is already in use by another program; stop it, or give --http another port\n`,
    );
  });
});
