// Security of what a flood costs and of the state that counts money: unpaid 402s cost an invoice
// each, so their number is capped across all client networks, not only per network, and their
// records expire with their invoices (finding 3); a store that lost its SQLite file fails health and
// refuses the requests it would count (finding 4); a refused credential still counts against the
// challenge limit, since its 401 carries a fresh invoice, and the 429 says why it was refused
// (finding 11).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { payL402 } from '../gateway/support.js';
import { createHarness, type Harness, sendRaw } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

function pricedService(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'api', upstream: harness.upstream.url, price: '1 sat', ...extra };
}

function countChallenges(gateway: Gateway): number {
  const db = new Database(join(harness.dataDir(gateway), 'tollway.sqlite'), { readonly: true });
  try {
    return Number(db.prepare('SELECT count(*) AS n FROM challenges').pluck().get());
  } finally {
    db.close();
  }
}

describe('a 402 flood is bounded (finding 3)', () => {
  it('deletes challenge records once their invoices expired', async () => {
    const gateway = await harness.start({
      paywall: { challengeExpiry: 3 },
      services: [pricedService()],
    });
    for (let i = 0; i < 10; i++) expect((await fetch(`${gateway.url}/x`)).status).toBe(402);
    await vi.waitFor(() => expect(countChallenges(gateway)).toBe(10), { timeout: 3000 });
    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect((await fetch(`${gateway.url}/x`)).status).toBe(402);
    await vi.waitFor(() => expect(countChallenges(gateway)).toBe(1), { timeout: 3000 });
  });

  it('caps challenges across every client network, by default', async () => {
    const gateway = await harness.start({ services: [pricedService()] });
    const statuses: number[] = [];
    // 30 /24 networks on loopback, 5 requests each: within each network's own limit (burst 20).
    for (let network = 1; network <= 30; network++) {
      for (let i = 0; i < 5; i++) {
        const answer = await sendRaw(
          gateway.url,
          `GET /x HTTP/1.1\r\nHost: ${new URL(gateway.url).host}\r\nConnection: close\r\n\r\n`,
          { localAddress: `127.0.${network}.1` },
        );
        statuses.push(answer.status ?? 0);
      }
    }
    const issued = statuses.filter((status) => status === 402).length;
    expect(issued).toBeGreaterThanOrEqual(100);
    expect(issued).toBeLessThan(125);
    expect(statuses.filter((status) => status === 429).length).toBe(150 - issued);
  });

  it('takes the total cap from paywall.rateLimits.challengesTotal, or none with false', async () => {
    const capped = await harness.start({
      paywall: { rateLimits: { challengesTotal: { requests: 1, per: '1h', burst: 3 } } },
      services: [pricedService()],
    });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${capped.url}/x`)).status);
    expect(statuses).toEqual([402, 402, 402, 429, 429]);
    const limited = await fetch(`${capped.url}/x`);
    expect(await limited.json()).toMatchObject({
      code: 'rate_limited',
      detail: expect.stringContaining('Too many payment challenges'),
    });
    const open = await harness.start({
      paywall: { rateLimits: { challengesTotal: false, challenges: false } },
      services: [pricedService()],
    });
    for (let i = 0; i < 30; i++) expect((await fetch(`${open.url}/x`)).status).toBe(402);
  });
});

describe('a store that lost its file stops the money paths (finding 4)', () => {
  it('fails health and refuses counted tokens once tollway.sqlite is deleted', async () => {
    const gateway = await harness.start({ services: [pricedService({ uses: 2 })] });
    const authorization = await payL402(await fetch(`${gateway.url}/x`), harness.agent);
    expect((await fetch(`${gateway.url}/x`, { headers: { authorization } })).status).toBe(200);
    expect((await fetch(`${gateway.adminUrl}/health`)).status).toBe(200);
    const file = join(harness.dataDir(gateway), 'tollway.sqlite');
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    const health = await fetch(`${gateway.adminUrl}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ code: 'store_error' });
    const counted = await fetch(`${gateway.url}/x`, { headers: { authorization } });
    expect(counted.status).toBe(503);
    expect(await counted.json()).toMatchObject({ code: 'store_error' });
    expect(harness.received).toHaveLength(1);
  });
});

describe('a refused credential and the challenge limit (finding 11)', () => {
  it('counts the 401 (it carries a fresh invoice); once over the limit, the 429 names the refusal', async () => {
    const gateway = await harness.start({
      paywall: { rateLimits: { challenges: { requests: 1, per: '1h', burst: 2 } } },
      services: [pricedService()],
    });
    const first = await fetch(`${gateway.url}/x`);
    expect(first.status).toBe(402);
    const forged = (await payL402(first, harness.agent)).replace(
      /:[0-9a-f]{64}$/,
      `:${'0'.repeat(64)}`,
    );
    const refused = await fetch(`${gateway.url}/x`, { headers: { authorization: forged } });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: 'preimage_mismatch' });
    const limited = await fetch(`${gateway.url}/x`, { headers: { authorization: forged } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).not.toBeNull();
    expect(await limited.json()).toMatchObject({
      code: 'rate_limited',
      refused: { code: 'preimage_mismatch' },
    });
  });
});
