/**
 * Subpaths load what they name: a program that imports the BOLT11 helpers of
 * `@tollway/sdk/lightning` must not load a Lightning backend, NWC's WebSocket client and nostr-tools,
 * or the dev node's HTTP server. Checked against the BUILT package (what users run; `npm test`
 * builds before Vitest) in a child Node process whose module resolution is recorded by a loader
 * hook.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tollway-loads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

/** Runs `script` (an ES module) from the repository root; resolves to every module URL it loaded. */
async function loadedBy(script: string): Promise<string[]> {
  const log = join(dir, `run-${++runs}.log`);
  writeFileSync(log, '');
  await promisify(execFile)(
    process.execPath,
    [
      '--import',
      pathToFileURL(join(dir, 'register.mjs')).href,
      '--input-type=module',
      '-e',
      script,
    ],
    { cwd: root, env: { ...process.env, TOLLWAY_LOAD_LOG: log } },
  );
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

const sdkDist = pathToFileURL(join(root, 'packages/sdk/dist/')).href;

/** The SDK modules among `urls`, as paths inside dist/ (`lightning/bolt11.js`). */
const sdkModules = (urls: string[]) =>
  urls.filter((url) => url.startsWith(sdkDist)).map((url) => url.slice(sdkDist.length));

/** The packages (bare names) and Node built-ins among `urls`. */
const dependencies = (urls: string[]) =>
  new Set(
    urls.flatMap((url) => {
      if (url.startsWith('node:')) return [url];
      const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
      return match ? [match[1]!] : [];
    }),
  );

const BACKENDS = /^lightning\/(lnd|cln|lnbits|phoenixd|nwc|nwc-client|nwc-relay|http|dev\/.*)\.js$/;

describe('@tollway/sdk/lightning (built)', () => {
  it('decodes an invoice and parses connection strings without loading a backend', async () => {
    const urls = await loadedBy(`
      import { createPreimage, decodeInvoice, encodeInvoice, parseLightningConnection } from '@tollway/sdk/lightning';
      const { paymentHash } = createPreimage();
      const invoice = encodeInvoice({ network: 'regtest', amountMsat: 1000n, paymentHash, privateKey: new Uint8Array(32).fill(1) });
      if (decodeInvoice(invoice).paymentHash !== paymentHash) throw new Error('not decoded');
      parseLightningConnection('nostr+walletconnect://' + 'a'.repeat(64) + '?relay=wss://relay.example&secret=' + 'b'.repeat(64));
      parseLightningConnection('dev+http://127.0.0.1:4242?wallet=alice&token=t');
    `);
    const modules = sdkModules(urls);
    expect(modules).toContain('lightning/bolt11.js');
    expect(modules.filter((path) => BACKENDS.test(path))).toEqual([]);
    const loaded = dependencies(urls);
    for (const heavy of ['ws', 'nostr-tools', 'zod', 'node:http', 'node:https', 'node:net']) {
      expect(loaded, heavy).not.toContain(heavy);
    }
  });

  it('connectLightning imports only the backend its connection string names', async () => {
    const urls = await loadedBy(`
      import { connectLightning } from '@tollway/sdk/lightning';
      const ln = await connectLightning('dev+http://127.0.0.1:9?wallet=alice&token=t');
      if (ln.kind !== 'dev') throw new Error(ln.kind);
      await ln.close();
    `);
    const backends = sdkModules(urls).filter((path) => BACKENDS.test(path));
    expect(backends.sort()).toEqual(['lightning/dev/backend.js', 'lightning/http.js']);
    expect(dependencies(urls)).not.toContain('ws');
  });

  it('the NWC entry loads the WebSocket client and nostr-tools (the hook sees packages)', async () => {
    const loaded = dependencies(await loadedBy(`await import('@tollway/sdk/lightning/nwc');`));
    expect(loaded).toContain('ws');
    expect(loaded).toContain('nostr-tools');
  });
});

describe('@tollway/sdk/client (built)', () => {
  it('a paying fetch whose calls need no payment loads no offer parser, BOLT11, wire codec or backend', async () => {
    const urls = await loadedBy(`
      import { createServer } from 'node:http';
      import { createPayingFetch } from '@tollway/sdk/client';
      const server = createServer((req, res) => res.end('free'));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const fetch402 = createPayingFetch({ wallets: 'dev+http://127.0.0.1:9?wallet=alice&token=t' });
      const response = await fetch402('http://127.0.0.1:' + server.address().port + '/');
      if ((await response.text()) !== 'free') throw new Error('not answered');
      await fetch402.close();
      server.close();
    `);
    const modules = sdkModules(urls);
    expect(modules).toContain('client/paying-call.js');
    const paying =
      /^(client\/(offers|refusal|acquire|quote|discovery-formats)|lightning\/(bolt11|secp256k1|connect|dev\/.*)|x402\/(wire|v1|mcp|payment-.*))\.js$/;
    expect(modules.filter((path) => paying.test(path))).toEqual([]);
    const loaded = dependencies(urls);
    for (const heavy of ['zod', '@noble/curves', '@noble/hashes', '@scure/base']) {
      expect(loaded, heavy).not.toContain(heavy);
    }
  });
});
