/**
 * `@tollway/sdk` root entry: errors and money. Protocols live on subpaths:
 * `@tollway/sdk/l402`, `@tollway/sdk/mpp`, `@tollway/sdk/lightning`.
 */
export * from './errors.js';
export * from './money.js';
