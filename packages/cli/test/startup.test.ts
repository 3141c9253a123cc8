// The command starts with what it runs, nothing more: `tollway --version` loads commander and the
// command definitions only, and `tollway fetch` loads neither the gateway, the MCP server, the dev
// sandbox nor anything EVM — nor, until a 402 asks for a payment, anything that pays. Checked against the built bin (what users run; `npm test` builds before
// Vitest) in a child process whose module resolution a loader hook records. Start-up time itself is
// measured by bench/cli.js.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/tollway.js');
const dir = mkdtempSync(join(tmpdir(), 'tollway-startup-'));
let server: Server;
let url: string;

writeFileSync(
  join(dir, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.TOLLWAY_LOAD_LOG, result.url + '\\n');
  return result;
}
`,
);
writeFileSync(
  join(dir, 'register.mjs'),
  `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`,
);

let runs = 0;

/** Runs the bin with `args`; resolves to the modules it loaded, as paths below the repository. */
async function loadedBy(...args: string[]): Promise<string[]> {
  const log = join(dir, `run-${++runs}.log`);
  writeFileSync(log, '');
  await promisify(execFile)(
    process.execPath,
    ['--import', pathToFileURL(join(dir, 'register.mjs')).href, bin, ...args],
    { env: { ...process.env, TOLLWAY_LOAD_LOG: log, TOLLWAY_AGENT_DB: join(dir, 'agent.sqlite') } },
  );
  const repo = pathToFileURL(root).href;
  const urls = new Set(readFileSync(log, 'utf8').split('\n'));
  return [...urls].filter((u) => u.startsWith(repo)).map((u) => u.slice(repo.length));
}

beforeAll(async () => {
  server = createServer((_req, res) => res.end('free'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tollway start-up', () => {
  it('--version loads commander and the command definitions, no SDK protocol or wallet code', async () => {
    const loaded = await loadedBy('--version');
    const packages = new Set(
      loaded
        .filter((path) => path.startsWith('node_modules/'))
        .map((path) =>
          path
            .split('/')
            .slice(1, path.startsWith('node_modules/@') ? 3 : 2)
            .join('/'),
        ),
    );
    expect([...packages]).toEqual(['commander']);
    // The SDK's root entry (errors, money, hex) and nothing of a subpath (protocols, wallets, …).
    const sdk = loaded.filter((path) => path.startsWith('packages/sdk/'));
    expect(sdk).toContain('packages/sdk/dist/index.js');
    expect(
      sdk.filter((path) => !/^packages\/sdk\/dist\/(internal\/)?[a-z0-9-]+\.js$/.test(path)),
    ).toEqual([]);
  });

  it('fetch loads the client, not the gateway, the MCP server, the sandbox or EVM code', async () => {
    const wallet = 'dev+http://127.0.0.1:9?wallet=agent&token=t';
    const loaded = await loadedBy('fetch', url, '--json', '--wallet', wallet);
    expect(loaded).toContain('packages/sdk/dist/client/index.js');
    // Nor, for a call that needs no payment, what pays: offer parsers, BOLT11 and its curve, the
    // x402 wire codecs (zod), the wallet's backend.
    const paying = loaded.filter((path) =>
      /^node_modules\/(zod|@noble|@scure)\/|^packages\/sdk\/dist\/(client\/(offers|refusal|acquire|quote)|lightning\/(bolt11|secp256k1|connect\.js|dev\/)|x402\/(?!mcp-messages))/.test(
        path,
      ),
    );
    expect(paying).toEqual([]);
    const unwanted = loaded.filter((path) =>
      /^packages\/cli\/dist\/(gateway|mcp|dev)\/|^node_modules\/(viem|@x402|@modelcontextprotocol|@foundry-rs|pino|prom-client|yaml|pg)\/|^packages\/sdk\/dist\/(x402\/(index|facilitator|local-chain)|server\/|stores\/(memory|sqlite|postgres))/.test(
        path,
      ),
    );
    expect(unwanted).toEqual([]);
  });
});
