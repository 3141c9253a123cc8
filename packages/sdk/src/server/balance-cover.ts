/**
 * Holding more of a balance while a metered answer goes, for meters that tell their cost as it
 * grows (`MeterReading.costSoFar`): the draw starts with what it could hold, and before the answer
 * goes past what it holds, holds more — at least the route's price at a time, at most what is left.
 * When nothing is left, a session's answer waits for a top-up: the client is told with a
 * `payment-need-topup` event, the session is looked at until its deposits grow, and after
 * `sessions.topUpTimeout` without one the answer ends with a `session-timeout` event, charged for
 * what it delivered. A draw on a token that cannot be topped up ends at once instead.
 */
import { minBigint } from '../internal/bigint.js';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';
import { formatSessionEvent, type SessionEventName } from '../mpp/session-event.js';
import type { PaywallContext } from './context.js';
import type { Reservation } from './reservation.js';

/** What a draw holds more of: an account, what its payments total now. */
export interface CoverSource {
  account: string;
  /** What the account's payments total now, msat; undefined once it cannot be drawn (closed). */
  total(): Promise<bigint | undefined>;
  /** Held at least at a time, msat: the route's price. */
  stepMsat: bigint;
  /** Set for a session: the answer may wait for a top-up. */
  sessionId?: string;
}

/** What a metered draw holds as its answer goes; see the module comment. */
export interface BalanceCover {
  /** What is held for the answer, msat (the reservation and every hold added since). */
  heldMsat(): bigint;
  /** What the balance has left once the draw is charged at what it holds, msat. */
  leftAtHeld(): bigint;
  /**
   * Lets the answer go up to `costMsat`: undefined when that is held already, else a promise of
   * whether it may go on (false: it ends). `say` sends the client the session's events.
   */
  admit(
    costMsat: bigint,
    say: ((bytes: Uint8Array) => void) | undefined,
  ): Promise<boolean> | undefined;
  /** The cost of what was let go, msat. */
  admitted(): bigint;
  /**
   * Charges `chargedMsat` (at most what is held): the reservation first, then the holds added.
   * What the reservation's settle gives (see {@link Reservation.settle}): a promise when the
   * answer waits for its charge to be written.
   */
  settle(chargedMsat: bigint): Promise<void> | undefined;
  /** Releases everything held: nothing is charged. */
  release(): void;
}

/** How often a waiting answer looks at its session's deposits, ms. */
const TOP_UP_POLL_MS = 250;

const encoder = new TextEncoder();

/**
 * Holds what nobody spent or holds of an account whose payments total `totalMsat`, from `minMsat`
 * up to `maxMsat`: the hold and its amount (and what the account has left after it), or undefined
 * when less than `minMsat` is left (or draws kept racing it).
 */
export async function holdUpTo(
  context: PaywallContext,
  account: string,
  totalMsat: bigint,
  range: { minMsat: bigint; maxMsat: bigint },
): Promise<{ id: string; amountMsat: bigint; leftMsat: bigint } | undefined> {
  const { store, now, inflight } = context;
  for (let attempt = 0; attempt < 3; attempt++) {
    const usage = await store.getUsage(account);
    const unspent = totalMsat - usage.spentMsat - usage.heldMsat;
    if (unspent < range.minMsat || unspent <= 0n) return undefined;
    const amountMsat = minBigint(unspent, range.maxMsat);
    const hold = {
      id: `take-${bytesToHex(randomBytes(16))}`,
      tokenId: account,
      balance: { amountMsat, initialMsat: totalMsat },
      expiresAt: now() + inflight.ttlMs,
    };
    const held = await store.hold(hold, now());
    if (held.ok) return { id: hold.id, amountMsat, leftMsat: totalMsat - held.spentMsat };
  }
  return undefined;
}

/**
 * Creates the cover of a draw whose reservation holds `reservation.heldMsat`, the balance then
 * having `leftMsat` more.
 */
export function createBalanceCover(
  context: PaywallContext,
  reservation: Reservation,
  leftMsat: bigint,
  source: CoverSource,
): BalanceCover {
  const { store, recorder, inflight } = context;
  const added: Array<{ id: string; amountMsat: bigint }> = [];
  let held = reservation.heldMsat;
  let left = leftMsat;
  let admitted = 0n;
  let stopped = false;
  let done = false;

  /** Holds at least `neededMsat` more; false when the balance has not that much left. */
  async function grow(neededMsat: bigint): Promise<boolean> {
    const total = await source.total();
    if (total === undefined) return false;
    const step = neededMsat > source.stepMsat ? neededMsat : source.stepMsat;
    const hold = await holdUpTo(context, source.account, total, {
      minMsat: neededMsat,
      maxMsat: step,
    });
    if (hold === undefined) return false;
    if (done) {
      await store.releaseHold(hold.id);
      return false;
    }
    inflight.track({ kind: 'hold', id: hold.id });
    added.push(hold);
    held += hold.amountMsat;
    left = hold.leftMsat;
    return true;
  }

  async function event(
    name: SessionEventName,
    neededMsat: bigint,
    sessionId: string,
  ): Promise<Uint8Array> {
    const usage = await store.getUsage(source.account);
    return encoder.encode(
      formatSessionEvent(name, {
        sessionId,
        balanceSpent: (usage.spentMsat + usage.heldMsat) / 1000n,
        balanceRequired: (neededMsat + 999n) / 1000n,
      }),
    );
  }

  /** Waits for the session to be topped up with at least `neededMsat` more; false on timeout. */
  async function waitForTopUp(neededMsat: bigint, sessionId: string): Promise<boolean> {
    const deadline = context.now() + context.sessionTopUpMs;
    while (context.now() < deadline && !done) {
      await new Promise((resolve) => setTimeout(resolve, TOP_UP_POLL_MS));
      if (await grow(neededMsat)) {
        recorder.run(
          () => store.touchSession(sessionId, context.now()),
          'noting a session request',
        );
        return true;
      }
      if ((await source.total()) === undefined) return false;
    }
    return false;
  }

  async function cover(costMsat: bigint, say: ((bytes: Uint8Array) => void) | undefined) {
    const needed = costMsat - held;
    if (await grow(needed)) {
      admitted = costMsat;
      return true;
    }
    const { sessionId } = source;
    if (sessionId !== undefined && say !== undefined && !done) {
      say(await event('payment-need-topup', needed, sessionId));
      if (await waitForTopUp(needed, sessionId)) {
        admitted = costMsat;
        return true;
      }
      if (!done) say(await event('session-timeout', needed, sessionId));
    }
    stopped = true;
    return false;
  }

  function untrackAll(): Array<{ id: string; amountMsat: bigint }> {
    done = true;
    const holds = added.splice(0);
    for (const hold of holds) inflight.untrack({ kind: 'hold', id: hold.id });
    return holds;
  }

  return {
    heldMsat: () => held,
    leftAtHeld: () => left,
    admitted: () => admitted,
    admit(costMsat, say) {
      if (stopped) return Promise.resolve(false);
      if (costMsat <= held) {
        if (costMsat > admitted) admitted = costMsat;
        return undefined;
      }
      return cover(costMsat, say);
    },
    settle(chargedMsat) {
      let rest = chargedMsat - reservation.heldMsat;
      const written = reservation.settle(rest > 0n ? reservation.heldMsat : chargedMsat);
      for (const hold of untrackAll()) {
        const amountMsat = rest <= 0n ? 0n : minBigint(rest, hold.amountMsat);
        rest -= amountMsat;
        recorder.run(async () => {
          await store.settleHold(hold.id, { uses: 0, amountMsat });
        }, 'charging a reservation');
      }
      return written;
    },
    release() {
      reservation.release();
      for (const hold of untrackAll()) {
        recorder.run(() => store.releaseHold(hold.id), 'releasing a reservation');
      }
    },
  };
}
