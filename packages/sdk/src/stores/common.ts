/**
 * Internal helpers shared by the memory, sqlite and postgres stores: input checks that every store
 * applies the same way, and the fan-out of revocations to subscribers.
 *
 * @internal
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { minBigint } from '../internal/bigint.js';
import type {
  BucketAdvance,
  Hold,
  HoldCharge,
  HoldResize,
  HoldResult,
  Revocation,
  TokenUsage,
} from '../server/store.js';

/** The largest amount a store keeps: a signed 64-bit integer, the widest SQL integer type. */
export const MAX_STORED_AMOUNT = 2n ** 63n - 1n;

/** How often a store deletes expired single-use claims, at most (ms). */
export const CLAIM_PRUNE_INTERVAL_MS = 60_000;

/**
 * Throws `invalid_amount` unless `0 <= amount <= 2^63 - 1` (what SQLite INTEGER and PostgreSQL BIGINT
 * hold).
 *
 * @internal
 * @example
 * ```ts
 * assertStorableAmount(settlement.amount, 'settlement amount');
 * ```
 */
export function assertStorableAmount(amount: bigint, what: string): void {
  if (amount < 0n || amount > MAX_STORED_AMOUNT) {
    throw new TollwayError('invalid_amount', `${what} must be between 0 and 2^63-1`, {
      details: { amount: amount.toString() },
    });
  }
}

/**
 * Throws a TypeError unless `reference` names a channel credit: a non-empty string. Checked at
 * run time because a wrapper written in JavaScript that passes on two arguments would otherwise
 * make every later deposit of a channel look like its first one tried again.
 *
 * @internal
 * @example
 * ```ts
 * assertCreditReference('0x5f…'); // a deposit's transaction
 * ```
 */
export function assertCreditReference(reference: unknown): asserts reference is string {
  if (typeof reference !== 'string' || reference === '') {
    throw new TypeError('creditChannel needs the reference of the deposit it records');
  }
}

/**
 * The `invalid_amount` error of a channel deposit that `amount` would raise past 2^63 - 1.
 *
 * @internal
 * @example
 * ```ts
 * if (credited.length === 0) throw depositOverflow(amount);
 * ```
 */
export function depositOverflow(amount: bigint): TollwayError {
  return new TollwayError('invalid_amount', 'the channel deposit would pass 2^63-1', {
    details: { amount: amount.toString() },
  });
}

/**
 * Throws `invalid_amount` unless `count` is a non-negative safe integer (a number of uses).
 *
 * @internal
 * @example
 * ```ts
 * assertCount(maxUses, 'maxUses');
 * ```
 */
export function assertCount(count: number, what: string): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new TollwayError('invalid_amount', `${what} must be a non-negative integer`, {
      details: { count },
    });
  }
}

/** The largest unix time in microseconds a bucket clock may hold (beyond it, doubles lose units). */
const MAX_MICROS = Number.MAX_SAFE_INTEGER;

/**
 * Throws `invalid_config` unless a freebie allowance is whole and positive.
 *
 * @internal
 * @example
 * ```ts
 * assertAllowance({ requests: 10, periodMs: 86_400_000 });
 * ```
 */
export function assertAllowance(allowance: { requests: number; periodMs: number }): void {
  for (const [what, value] of [
    ['requests', allowance.requests],
    ['periodMs', allowance.periodMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TollwayError('invalid_config', `freebie ${what} must be a positive whole number`);
    }
  }
}

/**
 * Throws `invalid_config` for bucket advances a store cannot keep: negative or fractional
 * microseconds, or one key twice.
 *
 * @internal
 * @example
 * ```ts
 * assertAdvances([{ key: 'k', costMicros: 1_000_000, fromMicros: Date.now() * 1000 }]);
 * ```
 */
export function assertAdvances(advances: readonly BucketAdvance[]): void {
  const keys = new Set<string>();
  for (const { key, costMicros, fromMicros } of advances) {
    if (keys.has(key)) throw new TollwayError('invalid_config', `bucket ${key} is advanced twice`);
    keys.add(key);
    for (const value of [costMicros, fromMicros]) {
      if (!Number.isSafeInteger(value) || value < 0 || value > MAX_MICROS) {
        throw new TollwayError('invalid_config', 'bucket microseconds must be whole and positive');
      }
    }
  }
}

/** What a hold takes off a token's counters while it is held. */
export interface HeldAmounts {
  uses: number;
  amountMsat: bigint;
}

/**
 * Throws `invalid_amount` for a hold whose counts or amounts a store cannot keep.
 *
 * @internal
 * @example
 * ```ts
 * assertHold(hold);
 * ```
 */
export function assertHold(hold: Hold): void {
  if (hold.uses !== undefined) {
    assertCount(hold.uses.count, 'hold uses count');
    assertCount(hold.uses.max, 'hold uses max');
  }
  if (hold.balance !== undefined) {
    assertStorableAmount(hold.balance.amountMsat, 'hold amountMsat');
    assertStorableAmount(hold.balance.initialMsat, 'hold initialMsat');
  }
}

/**
 * The uses and msat a hold takes (zero for what it does not hold).
 *
 * @internal
 * @example
 * ```ts
 * heldOf({ id, tokenId, uses: { count: 1, max: 5 }, expiresAt }); // { uses: 1, amountMsat: 0n }
 * ```
 */
export function heldOf(hold: Hold): HeldAmounts {
  return { uses: hold.uses?.count ?? 0, amountMsat: hold.balance?.amountMsat ?? 0n };
}

/** The smaller of two amounts. */

/** A charge of nothing: what a released hold charges. */
export const NOTHING: HeldAmounts = { uses: 0, amountMsat: 0n };

/**
 * What a settled hold charges: `charge`, but never more than the hold held.
 *
 * @internal
 * @example
 * ```ts
 * chargedOf({ uses: 1, amountMsat: 500n }, { uses: 1, amountMsat: 900n }); // { uses: 1, amountMsat: 500n }
 * ```
 */
export function chargedOf(held: HeldAmounts, charge: HoldCharge): HeldAmounts {
  return {
    uses: Math.min(charge.uses, held.uses),
    amountMsat: minBigint(charge.amountMsat, held.amountMsat),
  };
}

/**
 * Throws `invalid_amount` for a charge a store cannot keep.
 *
 * @internal
 * @example
 * ```ts
 * assertCharge({ uses: 1, amountMsat: 0n });
 * ```
 */
export function assertCharge(charge: HoldCharge): void {
  assertCount(charge.uses, 'charge uses');
  assertStorableAmount(charge.amountMsat, 'charge amountMsat');
}

/**
 * Throws `invalid_amount` for a resize a store cannot keep.
 *
 * @internal
 * @example
 * ```ts
 * assertResize({ chargeMsat: 10n, amountMsat: 500n, initialMsat: 10_000n, expiresAt });
 * ```
 */
export function assertResize(resize: HoldResize): void {
  assertStorableAmount(resize.chargeMsat, 'resize chargeMsat');
  assertStorableAmount(resize.amountMsat, 'resize amountMsat');
  assertStorableAmount(resize.initialMsat, 'resize initialMsat');
}

/**
 * Whether a hold that expires at `expiresAt` was resized by `resize` already (a resize sent again
 * after a failure that may have written it); see {@link Store.resizeHold}.
 *
 * @internal
 * @example
 * ```ts
 * if (resizedBy(held.expiresAt, resize)) return holdOutcome(usage, held.amountMsat === resize.amountMsat);
 * ```
 */
export function resizedBy(expiresAt: number, resize: HoldResize): boolean {
  return expiresAt === resize.expiresAt;
}

/** What a resize does to a hold that holds `heldMsat`; see {@link Store.resizeHold}. */
export interface ResizeStep {
  /** What is charged: the resize's charge, at most what the hold holds. */
  chargeMsat: bigint;
  /** How much more than its uncharged rest the hold holds after (0 when it shrinks). */
  growthMsat: bigint;
  /** The change of the token's held counter (negative when the hold shrinks). */
  heldDeltaMsat: bigint;
}

/**
 * The step of a resize of a hold that holds `heldMsat`.
 *
 * @internal
 * @example
 * ```ts
 * resizeStep(1_000n, { chargeMsat: 100n, amountMsat: 1_200n, initialMsat, expiresAt }); // growth 300n
 * ```
 */
export function resizeStep(heldMsat: bigint, resize: HoldResize): ResizeStep {
  return stepTo(heldMsat, resize.chargeMsat, resize.amountMsat);
}

/**
 * The step of a resize whose growth did not fit: charged, and keeping the uncharged rest.
 *
 * @internal
 * @example
 * ```ts
 * chargeOnlyStep(1_000n, { chargeMsat: 100n, amountMsat: 5_000n, initialMsat, expiresAt }); // keeps 900n
 * ```
 */
export function chargeOnlyStep(
  heldMsat: bigint,
  resize: HoldResize,
): ResizeStep & { amountMsat: bigint } {
  const chargeMsat = minBigint(resize.chargeMsat, heldMsat);
  return {
    ...stepTo(heldMsat, chargeMsat, heldMsat - chargeMsat),
    amountMsat: heldMsat - chargeMsat,
  };
}

function stepTo(heldMsat: bigint, charge: bigint, amountMsat: bigint): ResizeStep {
  const chargeMsat = minBigint(charge, heldMsat);
  const growth = amountMsat - (heldMsat - chargeMsat);
  return {
    chargeMsat,
    growthMsat: growth > 0n ? growth : 0n,
    heldDeltaMsat: amountMsat - heldMsat,
  };
}

/**
 * The result of a hold from the token's counters after it (spent plus held).
 *
 * @internal
 * @example
 * ```ts
 * holdOutcome({ tokenId: 't', uses: 1, spentMsat: 0n, heldUses: 1, heldMsat: 0n }, true); // { ok: true, uses: 2, spentMsat: 0n }
 * ```
 */
export function holdOutcome(usage: TokenUsage, ok: boolean): HoldResult {
  return { ok, uses: usage.uses + usage.heldUses, spentMsat: usage.spentMsat + usage.heldMsat };
}

/**
 * Wraps a driver failure as `store_error` (a {@link TollwayError} passes through unchanged).
 *
 * @internal
 * @example
 * ```ts
 * try { db.exec(sql); } catch (error) { throw toStoreError(error, 'SQLite'); }
 * ```
 */
export function toStoreError(error: unknown, database: string): TollwayError {
  if (isTollwayError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TollwayError('store_error', `${database} failed: ${reason}`, { cause: error });
}

/** The subscribers of one store instance. */
export interface RevocationListeners {
  /** Adds a listener; returns the function that removes it. */
  add(listener: (revocation: Revocation) => void): () => void;
  /** Calls every listener. One that throws does not stop the others; its error is rethrown later. */
  emit(revocation: Revocation): void;
  readonly size: number;
}

/**
 * Creates the set of revocation subscribers a store fans out to.
 *
 * @internal
 * @example
 * ```ts
 * const listeners = createRevocationListeners();
 * const unsubscribe = listeners.add((r) => denied.add(r.tokenId));
 * ```
 */
export function createRevocationListeners(): RevocationListeners {
  const listeners = new Set<(revocation: Revocation) => void>();
  return {
    add(listener) {
      const entry = (revocation: Revocation) => listener(revocation);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(revocation) {
      for (const listener of [...listeners]) {
        try {
          listener({ ...revocation });
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    },
    get size() {
      return listeners.size;
    },
  };
}
