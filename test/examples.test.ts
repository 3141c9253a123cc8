// Smoke-tests every runnable example in examples/: start it on a free port with its own dev
// Lightning files, check the paid route answers 402, then run examples/pay.js as a reader would:
// it pays the L402 invoice from another wallet of the same dev network (the SQLite file the
// example opened) and retries with the credential (200). Then stop the example.
// The examples import the built package: under CI a missing build fails the run; locally the
// tests are skipped loudly (run `npm run build -w @tollway/sdk`).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = ['node', 'express', 'fastify', 'hono'].every((name) =>
  existsSync(join(root, `packages/sdk/dist/adapters/${name}.js`)),
);
const examples = ['node-http', 'express', 'fastify', 'hono'];

if (!built && process.env.CI) {
  throw new Error('examples need the built SDK: run `npm run build -w @tollway/sdk` first');
}
if (!built) {
  const bar = '!'.repeat(100);
  console.warn(
    `\n${bar}\nEXAMPLE TESTS SKIPPED: packages/sdk/dist is missing. Run \`npm run build -w @tollway/sdk\`.\n${bar}\n`,
  );
}

/** Starts an example and resolves with the URL it prints, or rejects with what it printed. */
function start(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`no URL within 20 s:\n${output}`)), 20_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0];
      if (url !== undefined) {
        clearTimeout(timer);
        resolve(url);
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

describe.skipIf(!built)('examples', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  for (const example of examples) {
    it(`${example}: 402, pay through the dev node, 200`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `tollway-example-${example}-`));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      const child = spawn(process.execPath, [join(root, 'examples', example, 'server.js')], {
        cwd: root,
        env: { ...process.env, PORT: '0', TOLLWAY_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      cleanup.push(async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      });
      const url = await start(child);

      const free = await fetch(url);
      expect(free.status).toBe(200);
      const unpaid = await fetch(`${url}/forecast`);
      expect(unpaid.status).toBe(402);
      expect(unpaid.headers.get('www-authenticate')).toMatch(/^LSAT macaroon=/);

      const paid = await promisify(execFile)(
        process.execPath,
        [join(root, 'examples/pay.js'), `${url}/forecast`],
        { cwd: root, env: { ...process.env, TOLLWAY_DIR: dir } },
      );
      const [status, ...body] = paid.stdout.trim().split(' ');
      expect(status).toBe('200');
      expect(JSON.parse(body.join(' '))).toEqual({ city: 'Oslo', sky: 'clear', paidWith: 'l402' });
    });
  }
});
