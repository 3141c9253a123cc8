/**
 * Freebies and rate limits across three `tollway serve` processes on one PostgreSQL: a freebie
 * allowance is counted exactly in total, and a challenge-mint limit holds within the overshoot
 * docs/guides/scaling.md documents. Needs `npm run build` (CI builds before testing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import type { Instance } from './instances.js';
import { startUpstream, type Upstream } from './support.js';

const postgres = await startTestPostgres();
/** The gateway's default reconciliation interval, and a wait comfortably longer than one sync. */
const SYNC_MS = 250;
const SETTLE_MS = 4 * SYNC_MS;

let cluster: Cluster;
let upstream: Upstream;

beforeAll(async () => {
  if (postgres === undefined) return;
  upstream = await startUpstream((req, res) => {
    res.end(JSON.stringify({ url: req.url }));
  });
  cluster = await startCluster(postgres, { UPSTREAM: upstream.url });
  for (const name of ['a', 'b', 'c']) {
    await cluster.start(name, [
      'paywall: { trustProxy: true }',
      'services:',
      '  - name: free',
      '    path: /free',
      '    upstream: "${UPSTREAM}"',
      '    price: 5 sat',
      '    freebies: { requests: 10, per: 1d }',
      '    rateLimits: { challenges: false, challengesTotal: false }',
      '  - name: mint',
      '    path: /mint',
      '    upstream: "${UPSTREAM}"',
      '    price: 5 sat',
      '    rateLimits: { challenges: { requests: 5, per: 1m }, challengesTotal: false }',
    ]);
  }
});

afterAll(async () => {
  await cluster?.close();
  await upstream?.close();
  await postgres?.stop();
});

/** `count` requests spread over the instances from one client network; their status codes. */
async function spread(path: string, client: string, count: number, only?: number) {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const { instances } = cluster;
      const instance = instances[only ?? index % instances.length] as Instance;
      const response = await fetch(`${instance.url}${path}`, {
        headers: { 'x-forwarded-for': client },
      });
      await response.arrayBuffer();
      return response.status;
    }),
  );
}

function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(postgres === undefined)('limits across three instances on one PostgreSQL', () => {
  it('gives a freebie allowance of 10 per /24 once in total, not once per instance', async () => {
    const first = tally(await spread('/free/x', '198.51.100.7', 30));
    expect(first).toEqual({ 200: 10, 402: 20 });
    // Another address of the same /24 is the same network; another /24 has its own ten.
    expect(tally(await spread('/free/y', '198.51.100.200', 9))).toEqual({ 402: 9 });
    expect(tally(await spread('/free/z', '198.51.101.7', 12))).toEqual({ 200: 10, 402: 2 });
  });

  it('holds a challenge-mint limit within the documented overshoot', async () => {
    // A flood at once: each instance may mint its own burst before it hears of the others,
    // `(instances - 1) × burst` over the limit (rate × sync interval adds less than one here).
    const flood = tally(await spread('/mint/a', '203.0.113.9', 60));
    expect((flood[402] ?? 0) + (flood[429] ?? 0)).toBe(60);
    expect(flood[402]).toBeGreaterThanOrEqual(5);
    expect(flood[402]).toBeLessThanOrEqual(5 + 2 * 5);
    // Once the instances have synced, the network's debt is everyone's: nothing more is minted.
    await pause(SETTLE_MS);
    expect(tally(await spread('/mint/a', '203.0.113.9', 30))).toEqual({ 429: 30 });
  });

  it('refuses on one instance what was minted through another', async () => {
    // A burst through instance a; then b, new to this network, mints one (the overshoot), learns
    // the shared clock at its next sync, and refuses: alone it would mint four more.
    expect(tally(await spread('/mint/b', '192.0.2.1', 5, 0))).toEqual({ 402: 5 });
    await pause(SETTLE_MS);
    expect(tally(await spread('/mint/b', '192.0.2.1', 1, 1))).toEqual({ 402: 1 });
    await pause(SETTLE_MS);
    expect(tally(await spread('/mint/b', '192.0.2.1', 4, 1))).toEqual({ 429: 4 });
  });
});
