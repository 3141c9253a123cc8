/**
 * What an open WebSocket draws from the balance its credential carries (a service's `websocket`
 * block): `perPeriod` at the start of each period it is open (a started period is charged whole),
 * `perMessage` for each message forwarded. Draws are holds on the credential's account
 * (`BalanceDraw`): the period's price is held when it starts and charged when it ends or the
 * socket closes; messages are held ten at a time and charged for those forwarded. When what is
 * left (beyond the period under way) falls below one more period and ten more messages, the
 * client is told once; when a draw no longer fits, the socket is closed
 * (docs/guides/websockets.md).
 */
import type { BalanceDraw, BalanceHold } from '@tollway/sdk/server';

/** Messages whose price one hold covers. */
const WINDOW = 10n;

/** The prices of an open socket, msat. */
export interface SocketPrices {
  perPeriodMsat?: bigint | undefined;
  periodMs: number;
  perMessageMsat?: bigint | undefined;
}

/** What the meter tells the proxy. */
export interface SocketMeterEvents {
  /** The balance is low: `remainingMsat` is left once what is held is charged. */
  low(remainingMsat: bigint): void;
  /** A draw no longer fits: the socket must close. */
  exhausted(): void;
}

/** See {@link createSocketMeter}. */
export interface SocketMeter {
  /** Holds the first period; false when the balance cannot pay it (the socket must not open). */
  start(): Promise<boolean>;
  /** Pays one message before it is forwarded; false when the balance cannot. */
  message(): Promise<boolean>;
  /** The socket closed: charges the period started and the messages forwarded. Once. */
  stop(): Promise<void>;
}

/**
 * Creates the meter of one socket.
 *
 * @example
 * ```ts
 * const meter = createSocketMeter(decision.draw, { perMessageMsat: 100n, periodMs: 60_000 }, events);
 * if (!(await meter.start())) refuse();
 * ```
 */
export function createSocketMeter(
  draw: BalanceDraw,
  prices: SocketPrices,
  events: SocketMeterEvents,
): SocketMeter {
  const { perPeriodMsat, perMessageMsat } = prices;
  const lowBelow = (perPeriodMsat ?? 0n) + WINDOW * (perMessageMsat ?? 0n);
  let warned = false;
  let stopped = false;
  let period: BalanceHold | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let window: BalanceHold | undefined;
  let used = 0n;

  /** Tells the client once when `left` (the balance not yet used) is low. */
  const noteLeft = (left: bigint): void => {
    if (warned || left >= lowBelow) return;
    warned = true;
    events.low(left);
  };

  async function holdPeriod(): Promise<boolean> {
    const held = await draw.hold(perPeriodMsat ?? 0n);
    if (held === undefined) return false;
    // The socket closed while the draw ran: nothing of it is used.
    if (stopped) {
      await held.release();
      return false;
    }
    period = held;
    noteLeft(held.remainingMsat);
    return true;
  }

  async function nextPeriod(): Promise<void> {
    const ended = period;
    period = undefined;
    await ended?.settle();
    if (stopped) return;
    if (!(await holdPeriod())) events.exhausted();
  }

  /** A new window of message prices: ten, else one, else none. */
  async function holdWindow(price: bigint): Promise<boolean> {
    const ended = window;
    window = undefined;
    await ended?.settle(used);
    used = 0n;
    const held = (await draw.hold(price * WINDOW)) ?? (await draw.hold(price));
    if (held === undefined) return false;
    if (stopped) {
      await held.release();
      return false;
    }
    window = held;
    return true;
  }

  return {
    async start() {
      if (perPeriodMsat === undefined) return true;
      if (!(await holdPeriod())) return false;
      timer = setInterval(() => void nextPeriod(), prices.periodMs);
      timer.unref();
      return true;
    },
    async message() {
      if (perMessageMsat === undefined) return true;
      if (stopped) return false;
      if (window === undefined || used + perMessageMsat > window.amountMsat) {
        if (!(await holdWindow(perMessageMsat))) return false;
      }
      used += perMessageMsat;
      if (window !== undefined) noteLeft(window.remainingMsat + window.amountMsat - used);
      return true;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      await Promise.all([period?.settle(), window?.settle(used)]);
    },
  };
}
