/**
 * A {@link Store} held in this process's memory: for tests and single-process setups that need no
 * persistence. Every method completes synchronously inside its promise, so each check-and-update is
 * atomic. Revocations reach only this instance's subscribers.
 */
import type {
  ChannelRecord,
  IssuedChallenge,
  RevenueRow,
  Revocation,
  SessionRecord,
  Settlement,
  Store,
  StoredDocument,
  TokenRecord,
  TokenUsage,
} from '../server/store.js';
import {
  assertAdvances,
  assertAllowance,
  assertCharge,
  assertCount,
  assertCreditReference,
  assertHold,
  assertResize,
  assertStorableAmount,
  CLAIM_PRUNE_INTERVAL_MS,
  chargedOf,
  chargeOnlyStep,
  createRevocationListeners,
  depositOverflow,
  type HeldAmounts,
  heldOf,
  holdOutcome,
  MAX_STORED_AMOUNT,
  resizedBy,
  resizeStep,
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
 * await store.claim('nonce-1', { expiresAt: Date.now() + 60_000, heldUntil: Date.now() + 60_000 }, Date.now()); // true
 * ```
 */
export function createMemoryStore(): Store {
  const challenges = new Map<string, IssuedChallenge>();
  const settlements = new Map<string, Settlement>();
  const tokens = new Map<string, TokenRecord>();
  const usage = new Map<string, TokenUsage>();
  const holds = new Map<string, HeldAmounts & { tokenId: string; expiresAt: number }>();
  const revocations = new Map<string, Revocation>();
  const sessions = new Map<string, SessionRecord>();
  const channels = new Map<string, ChannelRecord>();
  /** The references of the credits {@link Store.creditChannel} made, by channel. */
  const channelCredits = new Map<string, Set<string>>();
  const claims = new Map<string, { expiresAt: number; heldUntil?: number }>();
  const listeners = createRevocationListeners();
  /** Rate-limit bucket clocks, unix µs, and freebie windows. */
  const buckets = new Map<string, number>();
  const freebieWindows = new Map<string, { used: number; resetsAt: number }>();
  const documents = new Map<string, StoredDocument>();
  let lastPrune = 0;
  let lastLimitPrune = 0;

  function usageOf(tokenId: string): TokenUsage {
    return usage.get(tokenId) ?? { tokenId, uses: 0, spentMsat: 0n, heldUses: 0, heldMsat: 0n };
  }

  function pruneClaims(now: number): number {
    lastPrune = now;
    let pruned = 0;
    for (const [key, claim] of claims) {
      if (claim.expiresAt > now) continue;
      claims.delete(key);
      pruned += 1;
    }
    return pruned;
  }

  function pruneChallenges(now: number): number {
    let pruned = 0;
    for (const [hash, challenge] of challenges) {
      if (challenge.expiresAt > now) continue;
      challenges.delete(hash);
      pruned += 1;
    }
    return pruned;
  }

  /** Forgets full buckets and ended freebie windows, at most once a minute. */
  function pruneLimits(now: number): void {
    if (now - lastLimitPrune < CLAIM_PRUNE_INTERVAL_MS) return;
    lastLimitPrune = now;
    for (const [key, tat] of buckets) if (tat <= now * 1000) buckets.delete(key);
    for (const [key, window] of freebieWindows) {
      if (window.resetsAt <= now) freebieWindows.delete(key);
    }
  }

  /** Removes a hold and takes what it held off the token's counters. */
  function takeHold(id: string): (HeldAmounts & { tokenId: string }) | undefined {
    const held = holds.get(id);
    if (held === undefined) return undefined;
    holds.delete(id);
    const current = usageOf(held.tokenId);
    usage.set(held.tokenId, {
      ...current,
      heldUses: current.heldUses - held.uses,
      heldMsat: current.heldMsat - held.amountMsat,
    });
    return held;
  }

  function releaseExpired(tokenId: string, now: number): void {
    for (const [id, held] of holds) {
      if (held.tokenId === tokenId && held.expiresAt <= now) takeHold(id);
    }
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

    async hold(hold, now) {
      assertHold(hold);
      releaseExpired(hold.tokenId, now);
      const current = usageOf(hold.tokenId);
      const { uses: usesHeld, amountMsat } = heldOf(hold);
      const fits =
        current.uses + current.heldUses <= (hold.uses?.max ?? Number.MAX_SAFE_INTEGER) - usesHeld &&
        current.spentMsat + current.heldMsat <=
          (hold.balance?.initialMsat ?? MAX_STORED_AMOUNT) - amountMsat;
      if (!fits) return holdOutcome(current, false);
      const next = {
        ...current,
        heldUses: current.heldUses + usesHeld,
        heldMsat: current.heldMsat + amountMsat,
      };
      usage.set(hold.tokenId, next);
      holds.set(hold.id, {
        tokenId: hold.tokenId,
        uses: usesHeld,
        amountMsat,
        expiresAt: hold.expiresAt,
      });
      return holdOutcome(next, true);
    },

    async settleHold(id, charge) {
      assertCharge(charge);
      const held = takeHold(id);
      if (held === undefined) return false;
      const charged = chargedOf(held, charge);
      const current = usageOf(held.tokenId);
      usage.set(held.tokenId, {
        ...current,
        uses: current.uses + charged.uses,
        spentMsat: current.spentMsat + charged.amountMsat,
      });
      return true;
    },

    async releaseHold(id) {
      takeHold(id);
    },

    async resizeHold(id, resize, now) {
      assertResize(resize);
      const held = holds.get(id);
      if (held === undefined) return undefined;
      if (resizedBy(held.expiresAt, resize)) {
        return holdOutcome(usageOf(held.tokenId), held.amountMsat === resize.amountMsat);
      }
      const step = resizeStep(held.amountMsat, resize);
      const fits = (usage: TokenUsage) =>
        usage.spentMsat + usage.heldMsat <= resize.initialMsat - step.growthMsat;
      let ok = fits(usageOf(held.tokenId));
      if (!ok) {
        releaseExpired(held.tokenId, now);
        if (!holds.has(id)) return undefined;
        ok = fits(usageOf(held.tokenId));
      }
      const made = ok
        ? { ...step, amountMsat: resize.amountMsat }
        : chargeOnlyStep(held.amountMsat, resize);
      const current = usageOf(held.tokenId);
      const next = {
        ...current,
        spentMsat: current.spentMsat + made.chargeMsat,
        heldMsat: current.heldMsat + made.heldDeltaMsat,
      };
      usage.set(held.tokenId, next);
      held.amountMsat = made.amountMsat;
      held.expiresAt = resize.expiresAt;
      return holdOutcome(next, ok);
    },

    async takeFreebie(key, allowance, now) {
      assertAllowance(allowance);
      pruneLimits(now);
      let window = freebieWindows.get(key);
      if (window === undefined || window.resetsAt <= now) {
        window = { used: 0, resetsAt: now + allowance.periodMs };
        freebieWindows.set(key, window);
      }
      if (window.used >= allowance.requests) return { granted: false, resetsAt: window.resetsAt };
      window.used += 1;
      return { granted: true, resetsAt: window.resetsAt };
    },

    async advanceBuckets(advances, now) {
      assertAdvances(advances);
      pruneLimits(now);
      return advances.map(({ key, costMicros, fromMicros }) => {
        const tat = Math.max(buckets.get(key) ?? 0, fromMicros) + costMicros;
        buckets.set(key, tat);
        return { key, tatMicros: tat };
      });
    },

    async pruneExpired(now) {
      return { challenges: pruneChallenges(now), claims: pruneClaims(now) };
    },

    async assertHealthy() {},

    async claim(key, claim, now) {
      if (now - lastPrune >= CLAIM_PRUNE_INTERVAL_MS) pruneClaims(now);
      const existing = claims.get(key);
      if (existing !== undefined && existing.expiresAt > now) {
        if (existing.heldUntil === undefined || existing.heldUntil > now) return false;
      }
      claims.set(key, { expiresAt: claim.expiresAt, heldUntil: claim.heldUntil });
      return true;
    },

    async confirmClaim(key) {
      const existing = claims.get(key);
      if (existing !== undefined) claims.set(key, { expiresAt: existing.expiresAt });
    },

    async releaseClaim(key) {
      if (claims.get(key)?.heldUntil !== undefined) claims.delete(key);
    },

    async renew(refs, until) {
      for (const id of refs.holds) {
        const held = holds.get(id);
        if (held !== undefined) held.expiresAt = until;
      }
      for (const key of refs.claims) {
        const existing = claims.get(key);
        if (existing?.heldUntil !== undefined) existing.heldUntil = until;
      }
    },

    async openSession(session) {
      assertStorableAmount(session.depositMsat, 'session depositMsat');
      if (sessions.has(session.id)) return false;
      sessions.set(session.id, { ...session });
      return true;
    },

    async getSession(id) {
      const session = sessions.get(id);
      return session === undefined ? undefined : { ...session };
    },

    async creditSession(id, amountMsat) {
      assertStorableAmount(amountMsat, 'amountMsat');
      const session = sessions.get(id);
      if (session === undefined || session.closedAt !== undefined) return false;
      assertStorableAmount(session.depositMsat + amountMsat, 'session depositMsat');
      session.depositMsat += amountMsat;
      return true;
    },

    async touchSession(id, at) {
      const session = sessions.get(id);
      if (session !== undefined && session.closedAt === undefined && at > session.lastUsedAt) {
        session.lastUsedAt = at;
      }
    },

    async closeSession(id, at) {
      const session = sessions.get(id);
      if (session === undefined || session.closedAt !== undefined) return undefined;
      session.closedAt = at;
      return { ...session };
    },

    async recordRefund(id, refund) {
      const session = sessions.get(id);
      if (session !== undefined) Object.assign(session, refund);
    },

    async creditChannel(channel, amount, reference) {
      assertStorableAmount(amount, 'channel deposit');
      assertCreditReference(reference);
      const credited = channelCredits.get(channel.id) ?? new Set<string>();
      if (credited.has(reference)) return;
      const existing = channels.get(channel.id);
      if (existing === undefined) {
        channels.set(channel.id, {
          ...channel,
          deposit: amount,
          voucherMax: 0n,
          voucherSignature: '',
          claimed: 0n,
          refunded: 0n,
          withdrawRequestedAt: 0,
        });
      } else {
        if (existing.deposit > MAX_STORED_AMOUNT - amount) throw depositOverflow(amount);
        existing.deposit += amount;
      }
      credited.add(reference);
      channelCredits.set(channel.id, credited);
    },

    async getChannel(id) {
      const channel = channels.get(id);
      return channel === undefined ? undefined : { ...channel };
    },

    async acceptVoucher(id, voucher) {
      assertStorableAmount(voucher.max, 'voucher max');
      const channel = channels.get(id);
      if (channel === undefined || channel.voucherMax >= voucher.max) return false;
      channel.voucherMax = voucher.max;
      channel.voucherSignature = voucher.signature;
      return true;
    },

    async noteClaimed(id, claimed) {
      assertStorableAmount(claimed, 'claimed');
      const channel = channels.get(id);
      if (channel !== undefined && channel.claimed < claimed) channel.claimed = claimed;
    },

    async noteRefunded(id, refunded) {
      assertStorableAmount(refunded, 'refunded');
      const channel = channels.get(id);
      if (channel !== undefined && channel.refunded < refunded) channel.refunded = refunded;
    },

    async noteWithdrawal(id, requestedAt) {
      assertCount(requestedAt, 'withdrawal time');
      const channel = channels.get(id);
      if (channel !== undefined) channel.withdrawRequestedAt = requestedAt;
    },

    async listClaimableChannels(limit) {
      return [...channels.values()]
        .filter((channel) => channel.voucherMax > channel.claimed)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, limit)
        .map((channel) => ({ ...channel }));
    },

    async listIdleSessions(now, limit) {
      return [...sessions.values()]
        .filter((s) => s.closedAt === undefined && s.lastUsedAt + s.idleTimeoutMs <= now)
        .sort((a, b) => a.lastUsedAt - b.lastUsedAt)
        .slice(0, limit)
        .map((s) => ({ ...s }));
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

    async readDocument(name) {
      const document = documents.get(name);
      return document === undefined ? undefined : { ...document };
    },

    async writeDocument(name, body, revision) {
      if ((documents.get(name)?.revision ?? 0) !== revision) return undefined;
      documents.set(name, { revision: revision + 1, body });
      return revision + 1;
    },
  };
}
