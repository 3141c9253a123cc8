// Security of what the gateway and the sandbox keep on disk: `.tollway/` holds the dev node's
// private key and admin token, every wallet token, the master secrets and the token counters, so
// the folder is 0700 and each file 0600, also when an older version left them readable (finding 8).
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDevSandbox } from '../../src/dev/dev.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-files-'));
  dirs.push(dir);
  return dir;
}

/** Each entry of `.tollway/` with its permission bits, e.g. `dev-lightning.sqlite 600`. */
function modes(stateDir: string): string[] {
  return [
    `. ${(statSync(stateDir).mode & 0o777).toString(8)}`,
    ...readdirSync(stateDir).map(
      (name) => `${name} ${(statSync(join(stateDir, name)).mode & 0o777).toString(8)}`,
    ),
  ];
}

describe('the sandbox keeps its secrets private (finding 8)', () => {
  it('creates .tollway/ 0700 and every file in it 0600', async () => {
    const dir = freshDir();
    const sandbox = await startDevSandbox({ dir, port: 0, print: () => {}, warn: () => {} });
    try {
      await sandbox.demo();
      const found = modes(join(dir, '.tollway'));
      expect(found).toContain('. 700');
      expect(found).toContain('dev-lightning.sqlite 600');
      expect(found).toContain('tollway.sqlite 600');
      expect(found.filter((entry) => !/ (600|700)$/.test(entry))).toEqual([]);
    } finally {
      await sandbox.close();
    }
  });

  it('tightens a .tollway/ an older version left readable by others', async () => {
    const dir = freshDir();
    const stateDir = join(dir, '.tollway');
    mkdirSync(stateDir, { mode: 0o755 });
    writeFileSync(join(stateDir, 'admin-token'), 'a'.repeat(48), { mode: 0o644 });
    chmodSync(stateDir, 0o755);
    const sandbox = await startDevSandbox({ dir, port: 0, print: () => {}, warn: () => {} });
    try {
      expect(modes(stateDir).filter((entry) => !/ (600|700)$/.test(entry))).toEqual([]);
    } finally {
      await sandbox.close();
    }
  });
});
