/**
 * `@tollway/sdk` root entry: errors, money and hex. Protocols live on subpaths:
 * `@tollway/sdk/l402`, `@tollway/sdk/mpp`, `@tollway/sdk/x402`, `@tollway/sdk/lightning`.
 */
export * from './errors.js';
export { bytesToHex, hexToBytes } from './internal/bytes.js';
export * from './money.js';
