import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { noteUse } from './idle-close.js';
import type { CloseSessionsOptions } from './sessions-close.js';

describe('the idle close', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A context whose clock reads `ahead` ms past the timers' at the use, as a busy loop's may. */
  function context(ahead: number) {
    let first = true;
    return {
      now: () => {
        const now = Date.now() + (first ? ahead : 0);
        first = false;
        return now;
      },
      sessions: { idleCloseMs: 200 },
      emit: vi.fn(),
    };
  }

  it('closes once the idle time has passed by the clock the use was noted with', async () => {
    const used = new Map<string, number>();
    const closes: Array<{ at: number; options: CloseSessionsOptions }> = [];
    const close = async (options: CloseSessionsOptions) => {
      closes.push({ at: Date.now(), options });
    };
    noteUse(context(3), used, 'channel', close);
    const usedAt = used.get('channel') ?? 0;
    await vi.advanceTimersByTimeAsync(200);
    // The timer fired 3 ms early by that clock: nothing would have been idle yet.
    expect(closes).toEqual([]);
    await vi.advanceTimersByTimeAsync(3);
    expect(closes).toEqual([{ at: usedAt + 200, options: { idleForMs: 200 } }]);
  });

  it('leaves the close to the timer of a later use', async () => {
    const used = new Map<string, number>();
    const close = vi.fn(async () => {});
    const clock = context(0);
    noteUse(clock, used, 'session', close);
    await vi.advanceTimersByTimeAsync(150);
    noteUse(clock, used, 'session', close);
    await vi.advanceTimersByTimeAsync(100);
    expect(close).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(100);
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('reports a close that failed', async () => {
    const clock = context(0);
    const error = new Error('refund refused');
    noteUse(clock, new Map(), 'channel', async () => {
      throw error;
    });
    await vi.advanceTimersByTimeAsync(200);
    expect(clock.emit).toHaveBeenCalledWith({ type: 'session-close-failed', error });
  });
});
