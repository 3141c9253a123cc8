export * from './bolt11.js';
export * from './types.js';
