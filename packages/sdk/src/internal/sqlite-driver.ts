/**
 * Loads `better-sqlite3`, an optional peer of the SDK, only when a SQLite file is opened, so that
 * importing the SDK works without it; and opens SQLite files private to their owner. Internal: not
 * exported.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { TollwayError } from '../errors.js';

/** The `better-sqlite3` constructor; throws `capability_unsupported` naming `purpose` when it is missing. */
export function loadSqliteDriver(purpose: string): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (cause) {
    throw new TollwayError(
      'capability_unsupported',
      `${purpose} needs better-sqlite3: npm install better-sqlite3`,
      {
        cause,
      },
    );
  }
}

/**
 * Opens the SQLite file at `path` with `Driver`, creating it private when absent: missing folders
 * mode 0700, the file 0600 (SQLite gives the `-wal` and `-shm` files the mode of the database
 * file). Every Tollway database holds secrets or money: tokens, preimages, keys, counters.
 * `':memory:'` and `''` open private in-memory databases.
 */
export function openSqliteFile(Driver: typeof BetterSqlite3, path: string): BetterSqlite3.Database {
  if (path !== ':memory:' && path !== '') {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return new Driver(path);
}
