/**
 * `@tollway/sdk/server`: the paywall engine. Put a price on a route of any web app; a framework
 * adapter (`@tollway/sdk/node`, `/express`, `/fastify`, `/hono`) calls `paywall.handle()` for each
 * request and writes the decision.
 */

export { clientNetwork } from './client-network.js';
export type { CorsOptions } from './cors.js';
export type { Duration } from './duration.js';
export { createEventMeter } from './event-meter.js';
export type { FreebieOptions } from './freebies.js';
export type { SharedLimitOptions } from './limit-sync.js';
export type { Meter, MeteredAnswer, MeterReading } from './meter.js';
export type {
  ChallengeParts,
  CredentialCheck,
  CredentialSource,
  CredentialVerdict,
  OfferKind,
  OfferPart,
  PaymentProof,
  PresentedCredential,
  SettleOutcome,
} from './offers.js';
export {
  createPaywall,
  type Paywall,
  type PaywallLogger,
  type PaywallOptions,
  type PaywallRateLimits,
} from './paywall.js';
export type { Price, PriceFunction, PriceInput, PriceRequest } from './pricing.js';
export { createProblemResponse, formatProblem, type Problem } from './problem.js';
export type { RateLimit } from './rate-limit.js';
export {
  createMasterSecret,
  createRootKeys,
  type MasterSecret,
  type RootKeys,
} from './root-keys.js';
export type { Route, RouteOptions } from './route.js';
export type * from './store.js';
export { formatReceiptComment, streamTail } from './stream-receipt.js';
export type * from './types.js';
export type { BatchRedemption, X402BatchOptions } from './x402-batch.js';
export {
  createX402Offer,
  type X402Asset,
  type X402OfferKind,
  type X402OfferOptions,
} from './x402-offer.js';
