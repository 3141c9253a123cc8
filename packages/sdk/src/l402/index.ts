export * from './caveats.js';
export * from './challenge.js';
export * from './credential.js';
export * from './identifier.js';
export * from './macaroon.js';
export * from './types.js';
export * from './verify.js';
