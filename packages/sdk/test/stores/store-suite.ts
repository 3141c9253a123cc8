/**
 * One behavioural suite for every Store implementation. Each store's test file runs it against the
 * real thing: memory, a SQLite file, a PostgreSQL database.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';
import type { Revocation, Settlement, Store, TokenRecord } from '../../src/server/store.js';
import { describeLimitStoreSuite } from './limit-store-suite.js';

/** What a store's test file provides for each test. */
export interface StoreFixture {
  /** A fresh, initialised store over empty state. */
  store: Store;
  /**
   * Opens and initialises another instance over the same state (another process, in production).
   * Absent for stores whose state lives in one instance.
   */
  openPeer?: () => Promise<Store>;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-03-14 10:00:00 UTC, on an hour boundary. */
const BASE = Date.UTC(2026, 2, 14, 10);
const MAX_I64 = 2n ** 63n - 1n;
const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';

function settlement(reference: string, fields: Partial<Settlement> = {}): Settlement {
  return {
    reference,
    service: 'api',
    protocol: 'l402',
    amount: 1000n,
    unit: 'msat',
    settledAt: BASE,
    ...fields,
  };
}

function token(tokenId: string, fields: Partial<TokenRecord> = {}): TokenRecord {
  return {
    tokenId,
    paymentHash: `hash-${tokenId}`,
    service: 'api',
    tier: 0,
    createdAt: BASE,
    ...fields,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<TollwayErrorCode | 'resolved' | 'other'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isTollwayError(error) ? error.code : 'other';
  }
}

/** Runs `task(i)` for i in 0..n-1, at most `parallel` at a time, and returns calls per second. */
async function throughput(n: number, parallel: number, task: (i: number) => Promise<unknown>) {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return Math.round(n / ((performance.now() - started) / 1000));
}

/**
 * Registers the shared behaviour tests for one store.
 *
 * @example
 * ```ts
 * describeStoreSuite('memory', async () => {
 *   const store = createMemoryStore();
 *   await store.init();
 *   return { store };
 * });
 * ```
 */
export function describeStoreSuite(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${name} store`, () => {
    let fixture: StoreFixture;
    let store: Store;
    const opened: Store[] = [];

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
      opened.push(store);
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    /** The stores that share state: [store, peer], or [store] when the store has no peers. */
    async function instances(): Promise<Store[]> {
      if (fixture.openPeer === undefined) return [store];
      const peer = await fixture.openPeer();
      opened.push(peer);
      return [store, peer];
    }

    describeLimitStoreSuite(name, () => ({ store, ...(peer === undefined ? {} : { peer }) }));
    let peer: Store | undefined;
    beforeEach(async () => {
      peer = fixture.openPeer === undefined ? undefined : await fixture.openPeer();
      if (peer !== undefined) opened.push(peer);
    });

    async function peerOrSkip(skip: (note: string) => never): Promise<Store> {
      const [, peer] = await instances();
      return peer ?? skip(`${name} keeps its state in one instance`);
    }

    it('writes a document only at the revision it was read at, once under concurrency', async () => {
      const stores = await instances();
      expect(await store.readDocument('overlay')).toBeUndefined();
      const first = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          stores[i % stores.length]?.writeDocument('overlay', `v${i}`, 0),
        ),
      );
      expect(first.filter((revision) => revision === 1)).toHaveLength(1);
      const winner = first.indexOf(1);
      for (const s of stores) {
        expect(await s.readDocument('overlay')).toEqual({ revision: 1, body: `v${winner}` });
      }
      expect(await store.writeDocument('overlay', 'stale', 0)).toBeUndefined();
      expect(await stores.at(-1)?.writeDocument('overlay', '{"é":"☃"}', 1)).toBe(2);
      expect(await store.writeDocument('overlay', 'late', 1)).toBeUndefined();
      expect(await store.readDocument('overlay')).toEqual({ revision: 2, body: '{"é":"☃"}' });
      expect(await store.readDocument('other')).toBeUndefined();
    });

    it('init is idempotent, and another instance sees the same state', async () => {
      await store.init();
      await store.recordSettlement(settlement('r1'));
      for (const s of await instances()) {
        expect(await s.listSettlements({})).toStrictEqual([settlement('r1')]);
      }
    });

    it('recordSettlement is true the first time only and round-trips every field', async () => {
      const withToken = settlement('r1', { tokenId: 'tok1', settledAt: BASE + 1 });
      const x402 = settlement('0xabc', { protocol: 'x402', amount: 10_000n, unit: USDC });
      expect(await store.recordSettlement(withToken)).toBe(true);
      expect(await store.recordSettlement(x402)).toBe(true);
      expect(await store.recordSettlement({ ...withToken, amount: 5n })).toBe(false);
      expect(await store.listSettlements({})).toStrictEqual([withToken, x402]);
    });

    it('recordSettlement is idempotent under concurrency, across instances', async () => {
      const all = await instances();
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          all[i % all.length]!.recordSettlement(settlement('r')),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.listSettlements({})).toHaveLength(1);
    });

    it('listSettlements filters by time, service and protocol, newest first, with a limit', async () => {
      const a = settlement('a', { settledAt: BASE });
      const b = settlement('b', { settledAt: BASE + 10, service: 'llm' });
      const c = settlement('c', { settledAt: BASE + 20, protocol: 'mpp' });
      const d = settlement('d', { settledAt: BASE + 20 });
      for (const s of [a, b, c, d]) await store.recordSettlement(s);
      expect(await store.listSettlements({})).toStrictEqual([c, d, b, a]);
      expect(await store.listSettlements({ since: BASE + 10 })).toStrictEqual([c, d, b]);
      expect(await store.listSettlements({ until: BASE + 20 })).toStrictEqual([b, a]);
      expect(await store.listSettlements({ since: BASE, until: BASE + 10 })).toStrictEqual([a]);
      expect(await store.listSettlements({ service: 'api' })).toStrictEqual([c, d, a]);
      expect(await store.listSettlements({ protocol: 'l402', service: 'api' })).toStrictEqual([
        d,
        a,
      ]);
      expect(await store.listSettlements({ limit: 2 })).toStrictEqual([c, d]);
      expect(await store.listSettlements({ service: 'none' })).toStrictEqual([]);
    });

    it('revenue sums by UTC hour and day, grouped by service, protocol and unit', async () => {
      const big = 2n ** 60n;
      const rows: Settlement[] = [
        settlement('early', { settledAt: BASE - 1, amount: 1n }),
        settlement('h1', { settledAt: BASE, amount: 1000n }),
        settlement('h2', { settledAt: BASE + HOUR - 1, amount: 2000n }),
        settlement('h3', { settledAt: BASE + HOUR, amount: 4000n }),
        settlement('usdc', { settledAt: BASE + 600_000, protocol: 'x402', amount: 5n, unit: USDC }),
        settlement('other', { settledAt: BASE + 1_200_000, service: 'llm', amount: 7n }),
        settlement('big1', { settledAt: BASE + 1, service: 'whale', amount: big + 1n }),
        settlement('big2', { settledAt: BASE + 2, service: 'whale', amount: big + 3n }),
        settlement('next-day', { settledAt: BASE + DAY, amount: 8000n }),
      ];
      for (const s of rows) await store.recordSettlement(s);
      const row = (bucket: number, fields: Partial<Settlement>, amount: bigint, count: number) => ({
        bucket,
        service: 'api',
        protocol: 'l402',
        unit: 'msat',
        ...fields,
        amount,
        count,
      });
      expect(await store.revenue({ bucket: 'hour', since: BASE, until: BASE + DAY })).toStrictEqual(
        [
          row(BASE, {}, 3000n, 2),
          row(BASE, { protocol: 'x402', unit: USDC }, 5n, 1),
          row(BASE, { service: 'llm' }, 7n, 1),
          row(BASE, { service: 'whale' }, 2n ** 61n + 4n, 2),
          row(BASE + HOUR, {}, 4000n, 1),
        ],
      );
      const day = Date.UTC(2026, 2, 14);
      expect(await store.revenue({ bucket: 'day' })).toStrictEqual([
        row(day, {}, 7001n, 4),
        row(day, { protocol: 'x402', unit: USDC }, 5n, 1),
        row(day, { service: 'llm' }, 7n, 1),
        row(day, { service: 'whale' }, 2n ** 61n + 4n, 2),
        row(day + DAY, {}, 8000n, 1),
      ]);
      expect(await store.revenue({ bucket: 'day', since: BASE + DAY + 1 })).toStrictEqual([]);
    });

    it('amounts up to 2^63-1 round-trip exactly; larger or negative ones are rejected', async () => {
      const huge = settlement('huge', { amount: MAX_I64 });
      const odd = settlement('odd', { amount: 2n ** 53n + 1n, settledAt: BASE - 1 });
      await store.recordSettlement(huge);
      await store.recordSettlement(odd);
      expect(await store.listSettlements({})).toStrictEqual([huge, odd]);
      const rich = token('rich', { initialBalanceMsat: 2n ** 62n + 5n });
      await store.saveToken(rich);
      expect(await store.getToken('rich')).toStrictEqual(rich);
      expect(await spend(store, 'rich', 2n ** 53n + 1n, MAX_I64)).toStrictEqual({
        ok: true,
        uses: 0,
        spentMsat: 2n ** 53n + 1n,
      });
      expect(await spend(store, 'rich', MAX_I64, MAX_I64)).toStrictEqual({
        ok: false,
        uses: 0,
        spentMsat: 2n ** 53n + 1n,
      });
      expect((await store.getUsage('rich')).spentMsat).toBe(2n ** 53n + 1n);
      expect(await codeOf(store.recordSettlement(settlement('x', { amount: MAX_I64 + 1n })))).toBe(
        'invalid_amount',
      );
      expect(await codeOf(store.recordSettlement(settlement('y', { amount: -1n })))).toBe(
        'invalid_amount',
      );
      expect(await codeOf(spend(store, 'rich', -1n, 10n))).toBe('invalid_amount');
      expect(await codeOf(use(store, 'rich', 1.5, 10))).toBe('invalid_amount');
      expect(await codeOf(use(store, 'rich', 1, -1))).toBe('invalid_amount');
      expect(await store.listSettlements({})).toHaveLength(2);
    });

    it('saveToken keeps the first record; getToken and listTokens read it back', async () => {
      const plain = token('t1');
      const full = token('t2', {
        service: 'llm',
        tier: 2,
        createdAt: BASE + 5,
        expiresAt: BASE + DAY,
        maxUses: 100,
        initialBalanceMsat: 50_000n,
      });
      const later = token('t0', { createdAt: BASE + 9 });
      for (const t of [plain, full, later]) await store.saveToken(t);
      await store.saveToken({ ...plain, tier: 9, maxUses: 1 });
      expect(await store.getToken('t1')).toStrictEqual(plain);
      expect(await store.getToken('t2')).toStrictEqual(full);
      expect(await store.getToken('missing')).toBeUndefined();
      expect(await store.listTokens({})).toStrictEqual([plain, full, later]);
      expect(await store.listTokens({ service: 'api' })).toStrictEqual([plain, later]);
      expect(await store.listTokens({ limit: 1, offset: 1 })).toStrictEqual([full]);
      expect(await store.listTokens({ offset: 2 })).toStrictEqual([later]);
    });

    it('holds count up to maxUses with what is charged, and report the count when refused', async () => {
      const empty = { uses: 0, spentMsat: 0n, heldUses: 0, heldMsat: 0n };
      expect(await store.getUsage('t')).toStrictEqual({ tokenId: 't', ...empty });
      expect(await use(store, 't', 3, 10)).toStrictEqual({ ok: true, uses: 3, spentMsat: 0n });
      expect(await use(store, 't', 7, 10)).toStrictEqual({ ok: true, uses: 10, spentMsat: 0n });
      expect(await use(store, 't', 1, 10)).toStrictEqual({ ok: false, uses: 10, spentMsat: 0n });
      expect(await use(store, 'fresh', 11, 10)).toStrictEqual({
        ok: false,
        uses: 0,
        spentMsat: 0n,
      });
      expect(await store.getUsage('t')).toStrictEqual({ tokenId: 't', ...empty, uses: 10 });
      expect(await store.getUsage('fresh')).toStrictEqual({ tokenId: 'fresh', ...empty });
    });

    it('a hold counts until it is settled (charged) or released (given back)', async () => {
      const now = Date.now();
      const hold = (id: string, count: number) => ({
        id,
        tokenId: 't',
        uses: { count, max: 5 },
        expiresAt: now + 60_000,
      });
      expect((await store.hold(hold('a', 2), now)).ok).toBe(true);
      expect((await store.hold(hold('b', 3), now)).ok).toBe(true);
      expect((await store.hold(hold('c', 1), now)).ok).toBe(false);
      expect(await store.getUsage('t')).toMatchObject({ uses: 0, heldUses: 5 });
      expect(await store.settleHold('a', { uses: 2, amountMsat: 0n })).toBe(true);
      await store.releaseHold('b');
      expect(await store.getUsage('t')).toMatchObject({ uses: 2, heldUses: 0 });
      expect(await store.settleHold('a', { uses: 2, amountMsat: 0n })).toBe(false);
      await store.releaseHold('b');
      expect((await store.hold(hold('c', 3), now)).ok).toBe(true);
      expect((await store.hold(hold('d', 1), now)).ok).toBe(false);
      expect(await store.getUsage('t')).toMatchObject({ uses: 2, heldUses: 3 });
    });

    it('a settled hold charges at most what it held; the rest goes back to the balance', async () => {
      const now = Date.now();
      const hold = { id: 'h', tokenId: 't', balance: { amountMsat: 500n, initialMsat: 1000n } };
      expect(await store.hold({ ...hold, expiresAt: now + 60_000 }, now)).toStrictEqual({
        ok: true,
        uses: 0,
        spentMsat: 500n,
      });
      expect(await store.settleHold('h', { uses: 0, amountMsat: 200n })).toBe(true);
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 200n, heldMsat: 0n });
      await store.hold({ ...hold, id: 'h2', expiresAt: now + 60_000 }, now);
      expect(await store.settleHold('h2', { uses: 0, amountMsat: 900n })).toBe(true);
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 700n, heldMsat: 0n });
    });

    it('an expired hold (its instance died) is released when a hold would not fit; renew keeps one', async () => {
      const now = Date.now();
      const hold = (id: string, expiresAt: number) => ({
        id,
        tokenId: 't',
        uses: { count: 1, max: 2 },
        expiresAt,
      });
      expect((await store.hold(hold('dead', now + 1000), now)).ok).toBe(true);
      expect((await store.hold(hold('alive', now + 1000), now)).ok).toBe(true);
      await store.renew({ holds: ['alive'], claims: [] }, now + 60_000);
      expect((await store.hold(hold('late', now + 60_000), now + 500)).ok).toBe(false);
      expect((await store.hold(hold('late', now + 60_000), now + 2000)).ok).toBe(true);
      expect((await store.hold(hold('later', now + 60_000), now + 2000)).ok).toBe(false);
      expect(await store.settleHold('dead', { uses: 1, amountMsat: 0n })).toBe(false);
      expect(await store.getUsage('t')).toMatchObject({ uses: 0, heldUses: 2 });
    });

    it('holds are atomic: 50 concurrent holds with maxUses 10 succeed exactly 10 times', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, () => use(store, 't', 1, 10)));
      const granted = results.filter((r) => r.ok).map((r) => r.uses);
      expect(granted.sort((a, b) => a - b)).toStrictEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect((await store.getUsage('t')).uses).toBe(10);
    });

    it('holds are atomic across two instances', async ({ skip }) => {
      const peer = await peerOrSkip(skip);
      const all = [store, peer];
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => use(all[i % 2]!, 't', 1, 10)),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect((await peer.getUsage('t')).uses).toBe(10);
    });

    it('balance holds spend while the balance lasts and never go below zero', async () => {
      const spent = async (amount: bigint, token = 't') => spend(store, token, amount, 1000n);
      expect(await spent(300n)).toStrictEqual({ ok: true, uses: 0, spentMsat: 300n });
      expect(await spent(800n)).toStrictEqual({ ok: false, uses: 0, spentMsat: 300n });
      expect(await spent(700n)).toStrictEqual({ ok: true, uses: 0, spentMsat: 1000n });
      expect(await spent(1n)).toStrictEqual({ ok: false, uses: 0, spentMsat: 1000n });
      expect(await spent(2000n, 'fresh')).toStrictEqual({ ok: false, uses: 0, spentMsat: 0n });
      expect(await store.getUsage('t')).toMatchObject({ uses: 0, spentMsat: 1000n });
    });

    it('balance holds are atomic under concurrency, across instances', async () => {
      const all = await instances();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => spend(all[i % all.length]!, 't', 100n, 1000n)),
      );
      const spentAfter = results.filter((r) => r.ok).map((r) => r.spentMsat);
      expect(spentAfter.sort((a, b) => Number(a - b))).toStrictEqual(
        Array.from({ length: 10 }, (_, i) => BigInt(i + 1) * 100n),
      );
      expect(results.filter((r) => !r.ok).every((r) => r.spentMsat === 1000n)).toBe(true);
      expect((await store.getUsage('t')).spentMsat).toBe(1000n);
    });

    it('resizeHold charges part of a hold and keeps the rest, shrunk or grown if it fits', async () => {
      const now = Date.now();
      const lease = {
        id: 'lease',
        tokenId: 't',
        balance: { amountMsat: 400n, initialMsat: 1000n },
      };
      await store.hold({ ...lease, expiresAt: now + 1000 }, now);
      await store.hold({ ...lease, id: 'other', expiresAt: now + 60_000 }, now);
      // Each resize moves the hold's expiry later than the one before.
      let expiresAt = now + 120_000;
      const resize = (chargeMsat: bigint, amountMsat: bigint, at = now) =>
        store.resizeHold(
          'lease',
          { chargeMsat, amountMsat, initialMsat: 1000n, expiresAt: ++expiresAt },
          at,
        );
      // Charge 100 of 400 and keep 500: the growth of 200 fits (1000 - 400 other - 100 spent).
      expect(await resize(100n, 500n)).toStrictEqual({ ok: true, uses: 0, spentMsat: 1000n });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 100n, heldMsat: 900n });
      // Growing past the balance is not made; the charge is (and the hold keeps the rest).
      expect(await resize(50n, 551n)).toStrictEqual({ ok: false, uses: 0, spentMsat: 1000n });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 150n, heldMsat: 850n });
      // A charge above what is held charges what is held; shrinking always fits.
      expect(await resize(900n, 0n)).toStrictEqual({ ok: true, uses: 0, spentMsat: 1000n });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 600n, heldMsat: 400n });
      // The lease outlives its first expiry (it was moved); the other hold's lapses, so it fits.
      expect(await resize(0n, 400n, now + 70_000)).toStrictEqual({
        ok: true,
        uses: 0,
        spentMsat: 1000n,
      });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 600n, heldMsat: 400n });
      expect(await store.settleHold('lease', { uses: 0, amountMsat: 0n })).toBe(true);
      expect(await resize(0n, 0n)).toBeUndefined();
    });

    it('resizeHold sent again (its expiry already on the hold) charges once', async () => {
      const now = Date.now();
      const balance = { amountMsat: 500n, initialMsat: 1000n };
      await store.hold({ id: 'lease', tokenId: 't', balance, expiresAt: now + 1000 }, now);
      const other = { amountMsat: 300n, initialMsat: 1000n };
      await store.hold({ id: 'other', tokenId: 't', balance: other, expiresAt: now + 60_000 }, now);
      const charge = { chargeMsat: 200n, amountMsat: 500n, initialMsat: 1000n };
      const first = { ...charge, expiresAt: now + 2000 };
      expect(await store.resizeHold('lease', first, now)).toStrictEqual({
        ok: true,
        uses: 0,
        spentMsat: 1000n,
      });
      // The same resize again (a retry after a failure that may have written it): nothing more.
      expect(await store.resizeHold('lease', first, now)).toStrictEqual({
        ok: true,
        uses: 0,
        spentMsat: 1000n,
      });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 200n, heldMsat: 800n });
      // A growth that did not fit, sent again: still not made, still charged once.
      const grow = { ...charge, chargeMsat: 100n, amountMsat: 600n, expiresAt: now + 3000 };
      expect(await store.resizeHold('lease', grow, now)).toMatchObject({ ok: false });
      expect(await store.resizeHold('lease', grow, now)).toMatchObject({ ok: false });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 300n, heldMsat: 700n });
      // The next resize (a later expiry) is made.
      const next = { ...charge, chargeMsat: 50n, amountMsat: 0n, expiresAt: now + 4000 };
      expect(await store.resizeHold('lease', next, now)).toMatchObject({ ok: true });
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 350n, heldMsat: 300n });
    });

    it('resizeHold of a lapsed hold does not bring it back', async () => {
      const now = Date.now();
      const balance = { amountMsat: 600n, initialMsat: 1000n };
      await store.hold({ id: 'dead', tokenId: 't', balance, expiresAt: now + 1000 }, now);
      const later = { id: 'later', tokenId: 't', balance, expiresAt: now + 60_000 };
      expect((await store.hold(later, now + 2000)).ok).toBe(true);
      const grow = {
        chargeMsat: 0n,
        amountMsat: 700n,
        initialMsat: 1000n,
        expiresAt: now + 60_000,
      };
      expect(await store.resizeHold('dead', grow, now + 2000)).toBeUndefined();
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 0n, heldMsat: 600n });
    });

    it('resizeHold of an expired hold not yet released, whose growth does not fit, releases it', async () => {
      const now = Date.now();
      const initialMsat = 1000n;
      const holdOf = (id: string, amountMsat: bigint, expiresAt: number) =>
        store.hold({ id, tokenId: 't', balance: { amountMsat, initialMsat }, expiresAt }, now);
      await holdOf('late', 400n, now + 1000);
      await holdOf('other', 500n, now + 60_000);
      // A growth of 300 does not fit (900 held); releasing the expired holds takes this one too.
      const grow = { chargeMsat: 100n, amountMsat: 600n, initialMsat, expiresAt: now + 60_000 };
      expect(await store.resizeHold('late', grow, now + 2000)).toBeUndefined();
      expect(await store.getUsage('t')).toMatchObject({ spentMsat: 0n, heldMsat: 500n });
    });

    it('resizeHold grows are atomic with holds, across instances', async () => {
      const all = await instances();
      const now = Date.now();
      const expiresAt = now + 60_000;
      const lease = { tokenId: 't', balance: { amountMsat: 0n, initialMsat: 1000n }, expiresAt };
      await store.hold({ ...lease, id: 'a' }, now);
      await store.hold({ ...lease, id: 'b' }, now);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const on = all[i % all.length]!;
          if (i % 4 === 3) return spend(on, 't', 100n, 1000n);
          const id = i % 2 === 0 ? 'a' : 'b';
          return on.resizeHold(
            id,
            {
              chargeMsat: 0n,
              amountMsat: 100n * BigInt(i + 1),
              initialMsat: 1000n,
              expiresAt: expiresAt + i + 1,
            },
            now,
          );
        }),
      );
      expect(results.every((r) => r !== undefined)).toBe(true);
      const usage = await store.getUsage('t');
      expect(usage.spentMsat + usage.heldMsat).toBeLessThanOrEqual(1000n);
      expect(usage.spentMsat).toBe(
        100n * BigInt(results.filter((r, i) => i % 4 === 3 && r?.ok).length),
      );
    });

    it('uses and balance of one token are counted independently', async () => {
      await use(store, 't', 2, 5);
      await spend(store, 't', 40n, 100n);
      expect(await store.getUsage('t')).toMatchObject({ uses: 2, spentMsat: 40n });
    });

    it('a claim is granted exactly once, under concurrency and across instances', async () => {
      const all = await instances();
      const now = Date.now();
      const claim = { expiresAt: now + 60_000, heldUntil: now + 60_000 };
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => all[i % all.length]!.claim('nonce', claim, now)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      for (const s of all) expect(await s.claim('nonce', claim, now)).toBe(false);
      expect(await store.claim('other', claim, now)).toBe(true);
    });

    it('a released claim can be claimed again, a confirmed one cannot, an expired one can', async () => {
      const now = Date.now();
      const claim = { expiresAt: now + 60_000, heldUntil: now + 60_000 };
      expect(await store.claim('k', claim, now)).toBe(true);
      await store.releaseClaim('k');
      expect(await store.claim('k', claim, now)).toBe(true);
      await store.confirmClaim('k');
      await store.releaseClaim('k');
      expect(await store.claim('k', claim, now)).toBe(false);
      expect(await store.claim('k', claim, now + 61_000)).toBe(true);
      expect(await store.claim('old', { ...claim, expiresAt: now - 1 }, now)).toBe(true);
      expect(await store.claim('old', claim, now)).toBe(true);
      expect(await store.claim('old', claim, now)).toBe(false);
    });

    it('a claim whose hold lapsed (its instance died) can be claimed again; renew keeps one', async () => {
      const now = Date.now();
      const claim = { expiresAt: now + 600_000, heldUntil: now + 1000 };
      expect(await store.claim('dead', claim, now)).toBe(true);
      expect(await store.claim('alive', claim, now)).toBe(true);
      await store.renew({ holds: [], claims: ['alive'] }, now + 60_000);
      expect(await store.claim('dead', claim, now + 500)).toBe(false);
      expect(await store.claim('dead', claim, now + 2000)).toBe(true);
      expect(await store.claim('alive', claim, now + 2000)).toBe(false);
    });

    it('keeps sessions: opened once, credited while open, closed once, idle ones listed', async () => {
      const base = {
        service: 'llm',
        depositMsat: 5_000_000n,
        returnInvoice: 'lnbcrt1pret',
        idleTimeoutMs: 300_000,
        openedAt: BASE,
        lastUsedAt: BASE,
      };
      expect(await store.openSession({ ...base, id: 'a' })).toBe(true);
      expect(await store.openSession({ ...base, id: 'a', depositMsat: 1n })).toBe(false);
      expect(await store.openSession({ ...base, id: 'b', lastUsedAt: BASE + 1000 })).toBe(true);
      expect(await store.creditSession('a', 2_000_000n)).toBe(true);
      expect(await store.creditSession('missing', 1n)).toBe(false);
      await store.touchSession('a', BASE + 500);
      await store.touchSession('a', BASE + 100);
      expect(await store.getSession('a')).toStrictEqual({
        ...base,
        id: 'a',
        depositMsat: 7_000_000n,
        lastUsedAt: BASE + 500,
      });
      expect((await store.listIdleSessions(BASE + 300_600, 10)).map((x) => x.id)).toStrictEqual([
        'a',
      ]);
      expect((await store.listIdleSessions(BASE + 301_000, 10)).map((x) => x.id)).toStrictEqual([
        'a',
        'b',
      ]);
      const all = await instances();
      const closed = await Promise.all(all.map((s) => s.closeSession('a', BASE + 600)));
      expect(closed.filter((x) => x !== undefined)).toHaveLength(1);
      expect(closed.find((x) => x !== undefined)).toMatchObject({ id: 'a', closedAt: BASE + 600 });
      expect(await store.creditSession('a', 1n)).toBe(false);
      await store.recordRefund('a', { refundMsat: 6_000_000n, refundStatus: 'succeeded' });
      expect(await store.getSession('a')).toMatchObject({
        closedAt: BASE + 600,
        refundMsat: 6_000_000n,
        refundStatus: 'succeeded',
      });
      expect((await store.listIdleSessions(BASE + 999_999, 10)).map((x) => x.id)).toStrictEqual([
        'b',
      ]);
      expect(await store.getSession('missing')).toBeUndefined();
    });

    it('keeps x402 channels: deposits add up, one voucher wins a race, claims listed', async () => {
      const base = { network: 'eip155:31337', config: '{"payer":"0x1"}' };
      await store.creditChannel({ ...base, id: 'c1' }, 10_000n, '0xd1');
      await store.creditChannel({ ...base, id: 'c2' }, 1_000n, '0xd1');
      expect(await store.getChannel('c1')).toStrictEqual({
        ...base,
        id: 'c1',
        deposit: 10_000n,
        voucherMax: 0n,
        voucherSignature: '',
        claimed: 0n,
        refunded: 0n,
        withdrawRequestedAt: 0,
      });
      const all = await instances();
      const accepted = await Promise.all(
        all.map((s) => s.acceptVoucher('c1', { max: 3_000n, signature: '0xaa' })),
      );
      expect(accepted.filter(Boolean)).toHaveLength(1);
      expect(await store.acceptVoucher('c1', { max: 2_000n, signature: '0xbb' })).toBe(false);
      expect(await store.acceptVoucher('missing', { max: 1n, signature: '0xcc' })).toBe(false);
      await store.creditChannel({ ...base, id: 'c1' }, 10_000n, '0xd2');
      expect(await store.getChannel('c1')).toMatchObject({
        deposit: 20_000n,
        voucherMax: 3_000n,
        voucherSignature: '0xaa',
      });
      expect((await store.listClaimableChannels(10)).map((c) => c.id)).toStrictEqual(['c1']);
      await store.noteClaimed('c1', 3_000n);
      await store.noteClaimed('c1', 1_000n);
      expect(await store.getChannel('c1')).toMatchObject({ claimed: 3_000n });
      expect(await store.listClaimableChannels(10)).toStrictEqual([]);
      expect(await store.getChannel('missing')).toBeUndefined();
    });

    it('counts every deposit into a channel when instances credit it at once, and refuses past 2^63-1', async () => {
      const channel = { id: 'racing', network: 'eip155:31337', config: '{}' };
      const all = await instances();
      await Promise.all(
        [...all, ...all].map((each, i) =>
          each.creditChannel(channel, BigInt(i + 1) * 1_000n, `deposit-${i}`),
        ),
      );
      const credits = 2 * all.length;
      const total = (BigInt(credits) * BigInt(credits + 1) * 1_000n) / 2n;
      expect((await store.getChannel('racing'))?.deposit).toBe(total);
      await expect(store.creditChannel(channel, 2n ** 63n - total, 'over')).rejects.toMatchObject({
        code: 'invalid_amount',
      });
      await expect(store.creditChannel(channel, -1n, 'negative')).rejects.toMatchObject({
        code: 'invalid_amount',
      });
      expect((await store.getChannel('racing'))?.deposit).toBe(total);
      // A refused credit left nothing behind: its reference credits once it fits.
      await store.creditChannel(channel, 2n ** 63n - 1n - total, 'over');
      expect((await store.getChannel('racing'))?.deposit).toBe(2n ** 63n - 1n);
    });

    it('counts a deposit once however often and wherever it is credited again (its reference)', async () => {
      const base = { network: 'eip155:31337', config: '{}' };
      const all = await instances();
      await Promise.all(
        [...all, ...all].map((each) => each.creditChannel({ ...base, id: 'once' }, 5_000n, '0xab')),
      );
      expect((await store.getChannel('once'))?.deposit).toBe(5_000n);
      // Another deposit of the same amount counts; the same reference on another channel too.
      await store.creditChannel({ ...base, id: 'once' }, 5_000n, '0xcd');
      await store.creditChannel({ ...base, id: 'other' }, 7_000n, '0xab');
      await store.creditChannel({ ...base, id: 'once' }, 5_000n, '0xcd');
      expect((await store.getChannel('once'))?.deposit).toBe(10_000n);
      expect((await store.getChannel('other'))?.deposit).toBe(7_000n);
      // A credit without its reference is a caller's mistake, not a deposit counted once.
      const unnamed = store.creditChannel({ ...base, id: 'once' }, 5_000n, '');
      await expect(unnamed).rejects.toBeInstanceOf(TypeError);
      expect((await store.getChannel('once'))?.deposit).toBe(10_000n);
    });

    it('keeps what x402 channels refunded (it only rises) and when their payer asked to withdraw', async () => {
      await store.creditChannel({ id: 'r1', network: 'eip155:31337', config: '{}' }, 9_000n, '0x1');
      await store.noteRefunded('r1', 4_000n);
      await store.noteRefunded('r1', 1_000n);
      await store.noteWithdrawal('r1', 1_765_000_000);
      await store.noteRefunded('missing', 1n);
      expect(await store.getChannel('r1')).toMatchObject({
        deposit: 9_000n,
        refunded: 4_000n,
        withdrawRequestedAt: 1_765_000_000,
      });
      await store.noteWithdrawal('r1', 0);
      expect(await store.getChannel('r1')).toMatchObject({ withdrawRequestedAt: 0 });
      await expect(store.noteRefunded('r1', -1n)).rejects.toMatchObject({ code: 'invalid_amount' });
      await expect(store.noteWithdrawal('r1', 1.5)).rejects.toMatchObject({
        code: 'invalid_amount',
      });
    });

    it('revoke keeps the first revocation; listRevocations returns them all', async () => {
      const before = Date.now();
      await store.revoke('a', 'leaked');
      await store.revoke('b');
      await store.revoke('a', 'again');
      const after = Date.now();
      const listed = (await store.listRevocations()).sort((x, y) =>
        x.tokenId < y.tokenId ? -1 : 1,
      );
      expect(listed.map(({ revokedAt, ...rest }) => rest)).toStrictEqual([
        { tokenId: 'a', reason: 'leaked' },
        { tokenId: 'b' },
      ]);
      for (const r of listed) {
        expect(r.revokedAt).toBeGreaterThanOrEqual(before);
        expect(r.revokedAt).toBeLessThanOrEqual(after);
      }
    });

    it('subscribers hear each revocation of this instance once, until they unsubscribe', async () => {
      const first: Revocation[] = [];
      const second: Revocation[] = [];
      const unsubscribe = store.subscribeRevocations((r) => first.push(r));
      store.subscribeRevocations((r) => second.push(r));
      await store.revoke('x', 'stolen');
      await store.revoke('x', 'twice');
      await store.revoke('y');
      await vi.waitFor(() => expect(second.map((r) => r.tokenId)).toStrictEqual(['x', 'y']), {
        timeout: 1000,
      });
      unsubscribe();
      await store.revoke('z');
      await vi.waitFor(() => expect(second).toHaveLength(3), { timeout: 1000 });
      expect(first.map((r) => r.tokenId)).toStrictEqual(['x', 'y']);
      const listed = await store.listRevocations();
      for (const heard of second) {
        expect(listed.find((r) => r.tokenId === heard.tokenId)).toStrictEqual(heard);
      }
    });

    it('subscribers hear revocations made by another instance within a second', async ({
      skip,
    }) => {
      const peer = await peerOrSkip(skip);
      const heard: Revocation[] = [];
      store.subscribeRevocations((r) => heard.push(r));
      await peer.revoke('remote', 'revoked elsewhere');
      await vi.waitFor(() => expect(heard).toHaveLength(1), { timeout: 1000, interval: 10 });
      expect(heard).toStrictEqual(await store.listRevocations());
      expect(heard[0]).toMatchObject({ tokenId: 'remote', reason: 'revoked elsewhere' });
    });

    it('recordChallenges accepts batches with duplicates, repeated and empty', async () => {
      const challenges = Array.from({ length: 1200 }, (_, i) => ({
        paymentHash: `hash${i % 1100}`,
        tokenId: `tok${i}`,
        service: 'api',
        amountMsat: 1000n,
        createdAt: BASE,
        expiresAt: BASE + HOUR,
      }));
      await store.recordChallenges(challenges);
      await store.recordChallenges(challenges.slice(0, 10));
      await store.recordChallenges([]);
      expect(await codeOf(store.recordChallenges([{ ...challenges[0]!, amountMsat: -5n }]))).toBe(
        'invalid_amount',
      );
    });

    it('pruneExpired deletes the challenges and claims past their expiry, on every instance', async () => {
      const all = await instances();
      const now = Date.now();
      const challenge = (i: number, expiresAt: number) => ({
        paymentHash: `prune${i}`,
        tokenId: `tok${i}`,
        service: 'api',
        amountMsat: 1000n,
        createdAt: now - HOUR,
        expiresAt,
      });
      await store.recordChallenges([
        challenge(1, now - 1),
        challenge(2, now),
        challenge(3, now + HOUR),
      ]);
      const claimed = (expiresAt: number) => ({ expiresAt, heldUntil: expiresAt });
      expect(await store.claim('spent', claimed(now), now - 10)).toBe(true);
      expect(await store.claim('live', claimed(now + HOUR), now)).toBe(true);
      expect(await all[all.length - 1]!.pruneExpired(now)).toStrictEqual({
        challenges: 2,
        claims: 1,
      });
      expect(await store.pruneExpired(now)).toStrictEqual({ challenges: 0, claims: 0 });
      expect(await store.claim('live', claimed(now + HOUR), now)).toBe(false);
      await store.recordChallenges([challenge(3, now + HOUR)]);
      expect(await store.pruneExpired(now + HOUR)).toStrictEqual({ challenges: 1, claims: 1 });
    });

    it('assertHealthy resolves while the store works', async () => {
      await expect(store.assertHealthy()).resolves.toBeUndefined();
    });

    it('reports hold-and-settle throughput (printed, not asserted)', async () => {
      const n = 2000;
      const sequential = await throughput(n, 1, () => use(store, 'seq', 1, n));
      const parallel = await throughput(n, 16, () => use(store, 'par', 1, n));
      console.log(
        `[${name}] hold + settle of one use: ${sequential} calls/s sequential, ${parallel} calls/s with 16 in flight`,
      );
      expect(await store.getUsage('seq')).toMatchObject({ uses: n });
      expect(await store.getUsage('par')).toMatchObject({ uses: n });
    });
  });
}

/** Holds and at once charges `count` uses of `max` (what a request that answered does). */
export async function use(store: Store, tokenId: string, count: number, max: number) {
  const id = `use-${Math.random()}`;
  const now = Date.now();
  const held = await store.hold(
    { id, tokenId, uses: { count, max }, expiresAt: now + 60_000 },
    now,
  );
  if (held.ok) await store.settleHold(id, { uses: count, amountMsat: 0n });
  return held;
}

/** Holds and at once charges `amountMsat` of a balance of `initialMsat`. */
export async function spend(
  store: Store,
  tokenId: string,
  amountMsat: bigint,
  initialMsat: bigint,
) {
  const id = `spend-${Math.random()}`;
  const now = Date.now();
  const balance = { amountMsat, initialMsat };
  const held = await store.hold({ id, tokenId, balance, expiresAt: now + 60_000 }, now);
  if (held.ok) await store.settleHold(id, { uses: 0, amountMsat });
  return held;
}

/** A claim that expires and is held until `time`. */
export function claimUntil(time: number): { expiresAt: number; heldUntil: number } {
  return { expiresAt: time, heldUntil: time };
}
