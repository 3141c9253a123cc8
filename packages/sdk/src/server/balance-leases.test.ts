import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../stores/memory.js';
import { type BalanceLeases, createBalanceLeases, type LeaseDraw } from './balance-leases.js';
import type { Store } from './store.js';

const TTL_MS = 60_000;
const quiet = { warn() {}, error() {} };

/**
 * Instances drawing on one store, on a clock the test moves. `crash(i)` kills instance `i`:
 * nothing it does reaches the store any more (its timer keeps trying), and a fresh instance
 * takes its place.
 */
function setup(instances: number) {
  const store = createMemoryStore();
  const clock = { now: 1_000_000 };
  const open = () => {
    const alive = { yes: true };
    // Each call reaches the store after a few milliseconds, so that draws, settles and writes
    // of the instances overlap as they do over a network.
    const reach = async <T>(work: () => Promise<T>): Promise<T> => {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
      if (!alive.yes) throw new Error('crashed');
      return work();
    };
    const own: Store = {
      ...store,
      hold: (hold, now) => reach(() => store.hold(hold, now)),
      resizeHold: (id, resize, now) => reach(() => store.resizeHold(id, resize, now)),
      settleHold: (id, charge) => reach(() => store.settleHold(id, charge)),
      getUsage: (account) => reach(() => store.getUsage(account)),
    };
    const leases = createBalanceLeases({
      store: own,
      logger: quiet,
      now: () => clock.now,
      ttlMs: TTL_MS,
    });
    return { leases, kill: () => (alive.yes = false) };
  };
  const all = Array.from({ length: instances }, open);
  return {
    store,
    clock,
    leases: all.map((instance) => instance.leases),
    crash(index: number) {
      all[index]?.kill();
      const fresh = open();
      all[index] = fresh;
      return fresh.leases;
    },
  };
}

const opened: BalanceLeases[] = [];
afterEach(async () => {
  for (const leases of opened.splice(0)) await leases.close();
});

async function spentAndHeld(store: Store, account: string) {
  const usage = await store.getUsage(account);
  return { spent: usage.spentMsat, held: usage.heldMsat };
}

describe('balance leases', () => {
  it('draws in memory after one store write, and writes what was charged at the flush', async () => {
    const { store, leases } = setup(1);
    const [a] = leases as [BalanceLeases];
    opened.push(a);
    const first = await a.draw('acct', 100n, 10_000n);
    expect(first.ok).toBe(true);
    // The lease holds the draw and room for 16 more (at most half of what is free).
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 0n, held: 1_700n });
    const second = await a.draw('acct', 100n, 10_000n);
    if (!first.ok || !second.ok) throw new Error('refused');
    expect(second.remainingMsat).toBe(9_800n);
    first.settle(60n);
    second.release();
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 0n, held: 1_700n });
    await a.flush();
    // Charged; room kept for what was drawn since the last flush.
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 60n, held: 200n });
    await a.flush();
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 60n, held: 0n });
  });

  it('refuses a draw the balance cannot cover, and takes its last units exactly', async () => {
    const { store, leases } = setup(2);
    const [a, b] = leases as [BalanceLeases, BalanceLeases];
    opened.push(a, b);
    const drawn: LeaseDraw[] = [];
    for (let i = 0; i < 10; i++) {
      const result = await (i % 2 === 0 ? a : b).draw('acct', 100n, 1_000n);
      if (!result.ok) throw new Error(`draw ${i} refused`);
      drawn.push(result);
    }
    const refused = await a.draw('acct', 100n, 1_000n);
    expect(refused).toStrictEqual({ ok: false, spentMsat: 1_000n });
    for (const draw of drawn) draw.settle(100n);
    await a.close();
    await b.close();
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 1_000n, held: 0n });
  });

  it('keeps the money rules under any interleaving of draws, settles, flushes and crashes', async () => {
    type Step =
      | { kind: 'draw'; instance: number; amount: bigint }
      | { kind: 'settle'; pick: number; charge: bigint }
      | { kind: 'release'; pick: number }
      | { kind: 'flush'; instance: number }
      | { kind: 'crash'; instance: number }
      | { kind: 'wait'; ms: number }
      | { kind: 'pause'; ms: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('draw' as const),
        instance: fc.nat(2),
        amount: fc.bigInt({ min: 1n, max: 400n }),
      }),
      fc.record({
        kind: fc.constant('settle' as const),
        pick: fc.nat(),
        charge: fc.bigInt({ min: 0n, max: 500n }),
      }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('flush' as const), instance: fc.nat(2) }),
      fc.record({ kind: fc.constant('crash' as const), instance: fc.nat(2) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 25_000 }) }),
      fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 3 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 80 }),
        fc.bigInt({ min: 0n, max: 5_000n }),
        async (steps, initial) => {
          const { store, clock, leases, crash } = setup(3);
          const running: Array<{ instance: number; draw: LeaseDraw; amount: bigint }> = [];
          /** Charged to requests that were served, by instances that did not crash. */
          let charged = 0n;
          /** Charged by instances that crashed before writing it: at most what they leased. */
          let lostAtMost = 0n;
          const drawnBy = [0n, 0n, 0n];
          const pending: Promise<unknown>[] = [];
          for (const s of steps) {
            if (s.kind === 'draw') {
              const from = leases[s.instance] as BalanceLeases;
              pending.push(
                from.draw('acct', s.amount, initial).then((result) => {
                  if (leases[s.instance] !== from) {
                    // Its instance crashed meanwhile: never settled.
                    return;
                  }
                  if (result.ok) {
                    expect(result.remainingMsat).toBeLessThanOrEqual(initial);
                    running.push({ instance: s.instance, draw: result, amount: s.amount });
                  }
                }),
              );
            } else if (s.kind === 'settle' || s.kind === 'release') {
              const [taken] = running.splice(s.pick % Math.max(1, running.length), 1);
              if (taken === undefined) continue;
              if (s.kind === 'release') taken.draw.release();
              else {
                taken.draw.settle(s.charge);
                // What the draw charged: the charge, at most what was drawn.
                let amount = s.charge;
                if (amount > taken.amount) amount = taken.amount;
                drawnBy[taken.instance] = (drawnBy[taken.instance] ?? 0n) + amount;
              }
            } else if (s.kind === 'flush') {
              pending.push((leases[s.instance] as BalanceLeases).flush());
            } else if (s.kind === 'crash') {
              await Promise.allSettled(pending.splice(0));
              // What it charged and had not written is lost: the lease returns after the ttl.
              lostAtMost += drawnBy[s.instance] ?? 0n;
              drawnBy[s.instance] = 0n;
              for (let i = running.length - 1; i >= 0; i--) {
                if (running[i]?.instance === s.instance) running.splice(i, 1);
              }
              leases[s.instance] = crash(s.instance);
            } else if (s.kind === 'pause') {
              // Lets what is under way move on, without waiting for all of it.
              await new Promise((resolve) => setTimeout(resolve, s.ms));
            } else {
              await Promise.allSettled(pending.splice(0));
              clock.now += s.ms;
              // The instances' timers: each flushes (and renews) within the interval.
              await Promise.allSettled(leases.map((instance) => instance.flush()));
            }
            const usage = await store.getUsage('acct');
            // Never more held or spent than the balance.
            expect(usage.spentMsat + usage.heldMsat).toBeLessThanOrEqual(initial);
          }
          await Promise.allSettled(pending.splice(0));
          for (const { draw } of running.splice(0)) draw.release();
          for (const leasesOf of leases) await leasesOf.close();
          charged = drawnBy.reduce((sum, value) => sum + value, 0n);
          clock.now += TTL_MS + 1;
          // A hold that would not fit releases the expired ones: what crashed instances leased.
          await store.hold(
            {
              id: 'probe',
              tokenId: 'acct',
              balance: { amountMsat: initial, initialMsat: initial },
              expiresAt: clock.now + 1,
            },
            clock.now,
          );
          await store.releaseHold('probe');
          const usage = await store.getUsage('acct');
          expect(usage.heldMsat).toBe(0n);
          // The payer is charged what surviving instances charged, plus at most what crashed
          // ones had charged: never more than it was charged, never more than it paid.
          expect(usage.spentMsat).toBeGreaterThanOrEqual(charged);
          expect(usage.spentMsat).toBeLessThanOrEqual(charged + lostAtMost);
          expect(usage.spentMsat).toBeLessThanOrEqual(initial);
        },
      ),
      { numRuns: 300 },
    );
  });
});
