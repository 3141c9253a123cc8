/**
 * `@tollway/sdk/mpp`: the MPP `Payment` HTTP authentication scheme (draft-httpauth-payment) with
 * the lightning `charge` and `session` intents: challenges, credentials, receipts, JCS and
 * base64url.
 */
export * from './base64url.js';
export * from './challenge.js';
export * from './challenge-id.js';
export * from './charge.js';
export * from './charge-request.js';
export * from './credential.js';
export * from './jcs.js';
export type { JsonObject, JsonValue } from './json.js';
export * from './receipt.js';
export * from './session.js';
export * from './session-request.js';
