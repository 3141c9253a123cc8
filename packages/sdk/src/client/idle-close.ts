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
  context: Pick<PayingContext, 'now' | 'sessions' | 'emit'>,
  used: Map<string, number>,
  id: string,
  close: (options: CloseSessionsOptions) => Promise<unknown>,
): void {
  const at = context.now();
  used.set(id, at);
  const idleForMs = context.sessions.idleCloseMs;
  if (idleForMs === undefined) return;
  const closeWhenIdle = (): void => {
    // A later use has a timer of its own.
    if (used.get(id) !== at) return;
    // A timer counts from the event loop's clock, which may lag the clock `at` was read from: one
    // that fires before the idle time has passed by that clock waits for the rest, else the
    // close would find nothing idle and nothing would close it.
    const left = at + idleForMs - context.now();
    if (left > 0) {
      setTimeout(closeWhenIdle, left).unref?.();
      return;
    }
    close({ idleForMs }).catch((error: unknown) => {
      context.emit({ type: 'session-close-failed', error });
    });
  };
  setTimeout(closeWhenIdle, idleForMs).unref?.();
}
