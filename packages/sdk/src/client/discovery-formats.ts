/**
 * Readers of the discovery documents an API may publish, each into one list of priced endpoints.
 * They read the fields they need and let the rest be (a document may carry more); an entry they
 * cannot read is skipped, a document they cannot read at all is reported. Sources of each shape:
 *
 * - L402: `/.well-known/l402.json`, lightninglabs/aperture PR #241 (`discovery/manifest.go` at
 *   e09dfce; spec lightninglabs/L402 PR #27). Resource paths are Aperture's path regexps.
 * - x402: `/.well-known/x402.json` (x402-foundation/x402 #2582), the envelope of a facilitator's
 *   `GET /discovery/resources` (`@x402/extensions` 2.27 `DiscoveryResourcesResponse`), with the
 *   Bazaar extension's `info.input.method` when present (`specs/extensions/bazaar.md`).
 * - OpenAPI with `x-payment-info` (tempoxyz/mpp-specs
 *   `specs/extensions/draft-payment-discovery-00.md` at f9506cd): one offer, or `{offers: […]}`.
 */
import { z } from 'zod';
import type { DiscoveredEndpoint, DiscoveredPrice } from './discover.js';

const l402Manifest = z.object({
  version: z.string(),
  services: z.array(
    z.object({
      name: z.string(),
      description: z.string().optional(),
      resources: z.array(
        z.object({
          path: z.string(),
          method: z.string().optional(),
          pricing: z
            .object({
              model: z.string(),
              price_msat: z.number().int().nonnegative().optional(),
              base_msat: z.number().int().nonnegative().optional(),
            })
            .optional(),
        }),
      ),
    }),
  ),
});

const x402Requirement = z.object({
  amount: z.string().optional(),
  maxAmountRequired: z.string().optional(),
  asset: z.string(),
  network: z.string(),
});

const x402Manifest = z.object({
  items: z.array(
    z.object({
      resource: z.string(),
      accepts: z.array(x402Requirement),
      description: z.string().optional(),
      serviceName: z.string().optional(),
      extensions: z
        .object({
          bazaar: z
            .object({ info: z.object({ input: z.object({ method: z.string().optional() }) }) })
            .optional(),
        })
        .optional(),
    }),
  ),
});

const paymentOffer = z.object({
  intent: z.string(),
  method: z.string(),
  amount: z.string().nullable(),
  currency: z.string().optional(),
  description: z.string().optional(),
});

const openApiDocument = z.object({
  openapi: z.string(),
  servers: z.array(z.object({ url: z.string() })).optional(),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

const operation = z.object({
  summary: z.string().optional(),
  description: z.string().optional(),
  'x-payment-info': z.union([z.object({ offers: z.array(paymentOffer) }), paymentOffer]).optional(),
});

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** A document's shape was not what its format says. */
export class UnreadableDocument extends Error {}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UnreadableDocument(`${what}: ${issue?.path.join('.') || '(root)'} ${issue?.message}`);
  }
  return parsed.data;
}

/** `ref` resolved against `base`, when that gives an http(s) URL; undefined otherwise. */
function httpUrl(ref: string, base: string): string | undefined {
  if (!URL.canParse(ref, base)) return undefined;
  const url = new URL(ref, base);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
}

/** An Aperture path regexp as a plain path, when it is one (`^/svc/Method.*$` → `/svc/Method`). */
function pathOf(pattern: string): string {
  return pattern.replace(/^\^/, '').replace(/\$$/, '').replace(/\.\*$/, '');
}

/**
 * The endpoints of an L402 manifest; `origin` resolves its paths.
 *
 * @example
 * ```ts
 * readL402Manifest(await (await fetch(`${origin}/.well-known/l402.json`)).json(), origin);
 * ```
 */
export function readL402Manifest(value: unknown, origin: string): DiscoveredEndpoint[] {
  const manifest = parse(l402Manifest, value, 'l402.json');
  return manifest.services.flatMap((service) =>
    service.resources.flatMap((resource): DiscoveredEndpoint[] => {
      const url = httpUrl(pathOf(resource.path), origin);
      if (url === undefined) return [];
      const price: DiscoveredPrice = { protocol: 'l402', unit: 'msat' };
      if (resource.pricing?.model === 'fixed' && resource.pricing.price_msat !== undefined) {
        price.amount = String(resource.pricing.price_msat);
      }
      return [
        {
          url,
          method: (resource.method ?? 'GET').toUpperCase(),
          service: service.name,
          ...(service.description === undefined ? {} : { description: service.description }),
          prices: [price],
          sources: ['l402'],
        },
      ];
    }),
  );
}

/**
 * The endpoints of an x402 discovery document (or a facilitator's discovery list).
 *
 * @example
 * ```ts
 * readX402Manifest(await (await fetch(`${origin}/.well-known/x402.json`)).json(), origin);
 * ```
 */
export function readX402Manifest(value: unknown, origin: string): DiscoveredEndpoint[] {
  const manifest = parse(x402Manifest, value, 'x402.json');
  return manifest.items.flatMap((item): DiscoveredEndpoint[] => {
    const url = httpUrl(item.resource, origin);
    if (url === undefined) return [];
    return [
      {
        url,
        method: (item.extensions?.bazaar?.info.input.method ?? 'GET').toUpperCase(),
        ...(item.serviceName === undefined ? {} : { service: item.serviceName }),
        ...(item.description === undefined ? {} : { description: item.description }),
        prices: item.accepts.map((accept): DiscoveredPrice => {
          const amount = accept.amount ?? accept.maxAmountRequired;
          return {
            protocol: 'x402',
            unit: accept.asset,
            network: accept.network,
            ...(amount === undefined ? {} : { amount }),
          };
        }),
        sources: ['x402'],
      },
    ];
  });
}

/**
 * The priced operations of an OpenAPI document (those with `x-payment-info`); `origin` resolves
 * its paths (its first server's URL when it names one).
 *
 * @example
 * ```ts
 * readOpenApi(await (await fetch(`${origin}/openapi.json`)).json(), origin);
 * ```
 */
export function readOpenApi(value: unknown, origin: string): DiscoveredEndpoint[] {
  const document = parse(openApiDocument, value, 'openapi.json');
  const server = httpUrl(document.servers?.[0]?.url ?? '/', origin);
  if (server === undefined) {
    throw new UnreadableDocument('openapi.json: servers.0.url is not an http(s) URL');
  }
  const base = `${server.replace(/\/$/, '')}/`;
  const found: DiscoveredEndpoint[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue;
      const parsed = operation.safeParse(raw);
      const info = parsed.success ? parsed.data['x-payment-info'] : undefined;
      if (!parsed.success || info === undefined) continue;
      const offers = 'offers' in info ? info.offers : [info];
      const description = parsed.data.summary ?? parsed.data.description;
      const url = httpUrl(path.replace(/^\//, ''), base);
      if (url === undefined) continue;
      found.push({
        url,
        method: method.toUpperCase(),
        ...(description === undefined ? {} : { description }),
        prices: offers.map((offer) => ({
          protocol: offer.method === 'lightning' ? 'mpp' : offer.method,
          unit: offer.currency ?? '',
          ...(offer.amount === null ? {} : { amount: offer.amount }),
        })),
        sources: ['openapi'],
      });
    }
  }
  return found;
}
