/**
 * The x402 batch-settlement channels of the agent's SQLite store: their table (schema version 4)
 * and the store methods that read and change them.
 *
 * @internal
 */
import type BetterSqlite3 from 'better-sqlite3';
import { assertStorableAmount } from '../stores/common.js';
import { patchChannel } from './store-common.js';
import type { ClientStore, StoredChannel } from './types.js';

/** Version 4: x402 batch-settlement channels. */
export const CHANNELS_SCHEMA = `
CREATE TABLE channels (
  id TEXT PRIMARY KEY,
  origin TEXT NOT NULL,
  url TEXT NOT NULL,
  unit TEXT NOT NULL,
  record TEXT,
  opened_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'closing', 'closed')),
  closed_at INTEGER,
  refund INTEGER CHECK (refund >= 0)
) STRICT;
CREATE INDEX channels_origin ON channels (origin, state);
`;

interface RawChannel {
  id: string;
  origin: string;
  url: string;
  unit: string;
  record: string | null;
  opened_at: bigint;
  state: string;
  closed_at: bigint | null;
  refund: bigint | null;
}

function toChannel(row: RawChannel): StoredChannel {
  return {
    id: row.id,
    origin: row.origin,
    url: row.url,
    unit: row.unit,
    ...(row.record === null ? {} : { record: JSON.parse(row.record) as Record<string, string> }),
    openedAt: Number(row.opened_at),
    state: row.state as StoredChannel['state'],
    ...(row.closed_at === null ? {} : { closedAt: Number(row.closed_at) }),
    ...(row.refund === null ? {} : { refund: row.refund }),
  };
}

function fromChannel(channel: StoredChannel): RawChannel {
  if (channel.refund !== undefined) assertStorableAmount(channel.refund, 'refund');
  return {
    id: channel.id,
    origin: channel.origin,
    url: channel.url,
    unit: channel.unit,
    record: channel.record === undefined ? null : JSON.stringify(channel.record),
    opened_at: BigInt(channel.openedAt),
    state: channel.state,
    closed_at: channel.closedAt === undefined ? null : BigInt(channel.closedAt),
    refund: channel.refund ?? null,
  };
}

type ChannelMethods = Pick<
  ClientStore,
  'saveChannel' | 'getChannel' | 'listChannels' | 'updateChannel'
>;

/**
 * The channel methods of the store on `db`, each run through `run` (which turns the database's
 * failures into `store_error`).
 *
 * @internal
 */
export function sqliteChannels(
  db: BetterSqlite3.Database,
  run: <T>(work: () => T) => Promise<T>,
): ChannelMethods {
  const save = db.prepare<RawChannel>(
    `INSERT OR REPLACE INTO channels (id, origin, url, unit, record, opened_at, state, closed_at,
       refund)
     VALUES (@id, @origin, @url, @unit, @record, @opened_at, @state, @closed_at, @refund)`,
  );
  const get = db.prepare<[string], RawChannel>('SELECT * FROM channels WHERE id = ?');
  const list = db.prepare<{ origin: string | null }, RawChannel>(
    'SELECT * FROM channels WHERE (@origin IS NULL OR origin = @origin) ORDER BY opened_at, rowid',
  );
  return {
    saveChannel: (channel) =>
      run(() => {
        save.run(fromChannel(channel));
      }),
    getChannel: (id) =>
      run(() => {
        const row = get.get(id);
        return row === undefined ? undefined : toChannel(row);
      }),
    listChannels: (query = {}) =>
      run(() =>
        list
          .all({ origin: query.origin ?? null })
          .map(toChannel)
          .filter((channel) => query.states === undefined || query.states.includes(channel.state)),
      ),
    updateChannel: (id, patch, from) =>
      run(() =>
        db
          .transaction(() => {
            const row = get.get(id);
            if (row === undefined || (from !== undefined && row.state !== from)) return false;
            save.run(fromChannel(patchChannel(toChannel(row), patch)));
            return true;
          })
          .immediate(),
      ),
  };
}
