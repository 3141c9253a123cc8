/**
 * The embedded dev Lightning node (a SANDBOX with play money): the network and its SQLite ledger,
 * its HTTP API, and the `dev` backend that talks to that API.
 */
export * from './backend.js';
export * from './node.js';
export * from './server.js';
