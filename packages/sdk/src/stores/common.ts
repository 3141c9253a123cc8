/**
 * Internal helpers shared by the memory, sqlite and postgres stores: input checks that every store
 * applies the same way, and the fan-out of revocations to subscribers.
 *
 * @internal
 */
import { isTollwayError, TollwayError } from '../errors.js';
import type { Revocation } from '../server/store.js';

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
