/**
 * `@tollway/sdk/lightning`: BOLT11 invoices, the `LightningBackend` interface, connection strings
 * and `connectLightning`, which imports only the backend a connection names. Importing this entry
 * loads no backend: the NWC backend is on `@tollway/sdk/lightning/nwc`, the embedded dev node on
 * `@tollway/sdk/lightning/dev`.
 */
export * from './bolt11.js';
export * from './connect.js';
export * from './connection-string.js';
export * from './nwc-uri.js';
export * from './preimage.js';
export * from './safe-backend.js';
export type * from './types.js';
