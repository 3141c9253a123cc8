import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../stores/memory.js';
import { type BalanceLeases, createBalanceLeases, type LeaseDraw } from './balance-leases.js';
import type { Store } from './store.js';

const TTL_MS = 60_000;
const quiet = { warn() {}, error() {} };

/** How a test makes an instance's store calls fail. */
type Failure = 'none' | 'down' | 'made-then-down';

/**
 * Instances drawing on one store, on a clock the test moves. `crash(i)` kills instance `i`:
 * nothing it sent reaches the store any more, its calls never answer (as for a process that
 * died), and a fresh instance takes its place. `fail(i, how)` makes instance `i`'s writes fail:
 * `down` before they reach the store, `made-then-down` after the store made them (a connection
 * lost before the answer). `writes` counts the writes each instance sent.
 */
function setup(instances: number, ttlMs = TTL_MS) {
  const store = createMemoryStore();
  const clock = { now: 1_000_000 };
  const open = () => {
    const state = { alive: true, failure: 'none' as Failure, writes: 0 };
    // Each call reaches the store after a few milliseconds, so that draws, settles and writes
    // of the instances overlap as they do over a network.
    const reach = async <T>(work: () => Promise<T>, write = false): Promise<T> => {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
      if (!state.alive) return new Promise<T>(() => {});
      if (write) state.writes++;
      if (state.failure === 'down') throw new Error('connection refused');
      const result = await work();
      if (state.failure === 'made-then-down') throw new Error('connection reset');
      return result;
    };
    const own: Store = {
      ...store,
      hold: (hold, now) => reach(() => store.hold(hold, now), true),
      resizeHold: (id, resize, now) => reach(() => store.resizeHold(id, resize, now), true),
      settleHold: (id, charge) => reach(() => store.settleHold(id, charge), true),
      releaseHold: (id) => reach(() => store.releaseHold(id), true),
      getUsage: (account) => reach(() => store.getUsage(account)),
    };
    const leases = createBalanceLeases({ store: own, logger: quiet, now: () => clock.now, ttlMs });
    return { leases, state };
  };
  const all = Array.from({ length: instances }, open);
  return {
    store,
    clock,
    leases: all.map((instance) => instance.leases),
    writes: (index: number) => all[index]?.state.writes ?? 0,
    fail(index: number, failure: Failure) {
      const instance = all[index];
      if (instance !== undefined) instance.state.failure = failure;
    },
    crash(index: number) {
      const dead = all[index];
      if (dead !== undefined) {
        dead.state.alive = false;
        // Its timer stops with it (what it sends from now on never answers).
        void dead.leases.close();
      }
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

async function drawAll(leases: BalanceLeases, count: number, amount: bigint, initial: bigint) {
  const drawn: LeaseDraw[] = [];
  for (let i = 0; i < count; i++) {
    const result = await leases.draw('acct', amount, initial);
    if (!result.ok) throw new Error(`draw ${i} refused`);
    drawn.push(result);
  }
  return drawn;
}

/** Lets the store release every hold expired at `now` (a hold that does not fit does it). */
async function expireAll(store: Store, initialMsat: bigint, now: number) {
  const probe = {
    id: 'probe',
    tokenId: 'acct',
    balance: { amountMsat: initialMsat, initialMsat },
    expiresAt: now + 1,
  };
  await store.hold(probe, now);
  await store.releaseHold('probe');
}

describe('balance leases', () => {
  it('draws in memory after one store write, and has a charge written before its settle resolves', async () => {
    const { store, leases } = setup(1);
    const [a] = leases as [BalanceLeases];
    opened.push(a);
    const [first, second] = await drawAll(a, 2, 100n, 10_000n);
    if (first === undefined || second === undefined) throw new Error('not drawn');
    // The lease holds the draws and room for 16 more (at most half of what is free).
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 0n, held: 1_700n });
    expect(second.remainingMsat).toBe(9_800n);
    const charged = first.settle(60n);
    expect(second.settle(0n)).toBeUndefined();
    expect(charged).toBeInstanceOf(Promise);
    await charged;
    // Charged, and the lease kept at its size.
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 60n, held: 1_700n });
    await a.flush();
    // Room kept for what was drawn since the last flush.
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 60n, held: 200n });
    await a.flush();
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 60n, held: 0n });
  });

  it('writes the charges settled in one turn in one write, and those settled during it in the next', async () => {
    const { store, leases, writes } = setup(1);
    const [a] = leases as [BalanceLeases];
    opened.push(a);
    const drawn = await drawAll(a, 16, 100n, 100_000n);
    const sent = writes(0);
    const first = drawn.slice(0, 8).map((draw) => draw.settle(100n));
    // At the next turn the first write is under way: these wait for it, and go in one more.
    await new Promise((resolve) => setImmediate(resolve));
    const second = drawn.slice(8).map((draw) => draw.settle(50n));
    await Promise.all(first);
    expect((await spentAndHeld(store, 'acct')).spent).toBeGreaterThanOrEqual(800n);
    await Promise.all(second);
    expect((await spentAndHeld(store, 'acct')).spent).toBe(1_200n);
    expect(writes(0) - sent).toBe(2);
  });

  it('sends a write that failed again until the store answers, charged once if the store had made it', async () => {
    for (const failure of ['down', 'made-then-down'] as const) {
      const { store, leases, fail } = setup(1);
      const [a] = leases as [BalanceLeases];
      opened.push(a);
      const [draw] = await drawAll(a, 1, 100n, 10_000n);
      fail(0, failure);
      let written = false;
      const charged = draw?.settle(70n)?.then(() => {
        written = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The answer waits for its charge.
      expect(written).toBe(false);
      fail(0, 'none');
      await charged;
      expect((await spentAndHeld(store, 'acct')).spent).toBe(70n);
    }
  });

  it('refuses a charge (store_error) when the store stays down until the lease lapses: nothing charged', async () => {
    const ttlMs = 400;
    const { store, clock, leases, fail } = setup(1, ttlMs);
    const [a] = leases as [BalanceLeases];
    opened.push(a);
    const [draw] = await drawAll(a, 1, 100n, 10_000n);
    fail(0, 'down');
    await expect(draw?.settle(70n)).rejects.toMatchObject({ code: 'store_error' });
    fail(0, 'none');
    // The lease ended: the next draw takes a new one.
    const [next] = await drawAll(a, 1, 100n, 10_000n);
    expect(await next?.settle(30n)).toBeUndefined();
    await a.close();
    clock.now += ttlMs + 1;
    await expireAll(store, 10_000n, clock.now);
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 30n, held: 0n });
  });

  it('refuses a charge whose lease the store let go (its instance stalled past the TTL)', async () => {
    const { store, clock, leases } = setup(2);
    const [a, b] = leases as [BalanceLeases, BalanceLeases];
    opened.push(a, b);
    const [stalled] = await drawAll(a, 1, 100n, 1_000n);
    clock.now += TTL_MS + 1;
    // Another instance takes the whole balance: the store lets the lapsed lease go.
    const [all] = await drawAll(b, 1, 1_000n, 1_000n);
    await expect(stalled?.settle(100n)).rejects.toMatchObject({ code: 'store_error' });
    await all?.settle(1_000n);
    expect(await spentAndHeld(store, 'acct')).toStrictEqual({ spent: 1_000n, held: 0n });
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
    await Promise.all(drawn.map((draw) => draw.settle(100n)));
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
          /** What the answers let go were charged: each once its charge's write was made. */
          let released = 0n;
          /** What every settle charged, whether its answer went or its instance died first. */
          let settled = 0n;
          // What is under way, by instance: a crashed instance's calls never answer.
          let pending: Array<{ instance: number; done: Promise<unknown> }> = [];
          const live = () => Promise.allSettled(pending.splice(0).map((p) => p.done));
          for (const s of steps) {
            if (s.kind === 'draw') {
              const from = leases[s.instance] as BalanceLeases;
              const done = from.draw('acct', s.amount, initial).then((result) => {
                if (result.ok) {
                  expect(result.remainingMsat).toBeLessThanOrEqual(initial);
                  running.push({ instance: s.instance, draw: result, amount: s.amount });
                }
              });
              pending.push({ instance: s.instance, done });
            } else if (s.kind === 'settle' || s.kind === 'release') {
              const [taken] = running.splice(s.pick % Math.max(1, running.length), 1);
              if (taken === undefined) continue;
              if (s.kind === 'release') {
                taken.draw.release();
                continue;
              }
              // What the draw charged: the charge, at most what was drawn.
              let amount = s.charge;
              if (amount > taken.amount) amount = taken.amount;
              settled += amount;
              const written = taken.draw.settle(s.charge);
              if (written === undefined) {
                expect(amount).toBe(0n);
                continue;
              }
              const done = written.then(() => {
                // The charge is in the store: the answer goes now.
                released += amount;
              });
              pending.push({ instance: taken.instance, done });
            } else if (s.kind === 'flush') {
              const done = (leases[s.instance] as BalanceLeases).flush();
              pending.push({ instance: s.instance, done });
            } else if (s.kind === 'crash') {
              // At any point: what the instance had under way never answers.
              pending = pending.filter((p) => p.instance !== s.instance);
              for (let i = running.length - 1; i >= 0; i--) {
                if (running[i]?.instance === s.instance) running.splice(i, 1);
              }
              leases[s.instance] = crash(s.instance);
            } else if (s.kind === 'pause') {
              // Lets what is under way move on, without waiting for all of it.
              await new Promise((resolve) => setTimeout(resolve, s.ms));
            } else {
              await live();
              clock.now += s.ms;
              // The instances' timers: each flushes (and renews) within the interval.
              await Promise.allSettled(leases.map((instance) => instance.flush()));
            }
            const usage = await store.getUsage('acct');
            // Never more held or spent than the balance; every answer that went is charged.
            expect(usage.spentMsat + usage.heldMsat).toBeLessThanOrEqual(initial);
            expect(usage.spentMsat).toBeGreaterThanOrEqual(released);
          }
          await live();
          for (const { draw } of running.splice(0)) draw.release();
          for (const leasesOf of leases) await leasesOf.close();
          // Past every expiry a write sent: each of a lease's writes expires a ms after the one
          // before at least (that marks it), and this clock stands still between waits, so the
          // writes of one instant expire up to a ms apart each after their TTL.
          clock.now += 2 * TTL_MS;
          // What crashed instances leased returns once it expires.
          await expireAll(store, initial, clock.now);
          const usage = await store.getUsage('acct');
          expect(usage.heldMsat).toBe(0n);
          // Charged for every answer that went, and for at most what was settled (an answer
          // charged whose instance died before it went is charged all the same).
          expect(usage.spentMsat).toBeGreaterThanOrEqual(released);
          expect(usage.spentMsat).toBeLessThanOrEqual(settled);
          expect(usage.spentMsat).toBeLessThanOrEqual(initial);
        },
      ),
      { numRuns: 300 },
    );
  });
});
