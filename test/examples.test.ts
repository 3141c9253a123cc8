// Runs every example in examples/ the way its README says: `tollway dev node` (the built bin) gives
// the dev Lightning node and two connection strings; each example starts with TOLLWAY_LIGHTNING on
// a free port and answers 402 on its paid route; then the README's exact `npx tollway fetch` line
// pays it with TOLLWAY_WALLET (200, paid with L402), and examples/pay.js pays it again by hand.
// The paywall guide ends with the same `tollway fetch` line, checked here too; the gateway guide's
// quick-start config runs in front of a local API and its closing `tollway fetch` line pays it.
// The examples import the built packages: under CI a missing build fails the run; locally the
// tests are skipped loudly (run `npm run build`).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const built = [
  ...['node', 'express', 'fastify', 'hono'].map((name) => `packages/sdk/dist/adapters/${name}.js`),
  'packages/cli/dist/main.js',
].every((file) => existsSync(join(root, file)));
const examples = ['node-http', 'express', 'fastify', 'hono'];

if (!built && process.env.CI) {
  throw new Error('examples need the build: run `npm run build` first');
}
if (!built) {
  const bar = '!'.repeat(100);
  console.warn(
    `\n${bar}\nEXAMPLE TESTS SKIPPED: packages/*/dist is missing. Run \`npm run build\`.\n${bar}\n`,
  );
}

/** Resolves with the first match of `pattern` in what `child` prints, or rejects with the output. */
function waitFor(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within 20 s:\n${output}`)),
      20_000,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${output}`));
    });
  });
}

/** Stops `child` (SIGTERM) and waits until it is gone. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The `npx tollway fetch …` line of a document's code blocks. */
function fetchLine(file: string): string {
  const line = /^npx tollway fetch (\S+) (.*?)\s*(#.*)?$/m.exec(
    readFileSync(join(root, file), 'utf8'),
  );
  if (line === null) throw new Error(`${file}: no \`npx tollway fetch\` line`);
  return line[0].replace(/\s*#.*$/, '');
}

describe.skipIf(!built)('examples', () => {
  let dir: string;
  let node: ChildProcess;
  let lightning: string;
  let wallet: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollway-examples-'));
    node = spawn(
      process.execPath,
      [join(root, 'packages/cli/bin/tollway.js'), 'dev', 'node', '--port', '0'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const printed = await waitFor(
      node,
      /export TOLLWAY_LIGHTNING='([^']+)'[\s\S]*export TOLLWAY_WALLET='([^']+)'/,
    );
    [, lightning = '', wallet = ''] = printed;
  });

  afterAll(async () => {
    if (node !== undefined) await stop(node);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('the paywall guide ends with the examples’ `tollway fetch` line', () => {
    const guide = readFileSync(join(root, 'docs/guides/paywall.md'), 'utf8').trimEnd();
    const line = fetchLine('docs/guides/paywall.md');
    expect(guide.endsWith(`${line}\n\`\`\``)).toBe(true);
    for (const example of examples) expect(fetchLine(`examples/${example}/README.md`)).toBe(line);
  });

  it('the gateway guide: its quick-start config in front of an API, paid by its closing fetch line', async () => {
    const guide = readFileSync(join(root, 'docs/guides/gateway.md'), 'utf8');
    expect(guide.trimEnd().endsWith(`${fetchLine('docs/guides/gateway.md')}\n\`\`\``)).toBe(true);
    const yaml = /```yaml\n(# tollway\.yaml\n[\s\S]*?)```/.exec(guide)?.[1];
    if (yaml === undefined) throw new Error('gateway.md: no `# tollway.yaml` block');
    const api = createServer((req, res) => res.end(JSON.stringify({ path: req.url })));
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    // The guide's file, with free ports for the gateway and the API.
    const config = join(dir, 'tollway.yaml');
    writeFileSync(
      config,
      yaml
        .replace('8402', String(port))
        .replace(
          'http://127.0.0.1:8080',
          `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
        ),
    );
    const gateway = spawn(
      process.execPath,
      [join(root, 'packages/cli/bin/tollway.js'), 'serve', '--config', config],
      {
        cwd: dir,
        env: { ...process.env, TOLLWAY_LIGHTNING: lightning, TOLLWAY_ADMIN_TOKEN: 'a'.repeat(32) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      await waitFor(gateway, /tollway gateway on/);
      const [, ...args] = fetchLine('docs/guides/gateway.md')
        .replace('127.0.0.1:8402', `127.0.0.1:${port}`)
        .split(' ');
      const paid = await run('npx', args, {
        cwd: root,
        env: {
          ...process.env,
          TOLLWAY_WALLET: wallet,
          TOLLWAY_AGENT_DB: join(dir, 'gateway-agent.sqlite'),
        },
      });
      expect(JSON.parse(paid.stdout)).toEqual({ path: '/today' });
      expect(paid.stderr).toMatch(/^tollway fetch: paid 10 sat \+ 0 sat fee with l402 /);
    } finally {
      await stop(gateway);
      api.close();
    }
  });

  for (const example of examples) {
    it(`${example}: 402, then the README's tollway fetch line pays it (200), and so does pay.js`, async () => {
      const child = spawn(process.execPath, [join(root, 'examples', example, 'server.js')], {
        cwd: dir,
        env: {
          ...process.env,
          PORT: '0',
          TOLLWAY_DIR: join(dir, example),
          TOLLWAY_LIGHTNING: lightning,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const [origin = ''] = await waitFor(child, /http:\/\/127\.0\.0\.1:\d+/);
        expect((await fetch(origin)).status).toBe(200);
        const unpaid = await fetch(`${origin}/forecast`);
        expect(unpaid.status).toBe(402);
        expect(unpaid.headers.get('www-authenticate')).toMatch(/^LSAT macaroon=/);

        // The README's line, with the example's own port.
        const [, ...args] = fetchLine(`examples/${example}/README.md`)
          .replace('http://127.0.0.1:3000', origin)
          .split(' ');
        const paid = await run('npx', args, {
          cwd: root,
          env: {
            ...process.env,
            TOLLWAY_WALLET: wallet,
            TOLLWAY_AGENT_DB: join(dir, `${example}-agent.sqlite`),
          },
        });
        expect(JSON.parse(paid.stdout)).toEqual({ city: 'Oslo', sky: 'clear', paidWith: 'l402' });
        expect(paid.stderr).toMatch(/^tollway fetch: paid 10 sat \+ 0 sat fee with l402 /);

        const byHand = await run(
          process.execPath,
          [join(root, 'examples/pay.js'), `${origin}/forecast`],
          {
            cwd: root,
            env: { ...process.env, TOLLWAY_WALLET: wallet },
          },
        );
        const [status, ...body] = byHand.stdout.trim().split(' ');
        expect(status).toBe('200');
        expect(JSON.parse(body.join(' '))).toEqual({
          city: 'Oslo',
          sky: 'clear',
          paidWith: 'l402',
        });
      } finally {
        await stop(child);
      }
    });
  }
});
