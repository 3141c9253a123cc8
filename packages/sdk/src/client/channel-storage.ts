/**
 * Where the paying fetch keeps its record of each x402 batch-settlement channel: the client store,
 * shared by every call and process of the agent, in the form x402's client reads and writes.
 *
 * @internal
 */
import type { BatchChannelStorage } from '../x402/batch-payer.js';
import type { PayingContext } from './paying-context.js';

/**
 * The record of the channels of `where`'s receiver in the client store, as x402's client reads
 * and writes it. A record written for a channel the store does not know opens it (at the URL of
 * the call); a closed one opens again with its next deposit.
 *
 * @internal
 */
export function channelStorage(
  context: PayingContext,
  where: { origin: string; url: string; unit: string },
): BatchChannelStorage {
  const { store } = context;
  return {
    async get(id) {
      const record = (await store.getChannel(id))?.record;
      return record === undefined ? undefined : { ...record };
    },
    async set(id, record) {
      const channel = await store.getChannel(id);
      if (channel === undefined) {
        await store.saveChannel({ id, ...where, record, openedAt: context.now(), state: 'open' });
        return;
      }
      await store.updateChannel(id, {
        record,
        ...(channel.state === 'closed' ? { state: 'open', openedAt: context.now() } : {}),
      });
    },
    async delete(id) {
      await store.updateChannel(id, { record: null });
    },
  };
}
