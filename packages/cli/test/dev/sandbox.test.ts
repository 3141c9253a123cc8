import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevSandbox } from '../../src/dev/dev.js';

describe('the dev sandbox, in process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-sandbox-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const start = () => startDevSandbox({ dir, port: 0, print: () => {}, warn: () => {} });

  it('keeps tokens, wallets and the admin token across a restart', async () => {
    const first = await start();
    const bought = await first.demo();
    const { adminToken } = first;
    const you = first.network.getWallet('you');
    await first.close();
    if (!bought.ok) throw new Error(bought.message);

    const second = await start();
    try {
      const url = `${second.gatewayUrl}/v1/forecast?city=Lisbon`;
      expect((await fetch(url)).status).toBe(402);
      const again = await fetch(url, { headers: { authorization: bought.authorization } });
      expect(again.status).toBe(200);
      expect(second.adminToken).toBe(adminToken);
      expect(second.network.getWallet('you')).toEqual(you);
    } finally {
      await second.close();
    }
  });

  it('puts the prices on the sample routes: free, fixed, by JSON model', async () => {
    const sandbox = await start();
    try {
      const price = async (path: string, init?: RequestInit) => {
        const res = await fetch(`${sandbox.gatewayUrl}${path}`, init);
        if (res.status !== 402) return res.status;
        return ((await res.json()) as { price: { display: string } }).price.display;
      };
      const chat = (model: string): RequestInit => ({
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt: 'hi' }),
      });
      expect(await price('/free/hello')).toBe(200);
      expect(await price('/v1/forecast?city=Oslo')).toBe('10 sat');
      expect(await price('/v1/stream')).toBe('20 sat');
      expect(await price('/v1/chat', chat('tollway-mini'))).toBe('5 sat');
      expect(await price('/v1/chat', chat('tollway-max'))).toBe('50 sat');
    } finally {
      await sandbox.close();
    }
  });
});
