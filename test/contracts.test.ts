import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The local chain deploys packages/sdk/contracts/artifacts.json; it must be what the .sol files
// beside it compile to.
const script = fileURLToPath(new URL('../scripts/compile-contracts.mjs', import.meta.url));

describe('packages/sdk/contracts/artifacts.json', () => {
  it('matches a fresh solc compile of the contracts beside it', () => {
    const run = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
