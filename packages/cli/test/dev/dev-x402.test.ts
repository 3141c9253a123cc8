import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// `tollway dev --x402` as a person runs it: the built bin (`npm run build` first) in a child
// process, in a fresh folder, with a real anvil.
const BIN = fileURLToPath(new URL('../../bin/tollway.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** Whether the process `pid` is still alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the bin; resolves when it exits. `onOutput` sees stdout as it grows. */
function start(args: string[], cwd: string, onOutput: (stdout: string, kill: () => void) => void) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput(stdout, () => child.kill('SIGINT'));
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function anvilPid(stdout: string): number {
  const match = /SANDBOX anvil pid (\d+)/.exec(stdout);
  if (match?.[1] === undefined) throw new Error(`no anvil pid in:\n${stdout}`);
  return Number(match[1]);
}

describe.skipIf(!existsSync(BUILT))('tollway dev --x402 (the built command, with anvil)', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-x402-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('--once pays the L402 demo and an x402 demo settled on the local chain, then exits 0', async () => {
    const { code, stdout, stderr } = await start(
      ['dev', '--once', '--x402', '--port', '0'],
      fresh(),
      () => {},
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('SANDBOX');
    expect(stdout).toContain('test tokens');
    // An x402 payment buys one request (a second fetch pays again); only L402 buys a token.
    expect(stdout).toContain('an L402 token valid for 1 hour, or x402 for one request');
    expect(stdout).toMatch(/2\. 402 Payment Required +PAYMENT-REQUIRED: x402 v2 exact/);
    expect(stdout).toMatch(/3\. Signed authorization +EIP-3009 transferWithAuthorization/);
    expect(stdout).toMatch(/4\. Settled +transaction 0x[0-9a-f]{64}/);
    expect(stdout).toMatch(/balances before +payer 10\.000000 USDC, payTo 0\.000000 USDC/);
    expect(stdout).toMatch(/balances after +payer 9\.980000 USDC, payTo 0\.020000 USDC/);
    expect(stdout).toMatch(/x402 demo done: settled in 0x[0-9a-f]{64}, got 200\./);
    expect(alive(anvilPid(stdout))).toBe(false);
  }, 90_000);

  it('prints a ready x402 fetch line, and Ctrl-C stops it without leaving anvil behind', async () => {
    let stopped = false;
    const { code, stdout } = await start(['dev', '--x402', '--port', '0'], fresh(), (out, kill) => {
      if (!stopped && out.includes('Press Ctrl-C')) {
        stopped = true;
        kill();
      }
    });
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /npx tollway fetch 'http:\/\/127\.0\.0\.1:\d+\/v1\/stream' --evm-key 0x[0-9a-f]{64} --evm-asset eip155:31337:0x[0-9a-fA-F]{40} --usd-per-btc 100000/,
    );
    expect(stdout).toContain('Stopping…');
    expect(alive(anvilPid(stdout))).toBe(false);
  }, 90_000);
});
