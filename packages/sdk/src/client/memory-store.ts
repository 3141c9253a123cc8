/**
 * A {@link ClientStore} in process memory: for tests, and for short-lived agents that need no
 * history. Every method runs without awaiting in between, so each is atomic within the process.
 */

import { TollwayError } from '../errors.js';
import { minBigint } from '../internal/bigint.js';
import { assertStorableAmount } from '../stores/common.js';
import {
  addToSummary,
  assertLedgerEntry,
  assertQueryLimit,
  DEFAULT_STALE_HOLD_MS,
  emptySummary,
  groupKey,
  matchesQuery,
  patchChannel,
  pickCredential,
  windowStart,
} from './store-common.js';
import type {
  BudgetWindowStatus,
  ClientStore,
  LedgerEntry,
  LedgerQuery,
  LedgerSummary,
  StoredChannel,
  StoredCredential,
  StoredSession,
} from './types.js';

/** Options of {@link createMemoryClientStore}. */
export interface MemoryClientStoreOptions {
  /**
   * A hold older than this (ms) stops counting unless a ledger entry with its reservation id is
   * pending or succeeded (the payment may be in flight, or done but not yet committed).
   * Default 10 minutes.
   */
  staleHoldMs?: number;
}

interface Hold {
  id: string;
  origin: string;
  heldMsat: bigint;
  createdAt: number;
  budgets: ReadonlySet<string>;
  state: 'open' | 'committed' | 'released';
  spentMsat: bigint;
  committedAt: number;
}

function copyEntry(entry: LedgerEntry): LedgerEntry {
  return { ...entry, tags: { ...entry.tags } };
}

function copySession(session: StoredSession): StoredSession {
  return { ...session, challenge: { ...session.challenge } };
}

function copyChannel(channel: StoredChannel): StoredChannel {
  return channel.record === undefined
    ? { ...channel }
    : { ...channel, record: { ...channel.record } };
}

/**
 * Creates a {@link ClientStore} that keeps everything in memory and forgets it on exit.
 *
 * @example
 * ```ts
 * const store = createMemoryClientStore();
 * const budget = createBudget({ store, limits: { day: '1000 sat' } });
 * ```
 */
export function createMemoryClientStore(options: MemoryClientStoreOptions = {}): ClientStore {
  const staleHoldMs = options.staleHoldMs ?? DEFAULT_STALE_HOLD_MS;
  const holds = new Map<string, Hold>();
  const holdsByBudget = new Map<string, Set<Hold>>();
  const payments = new Map<string, { seq: number; entry: LedgerEntry }>();
  const credentials = new Map<string, Map<string, StoredCredential>>();
  const disabled = new Set<string>();
  let paused = false;
  const sessions = new Map<string, { seq: number; session: StoredSession }>();
  const channels = new Map<string, { seq: number; channel: StoredChannel }>();
  let seq = 0;

  function counts(hold: Hold, now: number): boolean {
    if (hold.state !== 'open') return false;
    if (now - hold.createdAt < staleHoldMs) return true;
    const status = payments.get(hold.id)?.entry.status;
    return status === 'pending' || status === 'succeeded';
  }

  function usage(
    budget: string,
    window: BudgetWindowStatus['window'],
    origin: string | undefined,
    now: number,
  ): { spentMsat: bigint; heldMsat: bigint } {
    let spentMsat = 0n;
    let heldMsat = 0n;
    if (window === 'request') return { spentMsat, heldMsat };
    const start = windowStart(window, now);
    for (const hold of holdsByBudget.get(budget) ?? []) {
      if (origin !== undefined && hold.origin !== origin) continue;
      if (hold.state === 'committed' && hold.committedAt > start) spentMsat += hold.spentMsat;
      else if (counts(hold, now)) heldMsat += hold.heldMsat;
    }
    return { spentMsat, heldMsat };
  }

  function sortedEntries(query: LedgerQuery): LedgerEntry[] {
    assertQueryLimit(query.limit);
    return [...payments.values()]
      .filter(({ entry }) => matchesQuery(entry, query))
      .sort((a, b) => b.entry.time - a.entry.time || b.seq - a.seq)
      .map(({ entry }) => copyEntry(entry));
  }

  return {
    async tryHold(reservation, wanted, now) {
      assertStorableAmount(reservation.heldMsat, 'heldMsat');
      if (holds.has(reservation.id)) {
        throw new TollwayError('store_error', `reservation ${reservation.id} is already held`);
      }
      for (const { budget, window, origin, limitMsat } of wanted) {
        const { spentMsat, heldMsat } = usage(budget, window, origin, now);
        const used = spentMsat + heldMsat;
        if (used + reservation.heldMsat > limitMsat) {
          const remainingMsat = limitMsat > used ? limitMsat - used : 0n;
          return {
            ok: false,
            budget,
            window,
            ...(origin !== undefined ? { origin } : {}),
            remainingMsat,
          };
        }
      }
      const hold: Hold = {
        id: reservation.id,
        origin: reservation.request.origin,
        heldMsat: reservation.heldMsat,
        createdAt: reservation.createdAt,
        budgets: new Set(wanted.map((w) => w.budget)),
        state: 'open',
        spentMsat: 0n,
        committedAt: 0,
      };
      holds.set(hold.id, hold);
      for (const budget of hold.budgets) {
        const set = holdsByBudget.get(budget) ?? new Set();
        set.add(hold);
        holdsByBudget.set(budget, set);
      }
      return { ok: true };
    },

    async commitHold(reservationId, spentMsat, now) {
      assertStorableAmount(spentMsat, 'spentMsat');
      const hold = holds.get(reservationId);
      if (hold === undefined) {
        throw new TollwayError('store_error', `no reservation ${reservationId} to commit`);
      }
      if (hold.state !== 'open') return;
      hold.state = 'committed';
      hold.spentMsat = spentMsat;
      hold.committedAt = now;
    },

    async refundHold(reservationId, amountMsat) {
      const hold = holds.get(reservationId);
      if (hold?.state !== 'committed' || amountMsat <= 0n) return 0n;
      const back = minBigint(amountMsat, hold.spentMsat);
      hold.spentMsat -= back;
      return back;
    },

    async releaseHold(reservationId) {
      const hold = holds.get(reservationId);
      if (hold?.state === 'open') hold.state = 'released';
    },

    async windowStatus(budget, window, origin, now) {
      return usage(budget, window, origin, now);
    },

    async setBudgetDisabled(budget, off) {
      if (off) disabled.add(budget);
      else disabled.delete(budget);
    },

    async disabledBudgets() {
      return [...disabled];
    },

    async setPaused(on) {
      paused = on;
    },

    async isPaused() {
      return paused;
    },

    async recordPayment(entry) {
      assertLedgerEntry(entry);
      if (payments.has(entry.id)) {
        throw new TollwayError('store_error', `payment ${entry.id} is already in the ledger`);
      }
      seq += 1;
      payments.set(entry.id, { seq, entry: copyEntry(entry) });
    },

    async findPayment(id) {
      const entry = payments.get(id)?.entry;
      return entry === undefined ? undefined : { ...entry };
    },

    async updatePayment(id, patch) {
      const row = payments.get(id);
      if (row === undefined)
        throw new TollwayError('store_error', `no payment ${id} in the ledger`);
      const entry = { ...row.entry, ...patch };
      assertLedgerEntry(entry);
      row.entry = entry;
    },

    async pendingPayments() {
      return sortedEntries({ status: 'pending', kind: 'purchase' }).reverse();
    },

    async list(query = {}) {
      const entries = sortedEntries(query);
      return query.limit === undefined ? entries : entries.slice(0, query.limit);
    },

    async totals(query = {}) {
      const byOrigin = new Map<
        string,
        { origin: string; count: number; amountMsat: bigint; feeMsat: bigint }
      >();
      for (const entry of sortedEntries(query)) {
        if (entry.status !== 'succeeded' || entry.kind !== 'purchase') continue;
        const total = byOrigin.get(entry.origin) ?? {
          origin: entry.origin,
          count: 0,
          amountMsat: 0n,
          feeMsat: 0n,
        };
        total.count += 1;
        total.amountMsat += entry.amountMsat;
        total.feeMsat += entry.feeMsat;
        byOrigin.set(entry.origin, total);
      }
      return [...byOrigin.values()].sort((a, b) =>
        a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0,
      );
    },

    async summary(query, by) {
      const rows = new Map<string, LedgerSummary>();
      for (const entry of sortedEntries(query)) {
        const key = groupKey(entry, by);
        const row = rows.get(key) ?? emptySummary(key);
        addToSummary(row, entry);
        rows.set(key, row);
      }
      return [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async saveCredential(credential) {
      const scopes = credentials.get(credential.origin) ?? new Map<string, StoredCredential>();
      scopes.set(credential.scope, { ...credential, header: { ...credential.header } });
      credentials.set(credential.origin, scopes);
    },

    async findCredential(origin, path, now) {
      const found = pickCredential(credentials.get(origin)?.values() ?? [], path, now);
      return found && { ...found, header: { ...found.header } };
    },

    async deleteCredential(origin, scope) {
      credentials.get(origin)?.delete(scope);
    },

    async saveSession(session) {
      seq += 1;
      sessions.set(session.id, {
        seq: sessions.get(session.id)?.seq ?? seq,
        session: copySession(session),
      });
    },

    async getSession(id) {
      const found = sessions.get(id)?.session;
      return found && copySession(found);
    },

    async listSessions(query = {}) {
      return [...sessions.values()]
        .filter(
          ({ session }) =>
            (query.origin === undefined || session.origin === query.origin) &&
            (query.states === undefined || query.states.includes(session.state)),
        )
        .sort((a, b) => a.session.openedAt - b.session.openedAt || a.seq - b.seq)
        .map(({ session }) => copySession(session));
    },

    async updateSession(id, patch, from) {
      const row = sessions.get(id);
      if (row === undefined || (from !== undefined && row.session.state !== from)) return false;
      if (patch.refundMsat !== undefined) assertStorableAmount(patch.refundMsat, 'refundMsat');
      row.session = { ...row.session, ...patch };
      return true;
    },

    async saveChannel(channel) {
      if (channel.refund !== undefined) assertStorableAmount(channel.refund, 'refund');
      seq += 1;
      channels.set(channel.id, {
        seq: channels.get(channel.id)?.seq ?? seq,
        channel: copyChannel(channel),
      });
    },

    async getChannel(id) {
      const found = channels.get(id)?.channel;
      return found && copyChannel(found);
    },

    async listChannels(query = {}) {
      return [...channels.values()]
        .filter(
          ({ channel }) =>
            (query.origin === undefined || channel.origin === query.origin) &&
            (query.states === undefined || query.states.includes(channel.state)),
        )
        .sort((a, b) => a.channel.openedAt - b.channel.openedAt || a.seq - b.seq)
        .map(({ channel }) => copyChannel(channel));
    },

    async updateChannel(id, patch, from) {
      const row = channels.get(id);
      if (row === undefined || (from !== undefined && row.channel.state !== from)) return false;
      if (patch.refund !== undefined) assertStorableAmount(patch.refund, 'refund');
      row.channel = patchChannel(row.channel, patch);
      return true;
    },

    async close() {},
  };
}
