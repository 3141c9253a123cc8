/**
 * Leases of prepaid balances: how a balance is drawn with far fewer store writes than requests.
 *
 * An instance that draws on a balance holds a slice of it in the store — its lease, one hold of
 * the account (see {@link Store.hold}) — and reserves each request's price out of that slice in
 * memory. What a request is charged is written before its answer may go: its settle's promise
 * resolves once the store has it. Charges are written together (a group commit): at most one
 * write per lease is in flight, and the charges settled meanwhile, or within one turn of the event
 * loop, go in the next — one {@link Store.resizeHold}, which charges them and keeps the slice at
 * its size. Every {@link FLUSH_MS} the lease follows the demand of the last interval (and is
 * renewed, and given back once idle). A draw that does not fit the slice grows the lease in one
 * write — by up to {@link SPARE_DRAWS} draws of its size, never by more than half of what is free
 * — or, when that does not fit, by exactly the draw; only then is it refused.
 *
 * The money rules hold at every point:
 * - The store counts the whole slice as held: every instance together never reserves more than
 *   the balance, and a balance shown by the store (spent + held) is what the requests of every
 *   instance may still cost, never less.
 * - An answer leaves only after what it cost is in the store, so a credential never buys more
 *   than was paid for, whenever an instance dies. A crash returns the slice's undrawn rest after
 *   the reservation TTL. A request charged and not yet answered when its instance died is charged
 *   for an answer its payer did not get: the charge comes first (the other order would give the
 *   answer for free), as it does for a request that holds its own hold.
 * - A write that charges and fails is sent again, unchanged, until three quarters of a TTL after
 *   the last write the store made (while it surely keeps the hold): a resize sent twice is made
 *   once (its expiry marks it, see {@link Store.resizeHold}); the answers wait meanwhile. When the
 *   store stays unreachable past that, their charges reject with `store_error` (the caller
 *   answers 503 instead) and the lease ends: nothing was charged, unless the store made the last
 *   write while failing to say so, and stayed unreachable since.
 *
 * A lease is used only while the store still holds it: locally it lapses half a TTL after its
 * last write, before the store lets it go.
 */
import { TollwayError } from '../errors.js';
import { minBigint } from '../internal/bigint.js';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';
import type { PaywallLogger } from './recorder.js';
import { retryCharge } from './retry-charge.js';
import type { HoldResult, Store } from './store.js';

/** How often leases follow the demand, renew, and are given back when idle, ms. */
const FLUSH_MS = 100;
/** A lease that grows takes room for this many more draws of the size that made it grow. */
const SPARE_DRAWS = 16n;
/**
 * How many times a draw the balance could cover, were it not for other instances' leases, waits
 * two flushes for them to give back their spare room before it is refused.
 */
const WAIT_RETRIES = 3;

/**
 * Runs `work` at the next turn of the event loop, after the I/O callbacks of this one: the
 * charges settled by every answer of one turn go in one write (Node's `setImmediate`; a zero
 * timer where there is none).
 */
const nextTurn: (work: () => void) => void =
  typeof setImmediate === 'function'
    ? (work) => void setImmediate(work)
    : (work) => void setTimeout(work, 0);

/** One request's draw out of a lease, held until it is settled or released. */
export interface LeaseDraw {
  ok: true;
  /** What the balance has left once this draw is charged in full, msat (see {@link remainingOf}). */
  remainingMsat: bigint;
  /**
   * Charges `chargedMsat` (at most what was drawn); the rest goes back. Once. Undefined when
   * nothing is charged; else a promise that resolves once the store has the charge, and rejects
   * (`store_error`) when it could not be written while the lease lasted: then the answer must
   * not go.
   */
  settle(chargedMsat: bigint): Promise<void> | undefined;
  /** Gives the draw back: nothing charged. Once. */
  release(): void;
}

/** A draw that did not fit: `spentMsat` is what the balance counts as spent or held. */
export interface LeaseRefusal {
  ok: false;
  spentMsat: bigint;
}

/** The leases of one paywall instance; see the module comment. */
export interface BalanceLeases {
  /** Draws `amountMsat` (more than 0) of `account`'s balance of `initialMsat` for one request. */
  draw(account: string, amountMsat: bigint, initialMsat: bigint): Promise<LeaseDraw | LeaseRefusal>;
  /** Writes what was charged, resizes and renews every lease now (the timer does it too). */
  flush(): Promise<void>;
  /**
   * Gives back this instance's spare room of `account` now (what its requests still running drew
   * stays held), writing what was charged: before a draw that bypasses the lease looks at what
   * the store holds (a further draw of a paid connection, a top-up taking what is left).
   */
  giveBack(account: string): Promise<void>;
  /** Stops the timer, writes what was charged and gives every lease back. */
  close(): Promise<void>;
}

/** A request waiting for its charge to be written. */
interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

interface Lease {
  readonly account: string;
  readonly initialMsat: bigint;
  /** The hold's id in the store; `held` is false until the first write granted it. */
  readonly id: string;
  held: boolean;
  /** What the lease holds, msat: never more than the store holds for it. */
  heldMsat: bigint;
  /** Drawn by requests still running. */
  inFlightMsat: bigint;
  /** Charged to requests and not written yet. */
  chargedMsat: bigint;
  /** The requests whose charges make `chargedMsat`, waiting for the write that takes them. */
  waiting: Waiter[];
  /** A write of the waiting charges is due at the next turn of the event loop. */
  due: boolean;
  /** Drawn since the last flush: the demand the lease keeps room for. */
  drawnMsat: bigint;
  /** What the account counted as spent or held (every instance) at the last write. */
  seenMsat: bigint;
  /** The expiry the last write sent: each write's is later, which marks it in the store. */
  expiresAt: number;
  /** Used for draws until then (unix ms): half a TTL after the last write. */
  validUntil: number;
  /** Renewed at the first flush after this. */
  renewAt: number;
  writing: Promise<unknown> | undefined;
  /** Gone from the store, or given back: draws go to a new lease. */
  ended: boolean;
}

function spareOf(lease: Lease): bigint {
  return lease.heldMsat - lease.inFlightMsat - lease.chargedMsat;
}

/**
 * What the balance has left: what no instance had spent or held at the last write, plus this
 * lease's spare room. Other instances' leases count as held.
 */
function remainingOf(lease: Lease): bigint {
  const left = lease.initialMsat - lease.seenMsat + spareOf(lease);
  return left > 0n ? left : 0n;
}

/** Why a charge was not written: the lease lapsed first (the store was unreachable, or slow). */
function lapsed(cause?: unknown): TollwayError {
  return new TollwayError(
    'store_error',
    'The lease of this balance lapsed before the charge was written.',
    cause === undefined ? {} : { cause },
  );
}

function tell(waiters: readonly Waiter[], error?: unknown): void {
  for (const waiter of waiters) {
    if (error === undefined) waiter.resolve();
    else waiter.reject(error);
  }
}

/**
 * Creates the leases of one paywall instance over `store`.
 *
 * @example
 * ```ts
 * const leases = createBalanceLeases({ store, logger, now: Date.now, ttlMs: 60_000 });
 * const drawn = await leases.draw(account, 2_000n, 100_000n);
 * if (drawn.ok) await drawn.settle(1_500n); // in the store: the answer may go
 * ```
 */
export function createBalanceLeases(parts: {
  store: Store;
  logger: PaywallLogger;
  now: () => number;
  ttlMs: number;
}): BalanceLeases {
  const { store, logger, now, ttlMs } = parts;
  const leases = new Map<string, Lease>();
  let timer: ReturnType<typeof setInterval> | undefined;

  function open(account: string, initialMsat: bigint): Lease {
    const lease: Lease = {
      account,
      initialMsat,
      id: bytesToHex(randomBytes(16)),
      held: false,
      heldMsat: 0n,
      inFlightMsat: 0n,
      chargedMsat: 0n,
      waiting: [],
      due: false,
      drawnMsat: 0n,
      seenMsat: 0n,
      expiresAt: 0,
      validUntil: 0,
      renewAt: 0,
      writing: undefined,
      ended: false,
    };
    leases.set(account, lease);
    if (timer === undefined) {
      timer = setInterval(() => {
        for (const each of leases.values()) {
          // A lease that is writing is in use: it follows the demand at a later tick.
          if (each.writing !== undefined) continue;
          flushLease(each, true).catch((error: unknown) =>
            logger.warn({ err: error }, 'flushing a lease failed'),
          );
        }
      }, FLUSH_MS);
      timer.unref?.();
    }
    return lease;
  }

  /** Takes `amountMsat` out of the lease's spare room, if it fits and the lease is valid. */
  function take(lease: Lease, amountMsat: bigint): LeaseDraw | undefined {
    if (lease.ended || now() >= lease.validUntil || spareOf(lease) < amountMsat) return undefined;
    lease.inFlightMsat += amountMsat;
    lease.drawnMsat += amountMsat;
    let done = false;
    return {
      ok: true,
      remainingMsat: remainingOf(lease),
      settle(chargedMsat) {
        if (done) return undefined;
        done = true;
        lease.inFlightMsat -= amountMsat;
        const charged = minBigint(chargedMsat < 0n ? 0n : chargedMsat, amountMsat);
        return charged === 0n ? undefined : charge(lease, charged);
      },
      release() {
        if (done) return;
        done = true;
        lease.inFlightMsat -= amountMsat;
      },
    };
  }

  /** Adds `amountMsat` to the lease's next write: resolves once that write is made. */
  function charge(lease: Lease, amountMsat: bigint): Promise<void> {
    if (lease.ended) return Promise.reject(lapsed());
    lease.chargedMsat += amountMsat;
    return new Promise<void>((resolve, reject) => {
      lease.waiting.push({ resolve, reject });
      commitSoon(lease);
    });
  }

  /** Writes the waiting charges at the next turn, unless a write is under way (it does after). */
  function commitSoon(lease: Lease): void {
    if (lease.due || lease.writing !== undefined) return;
    lease.due = true;
    nextTurn(() => {
      lease.due = false;
      if (lease.writing !== undefined || lease.waiting.length === 0) return;
      // Charged and kept at its size; a failure is told to the requests waiting.
      write(lease, lease.heldMsat).catch(() => undefined);
    });
  }

  /**
   * Moves the lease to hold `amountMsat` after charging what its requests were charged: one
   * store write, sent again unchanged while the lease lasts when it charges and fails. Draws go
   * on meanwhile against the smaller of the old and new slice.
   */
  async function write(lease: Lease, amountMsat: bigint): Promise<HoldResult | undefined> {
    const charging = lease.chargedMsat;
    const waiters = lease.waiting.splice(0);
    const before = lease.heldMsat;
    const startedAt = now();
    lease.chargedMsat = 0n;
    lease.heldMsat = minBigint(before - charging, amountMsat);
    const expiresAt = Math.max(startedAt + ttlMs, lease.expiresAt + 1);
    lease.expiresAt = expiresAt;
    const balance = { amountMsat, initialMsat: lease.initialMsat };
    const resize = { chargeMsat: charging, ...balance, expiresAt };
    const send = () => store.resizeHold(lease.id, resize, now());
    const writing = !lease.held
      ? store.hold({ id: lease.id, tokenId: lease.account, balance, expiresAt }, startedAt)
      : charging > 0n
        ? retryCharge(send, retryWindow(lease, startedAt))
        : send();
    lease.writing = writing;
    try {
      const result = await writing;
      if (result === undefined) {
        // The store let the lease go (it lapsed): what this write charged was not written.
        lapse(lease, waiters, lapsed());
        return undefined;
      }
      tell(waiters);
      lease.seenMsat = result.spentMsat;
      if (result.ok) {
        lease.held = true;
        lease.heldMsat = amountMsat;
      } else if (!lease.held) {
        // No hold was made.
        return result;
      }
      // A growth that did not fit was not made; the charge and the renewal were.
      lease.validUntil = startedAt + Math.floor(ttlMs / 2);
      lease.renewAt = startedAt + Math.floor(ttlMs / 3);
      return result;
    } catch (error) {
      if (charging > 0n) {
        // Sent again until the lease lapsed: its requests are not answered as paid.
        logger.warn(
          { err: error, account: lease.account, msat: String(charging) },
          'a lease lapsed before what it charged was written',
        );
        lapse(lease, waiters, lapsed(error));
      }
      throw error;
    } finally {
      lease.writing = undefined;
      if (lease.waiting.length > 0) commitSoon(lease);
    }
  }

  /**
   * How long a write that charges may be sent again, from `at`: until three quarters of a TTL
   * after the last write the store made. Until its expiry the store keeps the hold whatever became
   * of this write, so a write that reaches it meanwhile is told apart from one made before (see
   * {@link Store.resizeHold}); the last quarter is the margin for clocks.
   */
  function retryWindow(lease: Lease, at: number): number {
    const until = lease.validUntil + Math.floor(ttlMs / 4);
    return until > at ? until - at : 0;
  }

  function end(lease: Lease): void {
    lease.ended = true;
    lease.heldMsat = 0n;
    if (leases.get(lease.account) === lease) leases.delete(lease.account);
  }

  /** Ends the lease and refuses the charges of `waiters` and of those waiting for a next write. */
  function lapse(lease: Lease, waiters: readonly Waiter[], error: TollwayError): void {
    end(lease);
    lease.chargedMsat = 0n;
    tell([...waiters, ...lease.waiting.splice(0)], error);
  }

  /** Grows the lease for a draw that did not fit: room for more draws, else exactly this one. */
  async function grow(lease: Lease, amountMsat: bigint): Promise<HoldResult | undefined> {
    const free = lease.initialMsat - lease.seenMsat - amountMsat;
    const spare = minBigint(amountMsat * SPARE_DRAWS, free > 0n ? free / 2n : 0n);
    const exact = lease.inFlightMsat + amountMsat;
    const result = await write(lease, exact + spare);
    if (result === undefined || result.ok || spare === 0n) return result;
    return write(lease, exact);
  }

  async function draw(
    account: string,
    amountMsat: bigint,
    initialMsat: bigint,
    retries = WAIT_RETRIES,
  ): Promise<LeaseDraw | LeaseRefusal> {
    for (;;) {
      let lease = leases.get(account);
      if (lease === undefined) lease = open(account, initialMsat);
      const taken = take(lease, amountMsat);
      if (taken !== undefined) return taken;
      if (lease.writing !== undefined) {
        await lease.writing.catch(() => undefined);
        continue;
      }
      const result = await grow(lease, amountMsat);
      if (result === undefined || result.ok) continue;
      if (retries > 0 && (await heldElsewhere(lease, amountMsat))) {
        // The rest of the balance is held by other leases, which give back their spare room
        // within two flushes once they stop drawing: try again after those.
        await new Promise((resolve) => setTimeout(resolve, 2 * FLUSH_MS));
        return draw(account, amountMsat, initialMsat, retries - 1);
      }
      if (!lease.held && lease.inFlightMsat === 0n && lease.writing === undefined) end(lease);
      return { ok: false, spentMsat: result.spentMsat - spareOf(lease) };
    }
  }

  /** Whether the draw would fit if nothing but this lease's own draws were held. */
  async function heldElsewhere(lease: Lease, amountMsat: bigint): Promise<boolean> {
    const usage = await store.getUsage(lease.account);
    return (
      usage.spentMsat + lease.chargedMsat + lease.inFlightMsat + amountMsat <= lease.initialMsat
    );
  }

  /**
   * Writes one lease: what was charged, resized to its demand (`keepDemand`, else to its requests
   * still running), renewed, or given back when idle. Waits for the write under way first.
   */
  async function flushLease(lease: Lease, keepDemand: boolean): Promise<void> {
    while (lease.writing !== undefined) await lease.writing.catch(() => undefined);
    if (lease.ended) return;
    // Room for the last interval's demand, unless the store had none free at the last write:
    // then other instances may be waiting for what this lease holds spare.
    const free = lease.initialMsat - lease.seenMsat;
    const keep = keepDemand && free > 0n ? minBigint(spareOf(lease), lease.drawnMsat) : 0n;
    lease.drawnMsat = 0n;
    if (!lease.held) {
      if (lease.inFlightMsat === 0n) end(lease);
      return;
    }
    if (lease.inFlightMsat === 0n && keep === 0n) {
      await giveBackLease(lease);
      return;
    }
    const amount = lease.inFlightMsat + keep;
    if (lease.chargedMsat > 0n || amount < lease.heldMsat || now() >= lease.renewAt) {
      await write(lease, amount);
    }
  }

  /** Ends an idle lease: writes what it charged, then lets its hold go. */
  async function giveBackLease(lease: Lease): Promise<void> {
    end(lease);
    if (lease.chargedMsat > 0n) await write(lease, 0n);
    const releasing = store.releaseHold(lease.id);
    lease.writing = releasing;
    try {
      await releasing;
    } finally {
      lease.writing = undefined;
    }
  }

  async function flushAll(): Promise<void> {
    const results = await Promise.allSettled(
      [...leases.values()].map((lease) => flushLease(lease, true)),
    );
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
    }
  }

  return {
    draw: (account, amountMsat, initialMsat) => draw(account, amountMsat, initialMsat),
    flush: flushAll,
    async giveBack(account) {
      const lease = leases.get(account);
      if (lease !== undefined) await flushLease(lease, false);
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      // With no demand kept, each lease is given back, or shrunk to its requests still running.
      const results = await Promise.allSettled(
        [...leases.values()].map((lease) => flushLease(lease, false)),
      );
      for (const result of results) {
        if (result.status === 'rejected') throw result.reason;
      }
    },
  };
}
