/**
 * When the paying fetch closes what it holds open with a server (MPP sessions, x402 channels):
 * on `close()`, or once idle in this process for `sessions.idleCloseMs`.
 */
import type { PayingContext } from './paying-context.js';
import type { CloseSessionsOptions } from './sessions-close.js';

/**
 * Which of the `open` records a close takes: all of them, or those used here (`usedHere`) or idle
 * here for `idleForMs`, by `used` (when this process last drew on each, by id).
 *
 * @internal
 */
export function dueForClose<T extends { id: string }>(
  context: PayingContext,
  open: readonly T[],
  used: ReadonlyMap<string, number>,
  options: CloseSessionsOptions,
): readonly T[] {
  const idleForMs = options.idleForMs ?? (options.usedHere === true ? 0 : undefined);
  if (idleForMs === undefined) return open;
  return open.filter((record) => {
    const last = used.get(record.id);
    return last !== undefined && context.now() - last >= idleForMs;
  });
}

/**
 * Notes in `used` that this process drew on `id` now; with `sessions.idleCloseMs`, runs `close`
 * with that idle time once it has passed (a timer that does not keep the process alive), and
 * reports a failure as a `session-close-failed` event.
 *
 * @internal
 */
export function noteUse(
  context: PayingContext,
  used: Map<string, number>,
  id: string,
  close: (options: CloseSessionsOptions) => Promise<unknown>,
): void {
  used.set(id, context.now());
  const idleForMs = context.sessions.idleCloseMs;
  if (idleForMs === undefined) return;
  const timer = setTimeout(() => {
    close({ idleForMs }).catch((error: unknown) => {
      context.emit({ type: 'session-close-failed', error });
    });
  }, idleForMs);
  timer.unref?.();
}
