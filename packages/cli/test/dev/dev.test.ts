import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `tollway dev` as a person runs it: the built bin in a child process, in a fresh folder.
const BIN = fileURLToPath(new URL('../../bin/tollway.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion. */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The numbered step titles of a demo printout, in order. */
function steps(stdout: string): string[] {
  return [...stdout.matchAll(/^ {2}(\d)\. (\S.*?) {2,}/gm)].map((m) => `${m[1]} ${m[2]}`);
}

function balanceOfAgent(stdout: string): bigint {
  const match = /"demo-agent" now holds (\d+) sat of play money/.exec(stdout);
  if (match?.[1] === undefined) throw new Error(`no balance in:\n${stdout}`);
  return BigInt(match[1]);
}

describe('tollway dev (the built command, in a child process)', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(() => {
    if (!existsSync(BUILT)) throw new Error('packages/cli is not built: run `npm run build` first');
  });
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('--once pays for a request end to end, printing each step, and a restart keeps the state', async () => {
    const dir = fresh();
    const first = await run(process.execPath, [BIN, 'dev', '--once', '--port', '0'], dir);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('SANDBOX');
    expect(steps(first.stdout)).toEqual([
      '1 Request',
      '2 402 Payment Required',
      '3 Invoice decoded',
      '4 Paid',
      '5 Retry',
      '6 200 OK',
      '1 Request',
      '2 402 Payment Required',
      '3 Balance bought',
      '4 Call',
      '5 200 OK',
      '1 Request',
      '2 402 Payment Required',
      '3 Deposit paid',
      '4 Call (open)',
      '5 Call 2 (bearer)',
      '6 Call 3 (bearer)',
      '7 Top-up',
      '8 Close',
    ]);
    expect(first.stdout).toMatch(/402 Payment Required +price 10 sat/);
    expect(first.stdout).toMatch(
      /Metered demo done: bought 100 sat, reserved [\d.]+ sat, charged 1\.72 sat, 98\.28 sat left\./,
    );
    expect(first.stdout).toContain(
      'Session demo done: deposited 200 sat, 3 calls charged, 194 sat refunded, net cost 6 sat.',
    );
    expect(first.stdout).toMatch(/payment hash {2}[0-9a-f]{64}/);
    expect(first.stdout).toMatch(/preimage {6}[0-9a-f]{64}/);
    expect(first.stdout).toMatch(/Authorization: L402 AgEE/);
    expect(first.stdout).toContain('"city":"Lisbon"');
    expect(first.stdout).toContain('Demo done: paid 10 sat, got 200.');
    const token = readFileSync(join(dir, '.tollway', 'admin-token'), 'utf8');

    // Second start in the same folder, with the asked-for port taken: a free one is used, and the
    // agent's balance goes on from where it was.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const second = await run(
        process.execPath,
        [BIN, 'dev', '--once', '--port', String(port)],
        dir,
      );
      expect(second.code).toBe(0);
      expect(second.stdout).toContain(
        `port ${port} is taken, so the gateway uses a free port instead`,
      );
      // The first run's metered demo bought a 100 sat balance after its line was printed, and its
      // session cost 6 sat.
      expect(balanceOfAgent(second.stdout)).toBe(balanceOfAgent(first.stdout) - 116n);
    } finally {
      blocker.close();
    }
    expect(readFileSync(join(dir, '.tollway', 'admin-token'), 'utf8')).toBe(token);
  });

  it('keeps running, prints a fetch command another terminal can run, and stops on Ctrl-C', async () => {
    const dir = fresh();
    const dev: ChildProcess = spawn(process.execPath, [BIN, 'dev', '--port', '0'], { cwd: dir });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) =>
      dev.on('close', (code) => resolve(code)),
    );
    try {
      const command = await new Promise<string>((resolve, reject) => {
        dev.stdout?.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const line = /^ {2}(npx tollway fetch .*)$/m.exec(stdout)?.[1];
          if (line !== undefined && stdout.includes('Press Ctrl-C')) resolve(line);
        });
        void exited.then(() => reject(new Error(`tollway dev ended early:\n${stdout}`)));
      });
      expect(stdout).toMatch(
        /dashboard {2}http:\/\/127\.0\.0\.1:\d+\/_tollway\/dashboard\?token=[0-9a-f]{48}/,
      );
      expect(command).toMatch(
        /--wallet 'dev\+http:\/\/127\.0\.0\.1:\d+\?wallet=you&token=[0-9a-f]{64}' --max-cost 100$/,
      );

      // Exactly what a person would paste, with `npx tollway` being this checkout's built bin.
      const pasted = command.replace(
        /^npx tollway /,
        `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} `,
      );
      // The agent's own ledger goes to a temporary file rather than the home folder.
      const elsewhere = fresh();
      const fetched = await run('sh', ['-c', pasted], elsewhere, {
        TOLLWAY_AGENT_DB: join(elsewhere, 'agent.sqlite'),
      });
      expect(fetched.code).toBe(0);
      expect(JSON.parse(fetched.stdout)).toMatchObject({ city: 'Paris' });
      expect(fetched.stderr).toMatch(/^tollway fetch: paid 10 sat \+ 0 sat fee with l402 /);

      // Another dev wallet in one command, from the sandbox's folder.
      const created = await run(process.execPath, [BIN, 'wallet', 'create', 'mine'], dir);
      expect(created.code).toBe(0);
      expect(JSON.parse(created.stdout)).toMatchObject({
        name: 'mine',
        balanceMsat: '1000000000',
        connectionString: expect.stringMatching(
          /^dev\+http:\/\/127\.0\.0\.1:\d+\?wallet=mine&token=/,
        ),
      });
    } finally {
      dev.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain('Stopping…');
    expect(existsSync(join(dir, '.tollway/dev-node.json'))).toBe(false);
  });
});

describe('tollway dev node (the built command, in a child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-node-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a wallet for the app and one that pays it, makes more on request, and stops on Ctrl-C', async () => {
    const node: ChildProcess = spawn(process.execPath, [BIN, 'dev', 'node', '--port', '0'], {
      cwd: dir,
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) =>
      node.on('close', (code) => resolve(code)),
    );
    try {
      const [app = '', payer = ''] = await new Promise<string[]>((resolve, reject) => {
        node.stdout?.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const match =
            /export TOLLWAY_LIGHTNING='([^']+)'[\s\S]*export TOLLWAY_WALLET='([^']+)'[\s\S]*Press Ctrl-C/.exec(
              stdout,
            );
          if (match !== null) resolve([match[1] ?? '', match[2] ?? '']);
        });
        void exited.then(() => reject(new Error(`tollway dev node ended early:\n${stdout}`)));
      });
      expect(stdout).toContain('SANDBOX');
      expect(app).toMatch(/wallet=shop&token=[0-9a-f]{64}$/);
      // The app's wallet issues an invoice; the printed paying wallet pays it.
      const invoice = await run(
        process.execPath,
        [BIN, 'wallet', 'invoice', '21', '--wallet', app],
        dir,
      );
      expect(invoice.code).toBe(0);
      const { paymentRequest } = JSON.parse(invoice.stdout) as { paymentRequest: string };
      const paid = await run(
        process.execPath,
        [BIN, 'wallet', 'pay', paymentRequest, '--wallet', payer],
        dir,
      );
      expect([paid.code, JSON.parse(paid.stdout).amountMsat]).toEqual([0, '21000']);
      const created = await run(process.execPath, [BIN, 'wallet', 'create', 'another'], dir);
      expect(JSON.parse(created.stdout)).toMatchObject({
        name: 'another',
        balanceMsat: '1000000000',
      });
    } finally {
      node.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    const after = await run(process.execPath, [BIN, 'wallet', 'create', 'late'], dir);
    expect([after.code, after.stderr]).toEqual([
      64,
      expect.stringContaining('no dev node runs from this folder'),
    ]);
  });
});
