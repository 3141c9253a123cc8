/**
 * The holds and claims of this instance's requests still running, renewed in the background so
 * they outlive their `ttl` only while their request runs: if the instance dies, renewals stop and
 * any instance releases them once they expire.
 */
import type { PaywallLogger } from './recorder.js';
import type { Store } from './store.js';

/** What a request in flight holds in the store. */
export type InflightRef = { kind: 'hold'; id: string } | { kind: 'claim'; key: string };

/** See {@link createInflight}. */
export interface Inflight {
  /** How long a hold lives without renewal, ms. */
  readonly ttlMs: number;
  track(ref: InflightRef): void;
  untrack(ref: InflightRef): void;
  /** Starts renewing (every third of the ttl). */
  start(): void;
  stop(): void;
}

/**
 * Creates the registry.
 *
 * @example
 * ```ts
 * const inflight = createInflight({ store, logger, now: Date.now, ttlMs: 60_000 });
 * inflight.start();
 * ```
 */
export function createInflight(parts: {
  store: Store;
  logger: PaywallLogger;
  now: () => number;
  ttlMs: number;
}): Inflight {
  const { store, logger, now, ttlMs } = parts;
  const holds = new Set<string>();
  const claims = new Set<string>();
  let timer: ReturnType<typeof setInterval> | undefined;

  function renew(): void {
    if (holds.size === 0 && claims.size === 0) return;
    const refs = { holds: [...holds], claims: [...claims] };
    store.renew(refs, now() + ttlMs).catch((error: unknown) => {
      logger.warn({ err: error }, 'renewing the holds of running requests failed');
    });
  }

  return {
    ttlMs,
    track(ref) {
      if (ref.kind === 'hold') holds.add(ref.id);
      else claims.add(ref.key);
    },
    untrack(ref) {
      if (ref.kind === 'hold') holds.delete(ref.id);
      else claims.delete(ref.key);
    },
    start() {
      timer ??= setInterval(renew, Math.max(1, Math.floor(ttlMs / 3)));
      timer.unref?.();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
