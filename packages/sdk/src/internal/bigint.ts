/**
 * The smaller of two bigints (`Math.min` takes none), for amounts of money in base units.
 *
 * @example
 * ```ts
 * minBigint(30_000n, 20_000n); // 20000n
 * ```
 */
export function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
