/**
 * `@tollway/sdk/client`: the agent side. The paying fetch (offers of a 402, choice, payment,
 * credential cache, single flight, crash recovery), budgets that hold, the spend ledger and the
 * stores that keep them (memory, or one SQLite file shared by the agent's processes), and
 * `discover`, which reads an origin's discovery documents into one list of priced endpoints.
 *
 * The parsers of a 402's offers are on `@tollway/sdk/client/offers`, and the paying fetch loads
 * them (and BOLT11, the x402 wire codecs, the wallet's backend) with the first 402: a call
 * answered with a saved credential loads none of it, which is most of a short-lived process's
 * start-up (`tollway fetch`, measured in bench/cli.js).
 */
export * from './budget.js';
export * from './discover.js';
export * from './memory-store.js';
export type * from './offers.js';
export * from './paying-fetch.js';
export * from './select.js';
export * from './sqlite-store.js';
export type * from './types.js';
