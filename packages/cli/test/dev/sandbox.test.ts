import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevSandbox } from '../../src/dev/dev.js';
import { SAMPLE_PRICES } from '../../src/dev/sample-upstream.js';

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

  it('meters the OpenAI-compatible chat: a balance bought, each call charged its tokens', async () => {
    const sandbox = await start();
    try {
      const bought = await sandbox.meteredDemo();
      if (!bought.ok) throw new Error(bought.message);
      // "Write a haiku about Lisbon.": 27 characters → 7 tokens, + 4 for the message; the
      // 25-word reply: 25 tokens. At 20 000 and 60 000 sat per million: 11 × 20 + 25 × 60 msat.
      expect(SAMPLE_PRICES.completions.models['tollway-mini']).toEqual({
        input: '20000 sat',
        output: '60000 sat',
      });
      expect(bought).toMatchObject({
        boughtMsat: 100_000n,
        chargedMsat: 1720n,
        remainingMsat: 100_000n - 1720n,
        usage: { promptTokens: 11, completionTokens: 25 },
      });
      expect(bought.reservedMsat).toBeGreaterThan(bought.chargedMsat);
      const stream = await fetch(`${sandbox.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: bought.authorization },
        body: JSON.stringify({
          model: 'tollway-max',
          stream: true,
          messages: [{ role: 'user', content: 'Write a haiku about Lisbon.' }],
        }),
      });
      const text = await stream.text();
      expect(text).not.toContain('"choices":[]');
      // 11 × 100 + 25 × 300 msat; 256 output tokens (the sandbox's default) were held.
      expect(stream.headers.get('tollway-reserved')).toMatch(/^\d+ msat$/);
      expect(text).toMatch(/data: \[DONE\]\n\n: tollway-charged 8600 msat\n/);
    } finally {
      await sandbox.close();
    }
  });

  it('runs an MPP session on the metered route: three calls, a top-up, the unspent deposits refunded', async () => {
    const sandbox = await start();
    try {
      const agent = sandbox.network.backend('demo-agent');
      const before = (await agent.getBalance()).msat;
      const session = await sandbox.sessionDemo();
      if (!session.ok) throw new Error(session.message);
      // Each call is the metered demo's: 1720 msat. Two deposits of 100 sat, 200 000 − 5160 msat
      // unspent, refunded in whole sats.
      expect(session).toMatchObject({
        depositedMsat: 200_000n,
        chargedMsat: [1720n, 1720n, 1720n],
        refundMsat: 194_000n,
        netMsat: 6000n,
      });
      expect(before - (await agent.getBalance()).msat).toBe(6000n);
    } finally {
      await sandbox.close();
    }
  });
});
