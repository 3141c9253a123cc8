import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The tests deploy contracts/artifacts.json; it must be what contracts/*.sol compiles to.
const script = fileURLToPath(new URL('../scripts/compile-contracts.mjs', import.meta.url));

describe('contracts/artifacts.json', () => {
  it('matches a fresh solc compile of contracts/*.sol', () => {
    const run = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
