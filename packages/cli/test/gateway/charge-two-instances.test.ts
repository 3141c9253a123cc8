/**
 * Reserve → settle across `tollway serve` processes on one PostgreSQL: one balance token drawn
 * concurrently through two instances, with upstream failures among the answers, ends exactly at
 * the sum of what was charged; and an instance killed with a request in flight releases what that
 * request held within `paywall.reservationTtl`, so the credential works on another instance.
 * Balances are drawn from each instance's lease of them (`balanceLeases`): two instances share
 * the last units of one, and the lease of an instance killed with SIGKILL returns to the balance
 * after the ttl, with the payer charged exactly what was served and written.
 * Needs `npm run build` (CI builds before testing).
 */
import type { Store } from '@tollway/sdk/server';
import { createPostgresStore } from '@tollway/sdk/stores/postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import { accountOf, payL402, startUpstream, type Upstream } from './support.js';

const postgres = await startTestPostgres();
const TTL_MS = 2000;
/** What each instance's YAML has after the shared head. */
const LINES = [
  `paywall: { reservationTtl: ${TTL_MS / 1000}s, balanceLeases: true, rateLimits: { challenges: false } }`,
  'services:',
  '  - { name: prepaid, path: /prepaid, upstream: "${UPSTREAM}", price: 5 sat, balance: 100 sat }',
  '  - { name: once, path: /once, upstream: "${UPSTREAM}", price: 5 sat, uses: 1 }',
];

let cluster: Cluster;
let upstream: Upstream;
let store: Store;
/** Requests the upstream holds open until the test lets them go. */
const held: Array<() => void> = [];
let heldArrived: () => void = () => undefined;

beforeAll(async () => {
  if (postgres === undefined) return;
  upstream = await startUpstream((req, res) => {
    if (req.url?.includes('/fail')) {
      req.socket.destroy();
      return;
    }
    if (req.url?.includes('/hang')) {
      held.push(() => res.end('late'));
      heldArrived();
      return;
    }
    res.end(JSON.stringify({ url: req.url }));
  });
  cluster = await startCluster(postgres, { UPSTREAM: upstream.url });
  store = createPostgresStore({ connectionString: cluster.database });
  await store.init();
  for (const name of ['a', 'b']) await cluster.start(name, LINES);
});

afterAll(async () => {
  for (const release of held) release();
  await cluster?.close('SIGKILL');
  await store?.close();
  await upstream?.close();
  await postgres?.stop();
});

const instance = (index: number) => cluster.instance(index);
const agent = () => cluster.network.backend('agent');

describe.skipIf(postgres === undefined)('charging across instances on one PostgreSQL', () => {
  it('draws one balance exactly: 50 concurrent requests over two instances, a third failing upstream', async () => {
    const authorization = await payL402(await fetch(`${instance(0).url}/prepaid`), agent());
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, index) => {
        const path = index % 3 === 0 ? `/prepaid/fail/${index}` : `/prepaid/ok/${index}`;
        const response = await fetch(`${instance(index % 2).url}${path}`, {
          headers: { authorization },
        });
        const body = (await response.text()) || '{}';
        return {
          status: response.status,
          code: response.status === 200 ? 'ok' : (JSON.parse(body) as { code: string }).code,
          charged: response.headers.get('tollway-charged'),
        };
      }),
    );
    const served = results.filter((result) => result.status === 200);
    expect(served.every((result) => result.charged === '5000 msat')).toBe(true);
    const others = new Set(results.filter((r) => r.status !== 200).map((r) => r.code));
    expect(
      [...others].every((code) => ['upstream_unavailable', 'balance_exhausted'].includes(code)),
    ).toBe(true);
    expect(
      results.filter((r) => r.code === 'upstream_unavailable').every((r) => r.charged === '0'),
    ).toBe(true);
    const tokenId = accountOf(authorization);
    await vi.waitFor(async () => expect((await store.getUsage(tokenId)).heldMsat).toBe(0n), {
      timeout: 3000,
    });
    const usage = await store.getUsage(tokenId);
    expect(usage.spentMsat).toBe(5000n * BigInt(served.length));
    expect(usage.spentMsat <= 100_000n).toBe(true);
    // Once the dust settles, what is left is exactly what was not charged.
    const rest = (100_000n - usage.spentMsat) / 5000n;
    for (let i = 0n; i < rest; i++) {
      const response = await fetch(`${instance(Number(i % 2n)).url}/prepaid/ok/after`, {
        headers: { authorization },
      });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    const spent = await fetch(`${instance(0).url}/prepaid/ok/last`, { headers: { authorization } });
    expect(spent.status).toBe(402);
    expect(((await spent.json()) as { code: string }).code).toBe('balance_exhausted');
    // Each instance writes what its lease charged within 100 ms, and gives the lease back.
    await vi.waitFor(
      async () =>
        expect(await store.getUsage(tokenId)).toMatchObject({ spentMsat: 100_000n, heldMsat: 0n }),
      { timeout: 3000 },
    );
  });

  it('releases what a killed instance held within the reservation ttl; another instance then serves it', async () => {
    const doomed = await cluster.start('c', LINES);
    const authorization = await payL402(await fetch(`${doomed.url}/once`), agent());
    const arrived = new Promise<void>((resolve) => {
      heldArrived = resolve;
    });
    const inFlight = fetch(`${doomed.url}/once/hang`, { headers: { authorization } }).catch(
      (error: unknown) => error,
    );
    await arrived;
    doomed.process.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();
    expect(await inFlight).toBeInstanceOf(Error);
    const meanwhile = await fetch(`${instance(1).url}/once/x`, { headers: { authorization } });
    expect(meanwhile.status).toBe(402);
    expect(((await meanwhile.json()) as { code: string }).code).toBe('uses_exhausted');
    await vi.waitFor(
      async () => {
        const response = await fetch(`${instance(1).url}/once/x`, { headers: { authorization } });
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      },
      { timeout: TTL_MS * 3, interval: 200 },
    );
    // Released within the ttl of the last renewal (at most the ttl before the kill), plus polling.
    expect(Date.now() - killedAt).toBeLessThan(TTL_MS + 1000);
    // Charged in the background once the answer's status left.
    await vi.waitFor(async () =>
      expect(await store.getUsage(accountOf(authorization))).toMatchObject({
        uses: 1,
        heldUses: 0,
      }),
    );
  });

  it('shares the last units of a balance between two instances that both hold a lease', async () => {
    const authorization = await payL402(await fetch(`${instance(0).url}/prepaid`), agent());
    const get = async (index: number, path: string) => {
      const response = await fetch(`${instance(index).url}/prepaid/ok/${path}`, {
        headers: { authorization },
      });
      await response.arrayBuffer();
      return response.status;
    };
    // 90 of the 100 sat, alternating: both instances hold a lease of the balance.
    for (let i = 0; i < 18; i++) expect(await get(i % 2, `warm-${i}`)).toBe(200);
    // The last 10 sat: one call on each instance at once; both are served, a third is not.
    expect(await Promise.all([get(0, 'last-a'), get(1, 'last-b')])).toStrictEqual([200, 200]);
    expect(await get(0, 'over')).toBe(402);
    expect(await get(1, 'over')).toBe(402);
    const tokenId = accountOf(authorization);
    await vi.waitFor(
      async () =>
        expect(await store.getUsage(tokenId)).toMatchObject({ spentMsat: 100_000n, heldMsat: 0n }),
      { timeout: 3000 },
    );
  });

  it('returns the lease of an instance killed with SIGKILL after the ttl; the payer pays what was served', async () => {
    const doomed = await cluster.start('d', LINES);
    const authorization = await payL402(await fetch(`${doomed.url}/prepaid`), agent());
    const tokenId = accountOf(authorization);
    for (const path of ['ok/1', 'ok/2']) {
      const response = await fetch(`${doomed.url}/prepaid/${path}`, { headers: { authorization } });
      expect(response.status, await response.text()).toBe(200);
    }
    // Both charges were written before their answers.
    expect((await store.getUsage(tokenId)).spentMsat).toBe(10_000n);
    const arrived = new Promise<void>((resolve) => {
      heldArrived = resolve;
    });
    const inFlight = fetch(`${doomed.url}/prepaid/hang`, { headers: { authorization } }).catch(
      (error: unknown) => error,
    );
    await arrived;
    // The lease holds the call in flight, and spare room for a few flushes (100 ms each) until it
    // follows the demand down to that call: how much spare is left here depends on timing.
    const leased = await store.getUsage(tokenId);
    expect(leased.heldMsat).toBeGreaterThanOrEqual(5_000n);
    doomed.process.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();
    expect(await inFlight).toBeInstanceOf(Error);
    // Meanwhile the rest of the balance serves on another instance.
    const meanwhile = await fetch(`${instance(1).url}/prepaid/ok/meanwhile`, {
      headers: { authorization },
    });
    expect(meanwhile.status, await meanwhile.text()).toBe(200);
    // The dead lease (the call in flight and its spare room) returns within the ttl of its last
    // renewal: then every unit left is sold, and the call cut off was not charged.
    await new Promise((resolve) => setTimeout(resolve, killedAt + TTL_MS + 200 - Date.now()));
    let served = 0n;
    for (;;) {
      const response = await fetch(`${instance(Number(served % 2n)).url}/prepaid/ok/rest`, {
        headers: { authorization },
      });
      await response.arrayBuffer();
      if (response.status !== 200) break;
      served += 1n;
    }
    await vi.waitFor(async () => {
      const usage = await store.getUsage(tokenId);
      expect(usage).toMatchObject({ spentMsat: 100_000n, heldMsat: 0n });
    });
    // Two before the kill, one meanwhile and the rest: 20 calls of 5 sat, each charged once.
    expect(2n + 1n + served).toBe(20n);
  });
});
