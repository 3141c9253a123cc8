/**
 * `@tollway/sdk/client`: the agent side. The paying fetch (offers of a 402, choice, payment,
 * credential cache, single flight, crash recovery), budgets that hold, the spend ledger and the
 * stores that keep them (memory, or one SQLite file shared by the agent's processes), and
 * `discover`, which reads an origin's discovery documents into one list of priced endpoints.
 */
export * from './budget.js';
export * from './discover.js';
export * from './memory-store.js';
export * from './offers.js';
export * from './paying-fetch.js';
export * from './select.js';
export * from './sqlite-store.js';
export type * from './types.js';
