import { describe, expect, it } from 'vitest';
import { runCli } from '../run-cli.js';

describe('tollway dev usage', () => {
  it('refuses a port that is not one, before starting anything', async () => {
    for (const port of ['abc', '-1', '65535', '8402x']) {
      const { code, stderr } = await runCli('dev', '--port', port);
      expect([code, stderr]).toEqual([
        64,
        'tollway dev: --port must be a port number (0 picks a free one)\n',
      ]);
    }
  });

  it('is listed in the help', async () => {
    const { code, stdout } = await runCli('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/dev \[options\] +Start a SANDBOX/);
  });
});
