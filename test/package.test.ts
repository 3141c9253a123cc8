// The npm packages as a newcomer gets them: `npm pack` both workspaces, install the tarballs into an
// empty project, and use what the README promises — the `tollway` bin (`--version`, `tollway dev
// --once`, with `--x402` too), the MCP host snippet run as written, and every subpath of
// `@tollway/sdk`. A second project installs the SDK alone: each subpath loads, or names the package
// the README's install table says it needs. A third check installs the command globally from the
// clone, as the README says, and runs `npx tollway` from another folder.
//
// Cheap by design (the whole suite must stay fast): npm works from its cache (`--prefer-offline`),
// and install scripts are skipped, the SQLite driver being copied from this workspace's compiled one
// (the project pins that exact version) instead of compiled again for a minute and a half.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { satisfies } from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const sdkManifest = JSON.parse(readFileSync(join(root, 'packages/sdk/package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, unknown>;
  peerDependencies: Record<string, string>;
};
const cliManifest = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8')) as {
  version: string;
};
const sqliteManifest = JSON.parse(
  readFileSync(join(root, 'node_modules/better-sqlite3/package.json'), 'utf8'),
) as { version: string };
const built = ['packages/sdk/dist/index.js', 'packages/cli/dist/main.js'].every((file) =>
  existsSync(join(root, file)),
);
if (!built && process.env.CI)
  throw new Error('the package test needs the build: run `npm run build`');

/** Every `@tollway/sdk…` import specifier the SDK's exports map offers. */
const subpaths = Object.keys(sdkManifest.exports).map((key) =>
  key === '.' ? '@tollway/sdk' : `@tollway/sdk/${key.slice(2)}`,
);

/** The README's table of subpaths that need another package: `| `@tollway/sdk/x` | `a`, `b` |`. */
function installTable(): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const [, subpath = '', needs = ''] of readme.matchAll(
    /^\| `(@tollway\/sdk[^`]*)` \| (.+) \|$/gm,
  )) {
    table.set(
      subpath,
      [...needs.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''),
    );
  }
  return table;
}

/** The `allowScripts` object of the README's package.json snippet. */
function readmeAllowScripts(): Record<string, boolean> {
  const block = /```json\n(\{\n\s*"allowScripts"[\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README: no ```json block with "allowScripts"');
  return (JSON.parse(block) as { allowScripts: Record<string, boolean> }).allowScripts;
}

/** Runs `npm …` in `cwd`, quietly; resolves with what it printed. */
async function npm(cwd: string, ...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('npm', [...args, '--no-audit', '--no-fund'], {
    cwd,
    maxBuffer: 16 * 1024 * 1024,
  });
  return `${stdout}${stderr}`;
}

/** An empty project with `dependencies`, the README's `allowScripts`, and `npm install` done. */
async function project(dir: string, dependencies: Record<string, string>): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'newcomer',
      private: true,
      type: 'module',
      dependencies,
      allowScripts: readmeAllowScripts(),
    }),
  );
  const output = await npm(dir, 'install', '--prefer-offline', '--ignore-scripts');
  // The compiled SQLite driver of this workspace: same version (pinned above), same Node.
  const release = join(dir, 'node_modules/better-sqlite3/build/Release');
  if (existsSync(join(dir, 'node_modules/better-sqlite3'))) {
    mkdirSync(release, { recursive: true });
    copyFileSync(
      join(root, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
      join(release, 'better_sqlite3.node'),
    );
  }
  return output;
}

/** Imports each specifier in a fresh Node in `cwd`: `ok`, or the package it could not find. */
async function importEach(cwd: string): Promise<Record<string, string>> {
  const script = `
    const out = {};
    for (const name of ${JSON.stringify(subpaths)}) {
      try { await import(name); out[name] = 'ok'; }
      catch (e) { out[name] = e.code === 'ERR_MODULE_NOT_FOUND' ? 'missing ' + (/package '([^']+)'/.exec(e.message)?.[1] ?? e.message) : String(e); }
    }
    console.log(JSON.stringify(out));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd });
  return JSON.parse(stdout) as Record<string, string>;
}

describe('package-lock.json', () => {
  it('holds only packages that support this Node (npm install warns EBADENGINE otherwise)', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; engines?: { node?: string } }>;
    };
    const unsupported = Object.entries(lock.packages)
      .filter(([, entry]) => entry.engines?.node !== undefined)
      .filter(([, entry]) => !satisfies(process.version, entry.engines?.node ?? '*'))
      .map(([path, entry]) => `${path}@${entry.version}: node ${entry.engines?.node}`);
    expect(unsupported).toEqual([]);
  });
});

describe.skipIf(!built)('the npm packages, installed as a newcomer would', () => {
  let dir: string;
  let tarballs: { sdk: string; cli: string };
  let installOutput: string;
  let app: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollway-package-'));
    const packed = JSON.parse(
      await run(
        'npm',
        ['pack', '-w', '@tollway/sdk', '-w', 'tollway', '--pack-destination', dir, '--json'],
        { cwd: root, maxBuffer: 16 * 1024 * 1024 },
      ).then((r) => r.stdout),
    ) as Array<{ name: string; filename: string }>;
    const file = (name: string) => join(dir, packed.find((p) => p.name === name)?.filename ?? '');
    tarballs = { sdk: file('@tollway/sdk'), cli: file('tollway') };
    app = join(dir, 'app');
    installOutput = await project(app, {
      '@tollway/sdk': tarballs.sdk,
      tollway: tarballs.cli,
      'better-sqlite3': sqliteManifest.version,
    });
  }, 300_000);
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('installs on Node 20 without engine warnings, and the README covers every install script', async () => {
    expect(installOutput).not.toMatch(/EBADENGINE/);
    expect(await npm(app, 'install-scripts', 'ls')).not.toMatch(/not yet covered/);
  });

  it('ships the tollway bin: --version, and npx finds it', async () => {
    const bin = join(app, 'node_modules/.bin/tollway');
    expect((await run(bin, ['--version'])).stdout).toBe(`${cliManifest.version}\n`);
    expect((await run('npx', ['--no', '--', 'tollway', '--version'], { cwd: app })).stdout).toBe(
      `${cliManifest.version}\n`,
    );
  });

  it('runs tollway dev --once, and tollway dev --once --x402 (the contracts ship in the SDK)', async () => {
    const bin = join(app, 'node_modules/.bin/tollway');
    const lightning = await run(bin, ['dev', '--once', '--port', '0'], { cwd: app });
    expect(lightning.stdout).toMatch(/Demo done: paid 10 sat, got 200/);
    const x402 = await run(bin, ['dev', '--once', '--x402', '--port', '0'], { cwd: app });
    expect(x402.stdout).toMatch(/x402 demo done: settled in 0x[0-9a-f]{64}, got 200/);
  }, 120_000);

  it('imports every subpath of @tollway/sdk', async () => {
    const results = await importEach(app);
    expect(Object.keys(results)).toEqual(subpaths);
    for (const result of Object.values(results)) expect(result).toBe('ok');
  });

  it('runs the README MCP host snippet as written', async () => {
    const snippet = /```json\n(\{\n\s*"mcpServers"[\s\S]*?)```/.exec(readme)?.[1];
    const server = (
      JSON.parse(snippet ?? '{}') as {
        mcpServers: Record<string, { command: string; args: string[]; env: object }>;
      }
    ).mcpServers.tollway;
    if (server === undefined) throw new Error('README: no mcpServers.tollway snippet');
    expect(Object.keys(server.env)).toEqual(['TOLLWAY_WALLET']);
    let network: DevNetwork | undefined;
    let node: DevServer | undefined;
    const client = new Client({ name: 'newcomer', version: '1' });
    try {
      network = createDevNetwork({ path: ':memory:' });
      const wallet = network.openWallet('agent');
      node = await createDevServer({ network, port: 0 });
      await client.connect(
        new StdioClientTransport({
          command: server.command,
          args: server.args,
          cwd: app,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? dir,
            TOLLWAY_AGENT_DB: join(dir, 'agent.sqlite'),
            TOLLWAY_WALLET: `dev+${node.url}?wallet=${wallet.name}&token=${wallet.token}`,
          },
          stderr: 'ignore',
        }),
      );
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual([
        'budget',
        'discover',
        'fetch',
        'payments',
        'quote',
      ]);
    } finally {
      await client.close();
      await node?.close();
      await network?.close();
    }
  }, 60_000);

  it('the SDK alone: each subpath loads or needs what the README install table names', async () => {
    const sdkOnly = join(dir, 'sdk-only');
    await project(sdkOnly, { '@tollway/sdk': tarballs.sdk });
    const table = installTable();
    expect(table.size).toBeGreaterThan(0);
    for (const [subpath, result] of Object.entries(await importEach(sdkOnly))) {
      const needs = table.get(subpath);
      if (needs === undefined) {
        expect({ subpath, result }).toEqual({ subpath, result: 'ok' });
      } else {
        expect(needs, `${subpath}: ${result}`).toContain(result.replace(/^missing /, ''));
        for (const name of needs) expect(Object.keys(sdkManifest.peerDependencies)).toContain(name);
      }
    }
  }, 120_000);

  it('installs the command globally from the clone, as the README says; npx finds it anywhere', async () => {
    const prefix = join(dir, 'global');
    const command = /^npm install -g (\S+)/m.exec(readme)?.[1];
    expect(command).toBe('./packages/cli');
    await npm(root, 'install', '-g', '--prefix', prefix, command ?? '');
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const { stdout } = await run('npx', ['--no', '--', 'tollway', '--version'], {
      cwd: elsewhere,
      env: { ...process.env, npm_config_prefix: prefix },
    });
    expect(stdout).toBe(`${cliManifest.version}\n`);
  }, 60_000);
});
