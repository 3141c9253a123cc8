/**
 * A {@link Store} held in this process's memory: for tests and single-process setups that need no
 * persistence. Every method completes synchronously inside its promise, so each check-and-update is
 * atomic. Revocations reach only this instance's subscribers.
 */
import type {
  IssuedChallenge,
  RevenueRow,
  Revocation,
  Settlement,
  Store,
  TokenRecord,
  TokenUsage,
} from '../server/store.js';
import {
  assertCount,
  assertStorableAmount,
  CLAIM_PRUNE_INTERVAL_MS,
  createRevocationListeners,
} from './common.js';

const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

function inRange(time: number, query: { since?: number; until?: number }): boolean {
  return (
    (query.since === undefined || time >= query.since) &&
    (query.until === undefined || time < query.until)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Creates an in-memory {@link Store}. Nothing survives the process; `init()` and `close()` are no-ops.
 *
 * @example
 * ```ts
 * const store = createMemoryStore();
 * await store.init();
 * await store.claimOnce('nonce-1', Date.now() + 60_000); // true
 * ```
 */
export function createMemoryStore(): Store {
  const challenges = new Map<string, IssuedChallenge>();
  const settlements = new Map<string, Settlement>();
  const tokens = new Map<string, TokenRecord>();
  const usage = new Map<string, TokenUsage>();
  const revocations = new Map<string, Revocation>();
  const claims = new Map<string, number>();
  const listeners = createRevocationListeners();
  let lastPrune = 0;

  function usageOf(tokenId: string): TokenUsage {
    return usage.get(tokenId) ?? { tokenId, uses: 0, spentMsat: 0n };
  }

  function pruneClaims(now: number): void {
    lastPrune = now;
    for (const [key, expiresAt] of claims) if (expiresAt <= now) claims.delete(key);
  }

  return {
    async init() {},

    async close() {},

    async recordChallenges(list) {
      for (const c of list) assertStorableAmount(c.amountMsat, 'challenge amountMsat');
      for (const c of list)
        if (!challenges.has(c.paymentHash)) challenges.set(c.paymentHash, { ...c });
    },

    async recordSettlement(settlement) {
      assertStorableAmount(settlement.amount, 'settlement amount');
      if (settlements.has(settlement.reference)) return false;
      settlements.set(settlement.reference, { ...settlement });
      return true;
    },

    async listSettlements(query) {
      return [...settlements.values()]
        .filter(
          (s) =>
            inRange(s.settledAt, query) &&
            (query.service === undefined || s.service === query.service) &&
            (query.protocol === undefined || s.protocol === query.protocol),
        )
        .sort((a, b) => b.settledAt - a.settledAt || compareText(a.reference, b.reference))
        .slice(0, query.limit)
        .map((s) => ({ ...s }));
    },

    async revenue(query) {
      const size = BUCKET_MS[query.bucket];
      const rows = new Map<string, RevenueRow>();
      for (const s of settlements.values()) {
        if (!inRange(s.settledAt, query)) continue;
        const bucket = Math.floor(s.settledAt / size) * size;
        const key = JSON.stringify([bucket, s.service, s.protocol, s.unit]);
        const row = rows.get(key);
        if (row === undefined) {
          rows.set(key, {
            bucket,
            service: s.service,
            protocol: s.protocol,
            unit: s.unit,
            amount: s.amount,
            count: 1,
          });
        } else {
          row.amount += s.amount;
          row.count += 1;
        }
      }
      return [...rows.values()].sort(
        (a, b) =>
          a.bucket - b.bucket ||
          compareText(a.service, b.service) ||
          compareText(a.protocol, b.protocol) ||
          compareText(a.unit, b.unit),
      );
    },

    async saveToken(token) {
      if (token.initialBalanceMsat !== undefined) {
        assertStorableAmount(token.initialBalanceMsat, 'token initialBalanceMsat');
      }
      if (!tokens.has(token.tokenId)) tokens.set(token.tokenId, { ...token });
    },

    async getToken(tokenId) {
      const token = tokens.get(tokenId);
      return token === undefined ? undefined : { ...token };
    },

    async listTokens(query) {
      const offset = query.offset ?? 0;
      return [...tokens.values()]
        .filter((t) => query.service === undefined || t.service === query.service)
        .sort((a, b) => a.createdAt - b.createdAt || compareText(a.tokenId, b.tokenId))
        .slice(offset, query.limit === undefined ? undefined : offset + query.limit)
        .map((t) => ({ ...t }));
    },

    async getUsage(tokenId) {
      return { ...usageOf(tokenId) };
    },

    async consumeUses(tokenId, count, maxUses) {
      assertCount(count, 'count');
      assertCount(maxUses, 'maxUses');
      const current = usageOf(tokenId);
      if (current.uses > maxUses - count) return { ok: false, uses: current.uses };
      usage.set(tokenId, { ...current, uses: current.uses + count });
      return { ok: true, uses: current.uses + count };
    },

    async spendBalance(tokenId, amountMsat, initialMsat) {
      assertStorableAmount(amountMsat, 'amountMsat');
      assertStorableAmount(initialMsat, 'initialMsat');
      const current = usageOf(tokenId);
      if (current.spentMsat > initialMsat - amountMsat) {
        const left = initialMsat - current.spentMsat;
        return { ok: false, remainingMsat: left > 0n ? left : 0n };
      }
      const spentMsat = current.spentMsat + amountMsat;
      usage.set(tokenId, { ...current, spentMsat });
      return { ok: true, remainingMsat: initialMsat - spentMsat };
    },

    async claimOnce(key, expiresAt) {
      const now = Date.now();
      if (now - lastPrune >= CLAIM_PRUNE_INTERVAL_MS) pruneClaims(now);
      const existing = claims.get(key);
      if (existing !== undefined && existing > now) return false;
      claims.set(key, expiresAt);
      return true;
    },

    async revoke(tokenId, reason) {
      if (revocations.has(tokenId)) return;
      const revocation: Revocation = {
        tokenId,
        ...(reason === undefined ? {} : { reason }),
        revokedAt: Date.now(),
      };
      revocations.set(tokenId, revocation);
      listeners.emit(revocation);
    },

    async listRevocations() {
      return [...revocations.values()].map((r) => ({ ...r }));
    },

    subscribeRevocations(listener) {
      return listeners.add(listener);
    },
  };
}
