/**
 * Keeps one of the entries of Node's `process.nextTick` queue alive for the life of the process,
 * so that the hidden class V8 gives those entries is never collected.
 *
 * Why: `process.nextTick` builds each entry as an object literal with two symbol keys, and its
 * optimized code holds the entries' hidden classes weakly. A full garbage collection that finds
 * no entry alive (the queue is empty between two requests) collects those classes and throws the
 * optimized code away; the next calls make new classes, and when the function is compiled again
 * from feedback naming classes that no longer exist, the code can come out generic: each property
 * of each entry defined through a call into V8's runtime, ~0.35–0.6 µs a tick instead of ~0.06.
 * A served request makes a few ticks. On Node 20 that happened in every CPU-profiled run of the
 * gateway's benchmark (six of six) and in two of about twenty shorter runs sampled with `perf`:
 * 3–4 µs of CPU per proxied request, ~8%, in whichever process collected at the wrong moment.
 * While one entry lives, its class and the classes it was built through live too.
 *
 * `executionAsyncResource()` inside a tick's callback is that tick's entry (Node's task queue sets
 * it so for async hooks); `tick-shape.test.ts` checks that the entry kept has the same hidden class
 * as the entries made later.
 */
import * as asyncHooks from 'node:async_hooks';

let asked = false;
let kept: object | undefined;

/**
 * Keeps a `process.nextTick` entry alive, once per process; later calls do nothing. A runtime
 * without `process.nextTick` or `executionAsyncResource` keeps nothing.
 *
 * @example
 * ```ts
 * keepTickShape(); // when a server or a paying fetch is created
 * ```
 */
export function keepTickShape(): void {
  if (asked) return;
  asked = true;
  const current = asyncHooks.executionAsyncResource;
  const hasTicks = typeof process !== 'undefined' && typeof process.nextTick === 'function';
  if (!hasTicks || typeof current !== 'function') return;
  process.nextTick(() => {
    kept = current();
  });
}

/** The entry kept, for the test that checks it is one. */
export function keptTickEntry(): object | undefined {
  return kept;
}
