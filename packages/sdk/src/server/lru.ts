/**
 * A bounded map that forgets the least recently used entries first. The engine keeps every
 * per-client and per-token memory in one of these, so no input can grow memory without bound.
 *
 * It holds two generations: new entries and hits go into the young one; when the young one is
 * full it becomes the old one and the previous old one is dropped. A hit in the young generation
 * costs one `Map.get`, which matters on the paid-request path.
 */

/** A bounded, approximately least-recently-used map; see {@link createLru}. */
export interface Lru<K, V> {
  /** The value, marking the entry as recently used. */
  get(key: K): V | undefined;
  /** Sets the value, marking the entry as recently used. */
  set(key: K, value: V): void;
  delete(key: K): boolean;
  /** Entries held (a key in both generations counts once). */
  readonly size: number;
}

/**
 * Creates an LRU map holding at most `maxSize` entries (at least 2). An entry survives at least
 * `maxSize / 2` newer entries.
 *
 * @example
 * ```ts
 * const seen = createLru<string, true>(10_000);
 * seen.set(tokenId, true);
 * ```
 */
export function createLru<K, V>(maxSize: number): Lru<K, V> {
  const generationSize = Math.max(1, Math.floor(maxSize / 2));
  let young = new Map<K, V>();
  let old = new Map<K, V>();

  function set(key: K, value: V): void {
    young.set(key, value);
    if (young.size >= generationSize) {
      old = young;
      young = new Map();
    }
  }

  return {
    get(key) {
      const value = young.get(key);
      if (value !== undefined) return value;
      const aging = old.get(key);
      if (aging !== undefined) {
        old.delete(key);
        set(key, aging);
      }
      return aging;
    },
    set(key, value) {
      old.delete(key);
      set(key, value);
    },
    delete(key) {
      const inYoung = young.delete(key);
      return old.delete(key) || inYoung;
    },
    get size() {
      let size = young.size;
      for (const key of old.keys()) if (!young.has(key)) size += 1;
      return size;
    },
  };
}
