/**
 * Closing the x402 `batch-settlement` channels the paying fetch deposited into: the cooperative
 * refund of what each has left (asked at the route that opened it; x402's client signs a voucher
 * for what the server charged, which claims nothing more), a `refund` entry on the channel's
 * account in the ledger, and the refund given back to the budget. Of several processes closing
 * one channel, the one that moves it from `open` to `closing` in the store asks for the refund.
 *
 * @internal
 */
import type { BatchChannelStorage, BatchPayer } from '../x402/batch-payer.js';
import { channelStorage } from './channel-storage.js';
import { dueForClose, noteUse } from './idle-close.js';
import type { PayingContext } from './paying-context.js';
import {
  type ClosedSession,
  type CloseSessionsOptions,
  giveBackToBudget,
} from './sessions-close.js';
import type { StoredChannel } from './types.js';

/** What the channel has left by its record: what was deposited less what the server charged. */
function leftOf(channel: StoredChannel): bigint {
  const { record } = channel;
  if (record === undefined) return 0n;
  const left = BigInt(record.balance ?? '0') - BigInt(record.chargedCumulativeAmount ?? '0');
  return left > 0n ? left : 0n;
}

/**
 * What a refund of `amount` tokens is worth in msat: at the rate the channel's deposits were
 * counted at (rounded down: the budget never gets back more than the deposits cost).
 */
async function refundMsat(context: PayingContext, id: string, amount: bigint): Promise<bigint> {
  const deposits = await context.store.list({ account: id, kind: 'purchase', status: 'succeeded' });
  let tokens = 0n;
  let msat = 0n;
  for (const deposit of deposits) {
    tokens += deposit.amount;
    msat += deposit.amountMsat;
  }
  return tokens === 0n ? 0n : (msat * amount) / tokens;
}

/** Notes how the channel's close went, in the store and to the listeners. */
async function closed(
  context: PayingContext,
  channel: StoredChannel,
  refund: { amount: bigint; msat: bigint; status: string },
): Promise<ClosedSession> {
  await context.store.updateChannel(
    channel.id,
    { state: 'closed', closedAt: context.now(), refund: refund.amount },
    'closing',
  );
  context.channelsUsed.delete(channel.id);
  const done: ClosedSession = {
    id: channel.id,
    origin: channel.origin,
    refundMsat: refund.msat,
    refundStatus: refund.status,
    refund: { amount: refund.amount, unit: channel.unit },
  };
  context.emit({ type: 'session-closed', session: done });
  return done;
}

/** Opens a channel whose close failed again, for a later close. */
async function notClosed(
  context: PayingContext,
  channel: StoredChannel,
  error: unknown,
): Promise<undefined> {
  await context.store.updateChannel(channel.id, { state: 'open' }, 'closing');
  context.emit({ type: 'session-close-failed', error });
  return undefined;
}

/**
 * The channel with its record's balance as the contract holds it. The record keeps the balance
 * the last answer it read said, which may predate a deposit another process made meanwhile
 * (answers to calls that ran at once are read in any order).
 */
async function withBalanceOnChain(
  payer: BatchPayer,
  storage: BatchChannelStorage,
  channel: StoredChannel,
): Promise<StoredChannel> {
  const { record } = channel;
  if (record === undefined) return channel;
  const { balance } = await payer.onChain(channel.id as `0x${string}`);
  if (record.balance === balance.toString()) return channel;
  const synced = { ...record, balance: balance.toString() };
  await storage.set(channel.id, synced);
  return { ...channel, record: synced };
}

/**
 * Asks for the refund of one channel this process moved to `closing`; undefined when it was not
 * made (the channel is open again, for a later close).
 */
async function closeOne(
  context: PayingContext,
  payer: BatchPayer,
  closing: StoredChannel,
): Promise<ClosedSession | undefined> {
  const storage = channelStorage(context, closing);
  let channel: StoredChannel;
  try {
    channel = await withBalanceOnChain(payer, storage, closing);
  } catch (error) {
    return notClosed(context, closing, error);
  }
  const left = leftOf(channel);
  if (left === 0n) return closed(context, channel, { amount: 0n, msat: 0n, status: 'skipped' });
  let refunded: Awaited<ReturnType<BatchPayer['refund']>>;
  try {
    refunded = await payer.refund(channel.url, storage);
  } catch (error) {
    return notClosed(context, channel, error);
  }
  const amount = refunded.amount ?? left;
  const msat = await refundMsat(context, channel.id, amount);
  await context.store.recordPayment({
    id: globalThis.crypto.randomUUID(),
    kind: 'refund',
    time: context.now(),
    tags: { ...context.budget?.tags, ...context.tags },
    url: channel.url,
    origin: channel.origin,
    protocol: 'x402',
    amount,
    unit: channel.unit,
    amountMsat: msat,
    feeMsat: 0n,
    reference: channel.id,
    account: channel.id,
    ...(refunded.transaction === '' ? {} : { proof: refunded.transaction }),
    status: 'succeeded',
  });
  await giveBackToBudget(context, channel.id, msat);
  return closed(context, channel, { amount, msat, status: 'succeeded' });
}

/**
 * Closes the open channels (of `origin`; used here, or idle here for `idleForMs`) and collects
 * their refunds. Returns what each closed channel gave back. Nothing without a wallet that pays
 * batch-settlement.
 *
 * @internal
 */
export async function closeChannels(
  context: PayingContext,
  options: CloseSessionsOptions = {},
): Promise<ClosedSession[]> {
  const payer = context.x402?.wallet.batch;
  if (payer === undefined) return [];
  const open = await context.store.listChannels({
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    states: ['open'],
  });
  const due = dueForClose(context, open, context.channelsUsed, options);
  const done: ClosedSession[] = [];
  for (const channel of due) {
    if (!(await context.store.updateChannel(channel.id, { state: 'closing' }, 'open'))) continue;
    const made = await closeOne(context, payer, { ...channel, state: 'closing' });
    if (made !== undefined) done.push(made);
  }
  return done;
}

/**
 * Notes that this process drew on channel `id` now; with `sessions.idleCloseMs`, closes it once it
 * has gone that long without another call (a timer that does not keep the process alive).
 *
 * @internal
 */
export function noteChannelUse(context: PayingContext, id: string): void {
  noteUse(context, context.channelsUsed, id, (options) => closeChannels(context, options));
}
