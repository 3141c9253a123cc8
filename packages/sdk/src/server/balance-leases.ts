/**
 * Leases of prepaid balances: how a balance is drawn without a store write per request.
 *
 * An instance that draws on a balance holds a slice of it in the store — its lease, one hold of
 * the account (see {@link Store.hold}) — and reserves each request's price out of that slice in
 * memory, settles it in memory, and writes what was charged back in one {@link Store.resizeHold}
 * per account every {@link FLUSH_MS} (which also renews the lease, resizes it to the demand of
 * the last interval, and gives it back once idle). A draw that does not fit the slice grows the
 * lease in one write — by up to {@link SPARE_DRAWS} draws of its size, never by more than half of
 * what is free — or, when that does not fit, by exactly the draw; only then is it refused.
 *
 * The money rules hold because the store counts the whole slice as held: every instance together
 * never reserves more than the balance, and a balance shown by the store (spent + held) is what
 * the requests of every instance may still cost, never less.
 *
 * A crash errs for the payer: an instance that dies leaves its lease to expire after the
 * reservation TTL, and the whole slice — including what its requests were charged since its last
 * write — returns to the balance. The provider loses at most what one instance's requests on one
 * account were charged in the last {@link FLUSH_MS} before it died (never more than its slice).
 * A write that fails is not retried with the same charge (it may have been written), so a store
 * failure also errs for the payer. A lease is used only while the store still holds it: locally it
 * lapses half a TTL after its last write, before the store lets it go.
 */
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';
import type { PaywallLogger } from './recorder.js';
import type { HoldResult, Store } from './store.js';

/** How often leases write back what was charged, follow the demand, and renew, ms. */
const FLUSH_MS = 100;
/** A lease that grows takes room for this many more draws of the size that made it grow. */
const SPARE_DRAWS = 16n;
/**
 * How many times a draw the balance could cover, were it not for other instances' leases, waits
 * two flushes for them to give back their spare room before it is refused.
 */
const WAIT_RETRIES = 3;

/** One request's draw out of a lease, held until it is settled or released. */
export interface LeaseDraw {
  ok: true;
  /** What the balance has left once this draw is charged in full, msat (see {@link remainingOf}). */
  remainingMsat: bigint;
  /** Charges `chargedMsat` (at most what was drawn); the rest goes back. Once. */
  settle(chargedMsat: bigint): void;
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
  /** Writes back what was charged, resizes and renews every lease now (the timer does it too). */
  flush(): Promise<void>;
  /**
   * Gives back this instance's spare room of `account` now (what its requests still running drew
   * stays held), writing what was charged: before a draw that bypasses the lease looks at what
   * the store holds (a further draw of a paid connection, a top-up taking what is left).
   */
  giveBack(account: string): Promise<void>;
  /** Stops the timer, writes back what was charged and gives every lease back. */
  close(): Promise<void>;
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
  /** Drawn since the last flush: the demand the lease keeps room for. */
  drawnMsat: bigint;
  /** What the account counted as spent or held (every instance) at the last write. */
  seenMsat: bigint;
  /** Used for draws until then (unix ms): half a TTL after the last write. */
  validUntil: number;
  /** Renewed at the first flush after this. */
  renewAt: number;
  writing: Promise<unknown> | undefined;
  /** Gone from the store, or given back: draws go to a new lease. */
  ended: boolean;
}

function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
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

/**
 * Creates the leases of one paywall instance over `store`.
 *
 * @example
 * ```ts
 * const leases = createBalanceLeases({ store, logger, now: Date.now, ttlMs: 60_000 });
 * const drawn = await leases.draw(account, 2_000n, 100_000n);
 * if (drawn.ok) drawn.settle(1_500n);
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
      drawnMsat: 0n,
      seenMsat: 0n,
      validUntil: 0,
      renewAt: 0,
      writing: undefined,
      ended: false,
    };
    leases.set(account, lease);
    if (timer === undefined) {
      timer = setInterval(() => {
        flush().catch((error: unknown) => logger.warn({ err: error }, 'flushing leases failed'));
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
        if (done) return;
        done = true;
        lease.inFlightMsat -= amountMsat;
        const charged = minBigint(chargedMsat < 0n ? 0n : chargedMsat, amountMsat);
        if (!lease.ended) lease.chargedMsat += charged;
        else if (charged > 0n) {
          logger.warn(
            { account: lease.account, msat: String(charged) },
            'a lease ended before its request was charged',
          );
        }
      },
      release() {
        if (done) return;
        done = true;
        lease.inFlightMsat -= amountMsat;
      },
    };
  }

  /**
   * Moves the lease to hold `amountMsat` after charging what its requests were charged: one
   * store write. Draws go on meanwhile against the smaller of the old and new slice.
   */
  async function write(lease: Lease, amountMsat: bigint): Promise<HoldResult | undefined> {
    const charging = lease.chargedMsat;
    const before = lease.heldMsat;
    const startedAt = now();
    lease.chargedMsat -= charging;
    lease.heldMsat = minBigint(before - charging, amountMsat);
    const expiresAt = startedAt + ttlMs;
    const balance = { amountMsat, initialMsat: lease.initialMsat };
    const writing = lease.held
      ? store.resizeHold(lease.id, { chargeMsat: charging, ...balance, expiresAt }, startedAt)
      : store.hold({ id: lease.id, tokenId: lease.account, balance, expiresAt }, startedAt);
    lease.writing = writing;
    try {
      const result = await writing;
      if (result === undefined) {
        end(lease);
        if (charging > 0n) {
          logger.warn(
            { account: lease.account, msat: String(charging) },
            'a lease expired before what it charged was written',
          );
        }
        return undefined;
      }
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
      // It may have been written: never charged twice, so the payer cannot lose by it.
      logger.warn(
        { err: error, account: lease.account, msat: String(charging) },
        'writing a lease failed; what it charged may not be',
      );
      throw error;
    } finally {
      lease.writing = undefined;
    }
  }

  function end(lease: Lease): void {
    lease.ended = true;
    lease.heldMsat = 0n;
    if (leases.get(lease.account) === lease) leases.delete(lease.account);
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

  /** Writes one lease back: charged, resized to its demand, renewed, or given back when idle. */
  async function flushLease(lease: Lease): Promise<void> {
    if (lease.writing !== undefined || lease.ended) return;
    // Room for the last interval's demand, unless the store had none free at the last write:
    // then other instances may be waiting for what this lease holds spare.
    const free = lease.initialMsat - lease.seenMsat;
    const keep = free > 0n ? minBigint(spareOf(lease), lease.drawnMsat) : 0n;
    lease.drawnMsat = 0n;
    if (!lease.held) {
      if (lease.inFlightMsat === 0n) end(lease);
      return;
    }
    if (lease.inFlightMsat === 0n && keep === 0n) {
      end(lease);
      const charge = { uses: 0, amountMsat: lease.chargedMsat };
      const settling = store.settleHold(lease.id, charge);
      lease.writing = settling;
      if (!(await settling) && charge.amountMsat > 0n) {
        logger.warn(
          { account: lease.account, msat: String(charge.amountMsat) },
          'a lease expired before what it charged was written',
        );
      }
      return;
    }
    const amount = lease.inFlightMsat + keep;
    if (lease.chargedMsat > 0n || amount < lease.heldMsat || now() >= lease.renewAt) {
      await write(lease, amount);
    }
  }

  async function flush(): Promise<void> {
    const results = await Promise.allSettled([...leases.values()].map(flushLease));
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
    }
  }

  return {
    draw: (account, amountMsat, initialMsat) => draw(account, amountMsat, initialMsat),
    flush,
    async giveBack(account) {
      const lease = leases.get(account);
      if (lease === undefined) return;
      await lease.writing?.catch(() => undefined);
      lease.drawnMsat = 0n;
      await flushLease(lease);
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      for (const lease of leases.values()) {
        await lease.writing?.catch(() => undefined);
        lease.drawnMsat = 0n;
      }
      // With no demand kept, each lease is given back, or shrunk to its requests still running.
      await flush();
    },
  };
}
