/**
 * Discovery documents, generated from the services the gateway serves (discovery-routes.ts) and
 * always saying what their 402s say:
 *
 * - `GET /.well-known/l402.json` and `POST /l402/quote`: Aperture's proposal (lightninglabs/aperture
 *   PR #241, branch `l402-discovery` at e09dfce, `discovery/manifest.go` and `server.go`; spec in
 *   lightninglabs/L402 PR #27). `price_msat` is what the L402 token costs: the invoice of the 402
 *   (the price, or the balance a service sells). A quote is a fresh L402 challenge for a service.
 * - `GET /.well-known/x402.json`: the endpoints with an x402 offer, in the envelope of an x402
 *   facilitator's `GET /discovery/resources` (`{x402Version, items, pagination}`, items as
 *   `@x402/extensions` 2.27 `DiscoveryResource`), as proposed for a per-origin document in
 *   x402-foundation/x402 #2582; each item's `accepts` and `extensions.bazaar` are its 402's.
 * - `GET /openapi.json`: OpenAPI 3.1 with `x-payment-info` on each priced operation, as the MPP
 *   discovery draft says (tempoxyz/mpp-specs `specs/extensions/draft-payment-discovery-00.md` at
 *   f9506cd): `{offers: [{intent: "charge", method: "lightning", amount: "<sat>", currency:
 *   "sat"}]}` when the service offers MPP (`amount: null` when priced by the body), and a `402`
 *   response.
 *
 * Discovery is advisory: a client pays what the 402 says. Guide: docs/guides/discovery.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from './config.js';
import { type ListedEndpoint, listEndpoints } from './discovery-routes.js';
import { sendProblem } from './problem.js';
import type { ServiceTable } from './services.js';

/** The paths the gateway answers for discovery. */
export const DISCOVERY_PATHS = {
  l402: '/.well-known/l402.json',
  quote: '/l402/quote',
  x402: '/.well-known/x402.json',
  openapi: '/openapi.json',
} as const;

/** How long clients may cache a discovery document, seconds (the MPP draft suggests 300). */
const MAX_AGE_SECONDS = 300;

/** What the documents are built from. */
export interface DiscoverySource {
  table: ServiceTable;
  config: GatewayConfig;
  version: string;
}

/** The request's origin as the client sees it: the scheme it came over, and its Host. */
function originOf(req: IncomingMessage, host: string | undefined): string {
  const encrypted = 'encrypted' in req.socket && req.socket.encrypted === true;
  return `${encrypted ? 'https' : 'http'}://${host ?? 'localhost'}`;
}

/** The endpoints of the source that this host reaches (a host-bound service only on its host). */
function reachable(
  endpoints: readonly ListedEndpoint[],
  table: ServiceTable,
  host: string | undefined,
): ListedEndpoint[] {
  return endpoints.filter((endpoint) => table.match(host, endpoint.path) === endpoint.service);
}

function offers(config: GatewayConfig, protocol: 'l402' | 'mpp'): boolean {
  return (config.paywall.protocols ?? ['l402', 'mpp']).includes(protocol);
}

/** `/.well-known/l402.json`; see the module comment. */
function l402Manifest(
  source: DiscoverySource,
  endpoints: readonly ListedEndpoint[],
  origin: string,
) {
  const services = [...new Set(endpoints.map((endpoint) => endpoint.service))].map((service) => ({
    name: service.name,
    description: service.config.description ?? service.name,
    tiers: [{ tier: service.config.tier ?? 0, name: 'base' }],
    capabilities: service.config.capabilities ?? [],
    resources: endpoints
      .filter((endpoint) => endpoint.service === service)
      .map((endpoint) => ({
        path: endpoint.path,
        method: endpoint.method,
        pricing: endpoint.dynamic
          ? { model: 'dynamic' }
          : { model: 'fixed', price_msat: Number(endpoint.invoiceMsat) },
      })),
  }));
  const caveats: Record<string, { type: string; attenuation: string }> = {
    services: { type: 'service_list', attenuation: 'subset' },
  };
  for (const service of services) {
    caveats[`${service.name}_capabilities`] = { type: 'string', attenuation: 'subset' };
    caveats[`${service.name}_valid_until`] = { type: 'timestamp', attenuation: 'earlier' };
  }
  return {
    version: '1.0',
    provider: { name: source.config.discovery.name ?? 'Tollway gateway', uri: origin },
    currencies: ['msat'],
    macaroon_versions: [0],
    payment_methods: ['bolt11'],
    quote_endpoint: DISCOVERY_PATHS.quote,
    openapi: DISCOVERY_PATHS.openapi,
    services,
    caveats,
  };
}

/** `/.well-known/x402.json`; see the module comment. */
function x402Manifest(endpoints: readonly ListedEndpoint[], origin: string, updated: string) {
  const items = endpoints.flatMap((endpoint) => {
    const offer = endpoint.x402;
    if (offer === undefined) return [];
    return [
      {
        resource: `${origin}${endpoint.path}`,
        type: 'http',
        x402Version: 2,
        // The wire form of x402 requirements: amounts as decimal strings.
        accepts: offer.accepts.map((accept) => ({ ...accept, amount: accept.amount.toString() })),
        lastUpdated: updated,
        description: endpoint.service.config.description ?? endpoint.service.name,
        mimeType: '',
        serviceName: endpoint.service.name,
        ...(offer.extensions === undefined ? {} : { extensions: offer.extensions }),
      },
    ];
  });
  return {
    x402Version: 2,
    items,
    pagination: { limit: items.length, offset: 0, total: items.length },
  };
}

/** An OpenAPI operation id: letters, digits and `_` only. */
function operationId(endpoint: ListedEndpoint): string {
  return `${endpoint.method.toLowerCase()}${endpoint.path}`.replace(/[^A-Za-z0-9]+/g, '_');
}

/** `/openapi.json`; see the module comment. */
function openApi(source: DiscoverySource, endpoints: readonly ListedEndpoint[], origin: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  const mpp = offers(source.config, 'mpp');
  for (const endpoint of endpoints) {
    const description = endpoint.service.config.description ?? endpoint.service.name;
    const offers = mpp
      ? [
          {
            intent: 'charge',
            method: 'lightning',
            amount: endpoint.dynamic ? null : (endpoint.invoiceMsat / 1000n).toString(),
            currency: 'sat',
            description,
          },
        ]
      : [];
    paths[endpoint.path] ??= {};
    (paths[endpoint.path] as Record<string, unknown>)[endpoint.method.toLowerCase()] = {
      operationId: operationId(endpoint),
      summary: description,
      'x-payment-info': { offers },
      ...(endpoint.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { 'application/json': { example: endpoint.body } },
            },
          }),
      responses: {
        '200': { description: 'The paid answer.' },
        '402': { description: 'Payment Required: the offers to pay, in the headers and body.' },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: source.config.discovery.name ?? 'Tollway gateway', version: source.version },
    servers: [{ url: origin }],
    paths,
  };
}

function writeJson(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': `public, max-age=${MAX_AGE_SECONDS}`,
    'access-control-allow-origin': '*',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The endpoints of each service table, listed once (a table is replaced whole on reload). */
const listed = new WeakMap<ServiceTable, { at: string; endpoints: Promise<ListedEndpoint[]> }>();

function endpointsOf(table: ServiceTable): { at: string; endpoints: Promise<ListedEndpoint[]> } {
  let entry = listed.get(table);
  if (entry === undefined) {
    entry = { at: new Date().toISOString(), endpoints: listEndpoints(table.services) };
    // A failed listing (the store was down) is tried again on the next request.
    entry.endpoints.catch(() => listed.delete(table));
    listed.set(table, entry);
  }
  return entry;
}

/** A discovery endpoint. */
export type DiscoveryDocument = keyof typeof DISCOVERY_PATHS;

/**
 * The discovery endpoint `path` names, if any (a check cheap enough for every request).
 *
 * @example
 * ```ts
 * discoveryDocument('/.well-known/l402.json'); // 'l402'
 * ```
 */
export function discoveryDocument(path: string): DiscoveryDocument | undefined {
  if (path === DISCOVERY_PATHS.l402) return 'l402';
  if (path === DISCOVERY_PATHS.x402) return 'x402';
  if (path === DISCOVERY_PATHS.openapi) return 'openapi';
  if (path === DISCOVERY_PATHS.quote) return 'quote';
  return undefined;
}

/**
 * Answers a request for a discovery endpoint (`quote` answers `/l402/quote`); other methods than
 * the endpoint's get a 405.
 *
 * @example
 * ```ts
 * const document = discoveryDocument(target.path);
 * if (document !== undefined) return serveDiscovery(req, res, document, host, source, quote);
 * ```
 */
export async function serveDiscovery(
  req: IncomingMessage,
  res: ServerResponse,
  document: DiscoveryDocument,
  host: string | undefined,
  source: DiscoverySource,
  quote: () => Promise<void>,
): Promise<void> {
  const expected = document === 'quote' ? 'POST' : 'GET';
  if (req.method !== expected && !(expected === 'GET' && req.method === 'HEAD')) {
    res.setHeader('allow', expected);
    return sendProblem(res, {
      code: 'method_not_allowed',
      detail: `${DISCOVERY_PATHS[document]} answers ${expected} only.`,
    });
  }
  if ((document === 'l402' || document === 'quote') && !offers(source.config, 'l402')) {
    return sendProblem(res, { code: 'not_found', detail: 'This gateway offers no L402 tokens.' });
  }
  if (document === 'quote') return quote();
  if (document === 'x402' && source.config.x402 === undefined) {
    return sendProblem(res, { code: 'not_found', detail: 'This gateway takes no x402 payments.' });
  }
  const { at, endpoints } = endpointsOf(source.table);
  const here = reachable(await endpoints, source.table, host);
  const origin = originOf(req, host);
  const value =
    document === 'l402'
      ? l402Manifest(source, here, origin)
      : document === 'x402'
        ? x402Manifest(here, origin, at)
        : openApi(source, here, origin);
  writeJson(res, value);
}
