/**
 * One behavioural suite for every ClientStore: the memory store and the SQLite file run it as is,
 * so both count windows, stale holds, the ledger and credentials the same way.
 */
import { describe, expect, it } from 'vitest';
import { createBudget } from '../../src/client/budget.js';
import type {
  ClientStore,
  LedgerEntry,
  Reservation,
  StoredChannel,
  StoredSession,
} from '../../src/client/types.js';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';

/** What a store's test file provides for each test. */
export interface ClientStoreFixture {
  /** A fresh store over empty state, whose stale-hold time is `staleHoldMs` (default 10 min). */
  store: ClientStore;
  /** Opens another instance over the same state (another process, in production), when there can be one. */
  openPeer?: () => Promise<ClientStore>;
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** 2026-03-14 10:00:00 UTC. */
export const BASE = Date.UTC(2026, 2, 14, 10);
const ORIGIN = 'https://api.example.com';

function reservation(id: string, heldMsat: bigint, fields: Partial<Reservation> = {}): Reservation {
  return {
    id,
    heldMsat,
    createdAt: BASE,
    request: {
      origin: ORIGIN,
      url: `${ORIGIN}/x`,
      protocol: 'l402',
      amountMsat: heldMsat,
      maxFeeMsat: 0n,
    },
    ...fields,
  };
}

export function entry(id: string, fields: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    id,
    kind: 'purchase',
    time: BASE,
    tags: { agent: 'a1' },
    url: `${ORIGIN}/forecast?city=Paris,FR`,
    origin: ORIGIN,
    protocol: 'l402',
    amount: 10_000n,
    unit: 'msat',
    amountMsat: 10_000n,
    feeMsat: 0n,
    reference: `hash-${id}`,
    status: 'pending',
    ...fields,
  };
}

export async function rejects(promise: Promise<unknown>, code: TollwayErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTollwayError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

/** Runs the suite; `open` gives a fresh fixture, with holds going stale after `staleHoldMs`. */
export function describeClientStoreSuite(
  name: string,
  open: (options: { staleHoldMs?: number }) => Promise<ClientStoreFixture>,
): void {
  async function withStore<T>(
    work: (store: ClientStore, fixture: ClientStoreFixture) => Promise<T>,
    options: { staleHoldMs?: number } = {},
  ): Promise<T> {
    const fixture = await open(options);
    try {
      return await work(fixture.store, fixture);
    } finally {
      await fixture.store.close();
    }
  }

  describe(`ClientStore suite: ${name}`, () => {
    describe('holds', () => {
      it('holds in every budget at once or in none', () =>
        withStore(async (store) => {
          const holds = [
            { budget: 'org', window: 'day' as const, limitMsat: 10_000n },
            { budget: 'org/task', window: 'day' as const, limitMsat: 5_000n },
          ];
          expect(await store.tryHold(reservation('r1', 4_000n), holds, BASE)).toEqual({ ok: true });
          expect(await store.tryHold(reservation('r2', 2_000n), holds, BASE)).toEqual({
            ok: false,
            budget: 'org/task',
            window: 'day',
            remainingMsat: 1_000n,
          });
          expect(await store.windowStatus('org', 'day', undefined, BASE)).toEqual({
            spentMsat: 0n,
            heldMsat: 4_000n,
          });
          // Exactly filling the limit is allowed.
          expect(await store.tryHold(reservation('r3', 1_000n), holds, BASE)).toEqual({ ok: true });
          expect(await store.windowStatus('org/task', 'day', undefined, BASE)).toEqual({
            spentMsat: 0n,
            heldMsat: 5_000n,
          });
          await rejects(store.tryHold(reservation('r3', 1n), [], BASE), 'store_error');
        }));

      it('turns a hold into spend at commit time, and forgets released holds', () =>
        withStore(async (store) => {
          const holds = [{ budget: 'a', window: 'hour' as const, limitMsat: 10_000n }];
          await store.tryHold(reservation('r1', 6_000n), holds, BASE);
          await store.tryHold(reservation('r2', 3_000n), holds, BASE);
          await store.commitHold('r1', 5_500n, BASE + 1000);
          await store.releaseHold('r2');
          expect(await store.windowStatus('a', 'hour', undefined, BASE + 1000)).toEqual({
            spentMsat: 5_500n,
            heldMsat: 0n,
          });
          expect(await store.windowStatus('a', 'request', undefined, BASE)).toEqual({
            spentMsat: 0n,
            heldMsat: 0n,
          });
        }));

      it('is idempotent: the first commit or release wins', () =>
        withStore(async (store) => {
          const holds = [{ budget: 'a', window: 'total' as const, limitMsat: 10_000n }];
          await store.tryHold(reservation('r1', 4_000n), holds, BASE);
          await store.tryHold(reservation('r2', 4_000n), holds, BASE);
          await store.commitHold('r1', 3_000n, BASE);
          await store.commitHold('r1', 4_000n, BASE);
          await store.releaseHold('r1');
          await store.releaseHold('r2');
          await store.releaseHold('r2');
          await store.commitHold('r2', 4_000n, BASE);
          await store.releaseHold('never-held');
          expect(await store.windowStatus('a', 'total', undefined, BASE)).toEqual({
            spentMsat: 3_000n,
            heldMsat: 0n,
          });
          await rejects(store.commitHold('never-held', 1n, BASE), 'store_error');
        }));

      it('gives back part of a committed spend (a refund), never more than it spent', () =>
        withStore(async (store) => {
          const windows = ['day', 'total'] as const;
          const holds = windows.map((window) => ({ budget: 'a', window, limitMsat: 100_000n }));
          await store.tryHold(reservation('r1', 50_000n), holds, BASE);
          await store.tryHold(reservation('r2', 1_000n), holds, BASE);
          expect(await store.refundHold('r1', 10_000n)).toBe(0n); // not committed yet
          await store.commitHold('r1', 50_000n, BASE);
          expect(await store.refundHold('r1', 30_000n)).toBe(30_000n);
          expect(await store.refundHold('r1', 30_000n)).toBe(20_000n);
          expect(await store.refundHold('r1', 1n)).toBe(0n);
          expect(await store.refundHold('never-held', 1n)).toBe(0n);
          for (const window of windows) {
            expect(await store.windowStatus('a', window, undefined, BASE)).toEqual({
              spentMsat: 0n,
              heldMsat: 1_000n,
            });
          }
        }));

      it('counts spend inside a rolling window: it leaves the window exactly one window length later', () =>
        withStore(async (store) => {
          const windows = ['hour', 'day', 'month', 'total'] as const;
          const holds = windows.map((window) => ({ budget: 'a', window, limitMsat: 1_000_000n }));
          await store.tryHold(reservation('r1', 1_000n), holds, BASE);
          await store.commitHold('r1', 1_000n, BASE);
          const spent = async (window: (typeof windows)[number], at: number) =>
            (await store.windowStatus('a', window, undefined, at)).spentMsat;
          expect(await spent('hour', BASE + HOUR - 1)).toBe(1_000n);
          expect(await spent('hour', BASE + HOUR)).toBe(0n);
          expect(await spent('day', BASE + DAY - 1)).toBe(1_000n);
          expect(await spent('day', BASE + DAY)).toBe(0n);
          expect(await spent('month', BASE + 30 * DAY - 1)).toBe(1_000n);
          expect(await spent('month', BASE + 30 * DAY)).toBe(0n);
          expect(await spent('total', BASE + 10_000 * DAY)).toBe(1_000n);
        }));

      it('counts per-origin windows apart, and global windows across origins', () =>
        withStore(async (store) => {
          const other = 'https://other.example.org';
          const holds = (origin: string) => [
            { budget: 'a', window: 'day' as const, limitMsat: 10_000n },
            { budget: 'a', window: 'day' as const, origin, limitMsat: 6_000n },
          ];
          const at = (id: string, origin: string, held: bigint) =>
            reservation(id, held, {
              request: {
                origin,
                url: `${origin}/`,
                protocol: 'l402',
                amountMsat: held,
                maxFeeMsat: 0n,
              },
            });
          expect(await store.tryHold(at('r1', ORIGIN, 5_000n), holds(ORIGIN), BASE)).toEqual({
            ok: true,
          });
          expect(await store.tryHold(at('r2', ORIGIN, 2_000n), holds(ORIGIN), BASE)).toEqual({
            ok: false,
            budget: 'a',
            window: 'day',
            origin: ORIGIN,
            remainingMsat: 1_000n,
          });
          expect(await store.tryHold(at('r3', other, 5_000n), holds(other), BASE)).toEqual({
            ok: true,
          });
          expect(await store.tryHold(at('r4', other, 1_000n), holds(other), BASE)).toEqual({
            ok: false,
            budget: 'a',
            window: 'day',
            remainingMsat: 0n,
          });
          expect(await store.windowStatus('a', 'day', ORIGIN, BASE)).toEqual({
            spentMsat: 0n,
            heldMsat: 5_000n,
          });
          expect(await store.windowStatus('a', 'day', undefined, BASE)).toEqual({
            spentMsat: 0n,
            heldMsat: 10_000n,
          });
          await store.commitHold('r1', 4_000n, BASE);
          const total = (origin?: string) => store.windowStatus('a', 'total', origin, BASE);
          expect(await total(ORIGIN)).toEqual({ spentMsat: 4_000n, heldMsat: 0n });
          expect(await total(other)).toEqual({ spentMsat: 0n, heldMsat: 5_000n });
          expect(await total()).toEqual({ spentMsat: 4_000n, heldMsat: 5_000n });
        }));

      it('keeps a stale hold only while its ledger entry is pending or succeeded', () =>
        withStore(
          async (store) => {
            const holds = [{ budget: 'a', window: 'total' as const, limitMsat: 100_000n }];
            for (const id of ['none', 'pending', 'succeeded', 'failed']) {
              await store.tryHold(reservation(id, 1_000n), holds, BASE);
            }
            await store.recordPayment(entry('pending'));
            await store.recordPayment(entry('succeeded', { status: 'succeeded' }));
            await store.recordPayment(entry('failed', { status: 'failed' }));
            const held = async (at: number) =>
              (await store.windowStatus('a', 'total', undefined, at)).heldMsat;
            expect(await held(BASE + 59_999)).toBe(4_000n);
            expect(await held(BASE + 60_000)).toBe(2_000n);
            await store.updatePayment('pending', { status: 'failed' });
            expect(await held(BASE + 60_000)).toBe(1_000n);
            // A late commit of a stale hold still counts as spend.
            await store.commitHold('none', 1_000n, BASE + 70_000);
            expect(await store.windowStatus('a', 'total', undefined, BASE + 70_000)).toEqual({
              spentMsat: 1_000n,
              heldMsat: 1_000n,
            });
          },
          { staleHoldMs: 60_000 },
        ));

      it('holds at most the limit when 50 reservations race for the last 10 sat', () =>
        withStore(async (store) => {
          const budget = createBudget({ store, limits: { day: '100 sat' }, now: () => BASE });
          const spent = await budget.reserve({
            origin: ORIGIN,
            url: ORIGIN,
            protocol: 'l402',
            amountMsat: 90_000n,
            maxFeeMsat: 0n,
          });
          await budget.commit(spent, { amountMsat: 90_000n, feeMsat: 0n });
          const results = await Promise.allSettled(
            Array.from({ length: 50 }, (_, i) =>
              budget.reserve({
                origin: ORIGIN,
                url: `${ORIGIN}/${i}`,
                protocol: 'l402',
                amountMsat: 700n,
                maxFeeMsat: 300n,
              }),
            ),
          );
          const held = results.filter((r) => r.status === 'fulfilled');
          expect(held).toHaveLength(10);
          for (const r of results) {
            if (r.status === 'rejected')
              expect(isTollwayError(r.reason, 'budget_exceeded')).toBe(true);
          }
          expect(await store.windowStatus('agent', 'day', undefined, BASE)).toEqual({
            spentMsat: 90_000n,
            heldMsat: 10_000n,
          });
        }));
    });

    describe('kill switch', () => {
      it('records disabled budgets, visible to every instance over the same state', () =>
        withStore(async (store, fixture) => {
          await store.setBudgetDisabled('org/a', true);
          await store.setBudgetDisabled('org/a', true);
          await store.setBudgetDisabled('org/b', true);
          await store.setBudgetDisabled('org/b', false);
          expect(await store.disabledBudgets()).toEqual(['org/a']);
          if (fixture.openPeer === undefined) return;
          const peer = await fixture.openPeer();
          try {
            expect(await peer.disabledBudgets()).toEqual(['org/a']);
            await peer.setBudgetDisabled('org/a', false);
            expect(await store.disabledBudgets()).toEqual([]);
          } finally {
            await peer.close();
          }
        }));

      it('pauses every payment of the store, seen by every instance over the same state', () =>
        withStore(async (store, fixture) => {
          expect(await store.isPaused()).toBe(false);
          await store.setPaused(true);
          await store.setPaused(true);
          expect(await store.isPaused()).toBe(true);
          if (fixture.openPeer !== undefined) {
            const peer = await fixture.openPeer();
            try {
              expect(await peer.isPaused()).toBe(true);
              await peer.setPaused(false);
            } finally {
              await peer.close();
            }
          } else {
            await store.setPaused(false);
          }
          expect(await store.isPaused()).toBe(false);
        }));
    });

    describe('ledger', () => {
      it('records before paying, updates after, and lists pending payments for recovery', () =>
        withStore(async (store) => {
          await store.recordPayment(entry('p1', { time: BASE + 2 }));
          await store.recordPayment(entry('p2', { time: BASE + 1 }));
          await rejects(store.recordPayment(entry('p1')), 'store_error');
          await store.updatePayment('p1', {
            status: 'succeeded',
            proof: 'ab'.repeat(32),
            feeMsat: 12n,
          });
          await rejects(store.updatePayment('nope', { status: 'failed' }), 'store_error');
          expect((await store.pendingPayments()).map((e) => e.id)).toEqual(['p2']);
          const [p1] = await store.list({ status: 'succeeded' });
          expect(p1).toEqual(
            entry('p1', {
              time: BASE + 2,
              status: 'succeeded',
              proof: 'ab'.repeat(32),
              feeMsat: 12n,
            }),
          );
          // What a payment settled for (an x402 upto settling less than it authorised).
          await store.updatePayment('p2', { amount: 7_000n, amountMsat: 7_000n });
          expect(await store.findPayment('p2')).toEqual(
            entry('p2', { time: BASE + 1, amount: 7_000n, amountMsat: 7_000n }),
          );
          expect(await store.findPayment('nope')).toBeUndefined();
        }));

      it('keeps every field exactly, including token amounts wider than 64 bits', () =>
        withStore(async (store) => {
          const x402 = entry('x1', {
            protocol: 'x402',
            amount: 10n ** 30n,
            unit: 'eip155:8453/erc20:0xabc',
            amountMsat: 2n ** 63n - 1n,
            feeMsat: 0n,
            rate: 'usd_per_btc=65000.5',
            payee: '0xAbC',
            proof: '0xdead',
            status: 'succeeded',
            tags: { agent: 'a1', task: 'weird "quoted", key' },
          });
          await store.recordPayment(x402);
          expect(await store.list()).toEqual([x402]);
          await rejects(store.recordPayment(entry('neg', { amountMsat: -1n })), 'invalid_amount');
          await rejects(
            store.recordPayment(entry('big', { feeMsat: 2n ** 63n })),
            'invalid_amount',
          );
        }));

      it('filters by time, origin, status and tag, newest first, with a limit', () =>
        withStore(async (store) => {
          const other = 'https://other.example.org';
          await store.recordPayment(entry('a', { time: BASE, status: 'succeeded' }));
          await store.recordPayment(
            entry('b', {
              time: BASE + HOUR,
              origin: other,
              status: 'succeeded',
              tags: { task: 't1' },
            }),
          );
          await store.recordPayment(
            entry('c', { time: BASE + 2 * HOUR, status: 'failed', tags: { task: 't1' } }),
          );
          await store.recordPayment(entry('d', { time: BASE + 2 * HOUR }));
          const ids = async (query: Parameters<ClientStore['list']>[0]) =>
            (await store.list(query)).map((e) => e.id);
          expect(await ids({})).toEqual(['d', 'c', 'b', 'a']);
          expect(await ids({ since: BASE + HOUR })).toEqual(['d', 'c', 'b']);
          expect(await ids({ until: BASE + HOUR })).toEqual(['a']);
          expect(await ids({ origin: other })).toEqual(['b']);
          expect(await ids({ status: 'failed' })).toEqual(['c']);
          expect(await ids({ tag: { key: 'task', value: 't1' } })).toEqual(['c', 'b']);
          expect(await ids({ tag: { key: 'task', value: 't2' } })).toEqual([]);
          expect(await ids({ limit: 2 })).toEqual(['d', 'c']);
          expect(await ids({ limit: 0 })).toEqual([]);
          await rejects(store.list({ limit: -1 }), 'invalid_amount');
        }));

      it('totals succeeded payments per origin', () =>
        withStore(async (store) => {
          const other = 'https://other.example.org';
          await store.recordPayment(
            entry('a', { status: 'succeeded', amountMsat: 1_000n, feeMsat: 1n }),
          );
          await store.recordPayment(
            entry('b', { status: 'succeeded', amountMsat: 2_000n, feeMsat: 2n, time: BASE + 5 }),
          );
          await store.recordPayment(entry('c', { status: 'failed', amountMsat: 4_000n }));
          await store.recordPayment(
            entry('d', { status: 'succeeded', origin: other, amountMsat: 8_000n, tags: {} }),
          );
          expect(await store.totals()).toEqual([
            { origin: ORIGIN, count: 2, amountMsat: 3_000n, feeMsat: 3n },
            { origin: other, count: 1, amountMsat: 8_000n, feeMsat: 0n },
          ]);
          expect(await store.totals({ since: BASE + 1, origin: ORIGIN })).toEqual([
            { origin: ORIGIN, count: 1, amountMsat: 2_000n, feeMsat: 2n },
          ]);
          expect(await store.totals({ tag: { key: 'agent', value: 'a1' } })).toHaveLength(1);
          expect(await store.totals({ status: 'failed' })).toEqual([]);
          // Draws, releases and refunds are not purchases.
          await store.recordPayment(entry('e', { kind: 'draw', status: 'succeeded' }));
          await store.recordPayment(entry('f', { kind: 'refund', status: 'succeeded' }));
          expect(await store.totals({ origin: ORIGIN })).toEqual([
            { origin: ORIGIN, count: 2, amountMsat: 3_000n, feeMsat: 3n },
          ]);
        }));

      it('keeps kinds and accounts, filters by them, and resolves only pending purchases', () =>
        withStore(async (store) => {
          await store.recordPayment(entry('buy', { account: 'acct-1' }));
          await store.recordPayment(
            entry('use', { kind: 'draw', account: 'acct-1', reference: 'acct-1', time: BASE + 1 }),
          );
          await store.recordPayment(
            entry('none', { kind: 'release', status: 'succeeded', amountMsat: 0n, time: BASE + 2 }),
          );
          await store.updatePayment('buy', { status: 'succeeded', account: 'acct-2' });
          const ids = async (query: Parameters<ClientStore['list']>[0]) =>
            (await store.list(query)).map((e) => e.id);
          expect(await ids({ kind: 'draw' })).toEqual(['use']);
          expect(await ids({ account: 'acct-2' })).toEqual(['buy']);
          expect(await ids({ protocol: 'l402', kind: 'release' })).toEqual(['none']);
          expect(await ids({ protocol: 'mpp-session' })).toEqual([]);
          expect((await store.list({ account: 'acct-2' }))[0]).toEqual(
            entry('buy', { account: 'acct-2', status: 'succeeded' }),
          );
          // A draw whose cost is not told yet is pending, but is no payment to resolve.
          expect((await store.pendingPayments()).map((e) => e.id)).toEqual([]);
        }));

      it('summarises purchases, draws, releases and refunds by origin, account or tag', () =>
        withStore(async (store) => {
          const other = 'https://other.example.org';
          const add = (id: string, fields: Partial<LedgerEntry>) =>
            store.recordPayment(entry(id, { status: 'succeeded', ...fields }));
          await add('buy', {
            amountMsat: 50_000n,
            feeMsat: 7n,
            account: 's1',
            tags: { agent: 'a' },
          });
          await add('lost', { amountMsat: 9_000n, status: 'failed', account: 's1' });
          await add('open', { amountMsat: 1n, status: 'pending', account: 's1' });
          await add('d1', {
            kind: 'draw',
            amountMsat: 2_100n,
            account: 's1',
            tags: { agent: 'a', model: 'm' },
          });
          await add('d2', { kind: 'draw', amountMsat: 900n, account: 's1', tags: { agent: 'b' } });
          await add('d3', {
            kind: 'draw',
            amountMsat: 4_000n,
            status: 'pending',
            account: 's1',
            tags: { agent: 'b' },
          });
          await add('r0', { kind: 'release', amountMsat: 0n, account: 's1', tags: { agent: 'b' } });
          await add('back', { kind: 'refund', amountMsat: 43_000n, account: 's1', tags: {} });
          await add('x', { origin: other, amountMsat: 5_000n, tags: { agent: 'a' } });
          const sum = (count: number, amountMsat: bigint, feeMsat = 0n) => ({
            count,
            amountMsat,
            feeMsat,
          });
          const none = sum(0, 0n);
          expect(await store.summary({}, 'origin')).toEqual([
            {
              key: ORIGIN,
              purchases: sum(1, 50_000n, 7n),
              draws: sum(2, 3_000n),
              unsettledDraws: sum(1, 4_000n),
              releases: 1,
              refunds: sum(1, 43_000n),
            },
            {
              key: other,
              purchases: sum(1, 5_000n),
              draws: none,
              unsettledDraws: none,
              releases: 0,
              refunds: none,
            },
          ]);
          expect(
            (await store.summary({}, 'account')).map((r) => [r.key, r.purchases.count]),
          ).toEqual([
            ['', 1],
            ['s1', 1],
          ]);
          const byAgent = await store.summary({ kind: 'draw' }, { tag: 'agent' });
          expect(
            byAgent.map((r) => [r.key, r.draws.amountMsat, r.unsettledDraws.amountMsat]),
          ).toEqual([
            ['a', 2_100n, 0n],
            ['b', 900n, 4_000n],
          ]);
          const byModel = await store.summary({ origin: ORIGIN }, { tag: 'model' });
          expect(byModel.map((r) => [r.key, r.draws.amountMsat])).toEqual([
            ['', 900n],
            ['m', 2_100n],
          ]);
          expect(await store.summary({ since: BASE + 1 }, 'origin')).toEqual([]);
        }));
    });

    describe('sessions', () => {
      const session = (id: string, fields: Partial<StoredSession> = {}): StoredSession => ({
        id,
        origin: ORIGIN,
        scope: '/v1',
        url: `${ORIGIN}/v1/chat`,
        method: 'POST',
        challenge: {
          id: 'c1',
          realm: 'api',
          method: 'lightning',
          intent: 'session',
          request: 'e30',
        },
        preimage: 'ab'.repeat(32),
        returnInvoice: 'lnbcrt1...',
        returnInvoiceExpiresAt: BASE + DAY,
        idleTimeoutMs: 300_000,
        openedAt: BASE,
        state: 'opening',
        ...fields,
      });

      it('saves, lists by origin and state, and changes a session only from the state given', () =>
        withStore(async (store) => {
          await store.saveSession(session('s2', { openedAt: BASE + 1 }));
          await store.saveSession(session('s1'));
          await store.saveSession(
            session('s3', {
              origin: 'https://other.example.org',
              state: 'open',
              openedAt: BASE + 2,
            }),
          );
          expect(await store.getSession('s1')).toEqual(session('s1'));
          expect(await store.getSession('nope')).toBeUndefined();
          expect((await store.listSessions()).map((s) => s.id)).toEqual(['s1', 's2', 's3']);
          expect((await store.listSessions({ origin: ORIGIN })).map((s) => s.id)).toEqual([
            's1',
            's2',
          ]);
          expect((await store.listSessions({ states: ['open'] })).map((s) => s.id)).toEqual(['s3']);
          expect(await store.updateSession('s1', { state: 'open' }, 'opening')).toBe(true);
          expect(await store.updateSession('s1', { state: 'closing' }, 'opening')).toBe(false);
          expect(await store.updateSession('s1', { state: 'closing' }, 'open')).toBe(true);
          const closed = {
            state: 'closed' as const,
            closedAt: BASE + 5,
            refundMsat: 43_000n,
            refundStatus: 'succeeded',
          };
          expect(await store.updateSession('s1', closed, 'closing')).toBe(true);
          expect(await store.updateSession('s1', closed, 'closing')).toBe(false);
          expect(await store.updateSession('nope', closed)).toBe(false);
          expect(await store.getSession('s1')).toEqual(session('s1', closed));
        }));

      it('lets one of two instances over the same state close a session', () =>
        withStore(async (store, { openPeer }) => {
          if (openPeer === undefined) return;
          const peer = await openPeer();
          try {
            await store.saveSession(session('s1', { state: 'open' }));
            const wins = await Promise.all([
              store.updateSession('s1', { state: 'closing' }, 'open'),
              peer.updateSession('s1', { state: 'closing' }, 'open'),
            ]);
            expect(wins.filter(Boolean)).toHaveLength(1);
            expect((await peer.getSession('s1'))?.state).toBe('closing');
          } finally {
            await peer.close();
          }
        }));
    });

    describe('x402 channels', () => {
      const channel = (id: string, fields: Partial<StoredChannel> = {}): StoredChannel => ({
        id,
        origin: ORIGIN,
        url: `${ORIGIN}/search`,
        unit: 'eip155:31337/erc20:0x5fbdb2315678afecb367f032d93f642f64180aa3',
        record: { chargedCumulativeAmount: '3000', balance: '5000' },
        openedAt: BASE,
        state: 'open',
        ...fields,
      });

      it('saves, lists, and changes a channel only from the state given; a null record goes', () =>
        withStore(async (store) => {
          await store.saveChannel(channel('0xb', { openedAt: BASE + 1 }));
          await store.saveChannel(channel('0xa'));
          await store.saveChannel(
            channel('0xc', { origin: 'https://other.example.org', openedAt: BASE + 2 }),
          );
          expect(await store.getChannel('0xa')).toEqual(channel('0xa'));
          expect(await store.getChannel('0xnope')).toBeUndefined();
          expect((await store.listChannels()).map((c) => c.id)).toEqual(['0xa', '0xb', '0xc']);
          expect((await store.listChannels({ origin: ORIGIN })).map((c) => c.id)).toEqual([
            '0xa',
            '0xb',
          ]);
          expect(await store.updateChannel('0xa', { state: 'closing' }, 'open')).toBe(true);
          expect(await store.updateChannel('0xa', { state: 'closing' }, 'open')).toBe(false);
          expect((await store.listChannels({ states: ['open'] })).map((c) => c.id)).toEqual([
            '0xb',
            '0xc',
          ]);
          const closed = { state: 'closed' as const, closedAt: BASE + 5, refund: 2_000n };
          expect(await store.updateChannel('0xa', { ...closed, record: null }, 'closing')).toBe(
            true,
          );
          const { record: _gone, ...rest } = channel('0xa', closed);
          expect(await store.getChannel('0xa')).toEqual(rest);
          expect(await store.updateChannel('0xa', { record: { balance: '1' } })).toBe(true);
          expect((await store.getChannel('0xa'))?.record).toEqual({ balance: '1' });
          expect(await store.updateChannel('0xnope', closed)).toBe(false);
        }));

      it('lets one of two instances over the same state close a channel', () =>
        withStore(async (store, { openPeer }) => {
          if (openPeer === undefined) return;
          const peer = await openPeer();
          try {
            await store.saveChannel(channel('0xa'));
            const wins = await Promise.all([
              store.updateChannel('0xa', { state: 'closing' }, 'open'),
              peer.updateChannel('0xa', { state: 'closing' }, 'open'),
            ]);
            expect(wins.filter(Boolean)).toHaveLength(1);
            expect((await peer.getChannel('0xa'))?.state).toBe('closing');
          } finally {
            await peer.close();
          }
        }));
    });

    describe('credentials', () => {
      const credential = (scope: string, fields: { expiresAt?: number; value?: string } = {}) => ({
        origin: ORIGIN,
        scope,
        protocol: 'l402' as const,
        header: { name: 'Authorization', value: fields.value ?? `L402 ${scope}` },
        createdAt: BASE,
        ...(fields.expiresAt !== undefined ? { expiresAt: fields.expiresAt } : {}),
      });

      it('finds the longest scope that covers the path, skipping expired ones', () =>
        withStore(async (store) => {
          await store.saveCredential(credential('/'));
          await store.saveCredential(credential('/api'));
          await store.saveCredential(credential('/api/v1', { expiresAt: BASE + 1000 }));
          const scope = async (path: string, at = BASE) =>
            (await store.findCredential(ORIGIN, path, at))?.scope;
          expect(await scope('/api/v1/forecast')).toBe('/api/v1');
          expect(await scope('/api/v1/forecast', BASE + 1000)).toBe('/api');
          expect(await scope('/api')).toBe('/api');
          expect(await scope('/apix')).toBe('/');
          expect(
            await store.findCredential('https://else.example.com', '/api', BASE),
          ).toBeUndefined();
          expect(await store.findCredential(ORIGIN, '/api/v1/x', BASE)).toEqual(
            credential('/api/v1', { expiresAt: BASE + 1000 }),
          );
        }));

      it('replaces a credential of the same scope and deletes one', () =>
        withStore(async (store) => {
          await store.saveCredential(credential('/api', { value: 'L402 old' }));
          await store.saveCredential(credential('/api', { value: 'L402 new' }));
          expect((await store.findCredential(ORIGIN, '/api/x', BASE))?.header.value).toBe(
            'L402 new',
          );
          await store.deleteCredential(ORIGIN, '/api');
          await store.deleteCredential(ORIGIN, '/api');
          expect(await store.findCredential(ORIGIN, '/api/x', BASE)).toBeUndefined();
        }));
    });
  });
}
