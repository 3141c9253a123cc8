/**
 * Loads `better-sqlite3`, an optional peer of the SDK, only when a SQLite file is opened, so that
 * importing the SDK works without it. Internal: not exported.
 */
import { createRequire } from 'node:module';
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
