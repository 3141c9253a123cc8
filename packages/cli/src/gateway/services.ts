/**
 * The gateway's services: each config entry compiled once into a host and path matcher, the
 * paywall route its requests take (priced, or free for `auth: off`), its pricing rules as a price
 * function, and its upstream path rewrite. The first match wins.
 */
import { isTollwayError, TollwayError } from '@tollway/sdk';
import type { UsageReading } from '@tollway/sdk/llm';
import type { Paywall, PriceFunction, PriceInput, PriceRequest, Route } from '@tollway/sdk/server';
import type { PricingRule, ServiceConfig } from './config.js';
import { createGrpcPriceFunction } from './grpc-pricing.js';
import { createLlmRouting, type LlmRouting, type LlmRoutingOptions } from './llm.js';
import { createMcpPriceFunction } from './mcp-pricing.js';

/** A service ready to serve. */
export interface Service {
  readonly name: string;
  readonly config: ServiceConfig;
  /** The engine deciding this service's requests. */
  readonly paywall: Paywall;
  /** The route of its requests: priced, or free when `auth: off`. */
  readonly route: Route;
  /** The upstream origin, e.g. `https://api.example.com`. */
  readonly origin: string;
  /** Headers set on every upstream request, flat: `[name, value, …]`. */
  readonly injectedHeaders: readonly string[];
  /** Their names, lower case: the client's headers of these names are dropped. */
  readonly injectedNames: ReadonlySet<string>;
  /** The client's address is told upstream (`X-Forwarded-*`, `Forwarded`). */
  readonly forwardsClient: boolean;
  /** How the request was paid is told upstream (`X-Tollway-*`). */
  readonly forwardsPayment: boolean;
  /** The upstream path and query for a request target (path plus query) received by the gateway. */
  rewrite(target: string): string;
  /** Set for a service with an `llm` block: its model table, and its providers as upstreams. */
  readonly llm?: LlmService;
}

/** The LLM side of a service; see {@link Service.llm}. */
export interface LlmService {
  readonly routing: LlmRouting;
  /** Each of `llm.providers` as an upstream of its own (the service with its origin and headers). */
  readonly providers: ReadonlyMap<string, Service>;
}

/** The services in match order; see {@link createServiceTable}. */
export interface ServiceTable {
  readonly services: readonly Service[];
  /** Every upstream the services forward to: each service, and the providers of `llm` services. */
  readonly upstreams: readonly Service[];
  /**
   * The first service whose host and path prefix match, or undefined. `path` is canonical (see
   * request-target.ts): ambiguous paths were refused before.
   */
  match(host: string | undefined, path: string): Service | undefined;
}

/**
 * True when `path` is `prefix` or below it on a segment boundary (`/v1` covers `/v1/x`, not
 * `/v10`; a prefix ending in `/` covers what starts with it).
 *
 * @example
 * ```ts
 * pathWithin('/weather/today', '/weather'); // true
 * ```
 */
export function pathWithin(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** A host pattern: `api.example.com`, `*.example.com` (any subdomain), or with a port. */
function createHostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const lowered = patterns.map((pattern) => pattern.toLowerCase());
  return (host) => {
    const full = host.toLowerCase();
    const name = full.startsWith('[') ? full.slice(0, full.indexOf(']') + 1) : full.split(':')[0];
    return lowered.some((pattern) => {
      const candidate = /:\d+$/.test(pattern) ? full : (name ?? '');
      if (pattern.startsWith('*.')) return candidate.endsWith(pattern.slice(1));
      return candidate === pattern;
    });
  };
}

/** The value at a dotted path (`params.name`) of a parsed JSON body, own properties only. */
function readField(body: unknown, field: string): unknown {
  let value = body;
  for (const key of field.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function ruleMatches(rule: PricingRule, request: PriceRequest): boolean {
  if (rule.method !== undefined) {
    const methods = typeof rule.method === 'string' ? [rule.method] : rule.method;
    if (!methods.some((method) => method.toUpperCase() === request.method)) return false;
  }
  if (rule.path !== undefined && !pathWithin(request.path, rule.path)) return false;
  for (const [field, expected] of Object.entries(rule.when ?? {})) {
    if (readField(request.body, field) !== expected) return false;
  }
  return true;
}

/** The price of one request under pricing rules: the first rule that prices it, else `fallback`. */
function createPriceFunction(rules: readonly PricingRule[], fallback: string): PriceFunction {
  return (request): PriceInput => {
    for (const rule of rules) {
      if (!ruleMatches(rule, request)) continue;
      if (rule.field !== undefined && rule.prices !== undefined) {
        const value = readField(request.body, rule.field);
        const key =
          typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
        if (key !== undefined && Object.hasOwn(rule.prices, key))
          return rule.prices[key] ?? fallback;
      }
      if (rule.price !== undefined) return rule.price;
    }
    return fallback;
  };
}

function createRewrite(config: ServiceConfig): (target: string) => string {
  const strip = config.stripPrefix === true ? config.path : config.stripPrefix || undefined;
  const base = new URL(config.upstream).pathname.replace(/\/$/, '');
  return (target) => {
    const question = target.indexOf('?');
    let path = question < 0 ? target : target.slice(0, question);
    const query = question < 0 ? '' : target.slice(question);
    if (strip !== undefined && strip !== '/' && pathWithin(path, strip)) {
      path = path.slice(strip.replace(/\/$/, '').length);
      if (!path.startsWith('/')) path = `/${path}`;
    }
    return `${base}${path}${query}`;
  };
}

/** A service and its matcher. */
type CompiledService = Service & { matches(host: string | undefined, path: string): boolean };

/**
 * Where a service's requests go upstream: the origin, the headers it injects and what else it
 * tells (by default everything to a service of your own, nothing more to an LLM provider, usually
 * a third party: not the client's address, not the token it paid with), the path rewrite.
 */
function upstreamParts(config: ServiceConfig) {
  const ownUpstream = config.llm === undefined;
  return {
    origin: new URL(config.upstream).origin,
    injectedHeaders: Object.entries(config.headers ?? {}).flat(),
    injectedNames: new Set(Object.keys(config.headers ?? {}).map((name) => name.toLowerCase())),
    forwardsClient: config.forwardedHeaders ?? ownUpstream,
    forwardsPayment: config.paymentHeaders ?? ownUpstream,
    rewrite: createRewrite(config),
  };
}

/** The providers of an `llm` service, each as the service sending to its own upstream. */
function llmProviders(service: Service): Map<string, Service> {
  const providers = new Map<string, Service>();
  for (const [name, provider] of Object.entries(service.config.llm?.providers ?? {})) {
    const config: ServiceConfig = {
      ...service.config,
      upstream: provider.upstream,
      ...(provider.headers === undefined ? { headers: {} } : { headers: provider.headers }),
      ...(provider.forwardedHeaders === undefined
        ? {}
        : { forwardedHeaders: provider.forwardedHeaders }),
      ...(provider.paymentHeaders === undefined ? {} : { paymentHeaders: provider.paymentHeaders }),
    };
    providers.set(name, { ...service, config, ...upstreamParts(config) });
  }
  return providers;
}

function compileService(
  config: ServiceConfig,
  index: number,
  paywall: Paywall,
  options: ServiceTableOptions,
): CompiledService {
  const at = `services[${index}] (${config.name})`;
  const route = <T>(build: () => T): T => {
    try {
      return build();
    } catch (error) {
      if (!isTollwayError(error)) throw error;
      throw new TollwayError('invalid_config', `${at}: ${error.message}`, { cause: error });
    }
  };
  const { llm } = config;
  const routing =
    llm === undefined
      ? undefined
      : route(() =>
          createLlmRouting(llm, {
            usdPerBtc: options.usdPerBtc,
            ...(options.onLlmUsage === undefined
              ? {}
              : { onUsage: (model, reading) => options.onLlmUsage?.(config.name, model, reading) }),
          }),
        );
  const compiled = !config.auth
    ? route(() => paywall.route({ service: config.name, free: true }))
    : route(() => {
        const rules = config.pricing;
        const price = config.price ?? '';
        const byRules = rules === undefined ? price : createPriceFunction(rules, price);
        const methods = config.grpc?.methods;
        return paywall.route({
          service: { name: config.name, tier: config.tier ?? 0 },
          price:
            routing !== undefined
              ? routing.price
              : config.mcp !== undefined
                ? createMcpPriceFunction(config.mcp, config.price)
                : methods === undefined
                  ? byRules
                  : createGrpcPriceFunction(methods, byRules),
          ...(routing === undefined ? {} : { meter: routing.meter }),
          readsBody:
            routing !== undefined ||
            config.mcp !== undefined ||
            (rules ?? []).some((rule) => rule.field !== undefined || rule.when !== undefined),
          description: config.description ?? config.name,
          ...(config.shadow === true ? { shadow: true } : {}),
          ...(config.capabilities === undefined ? {} : { capabilities: config.capabilities }),
          ...(config.requiresCapability === undefined
            ? {}
            : { requiresCapability: config.requiresCapability }),
          ...(config.validFor === undefined ? {} : { validFor: config.validFor }),
          ...(config.uses === undefined ? {} : { uses: config.uses }),
          ...(config.balance === undefined ? {} : { balance: config.balance }),
          ...(config.chargeBelow === undefined ? {} : { chargeBelow: config.chargeBelow }),
          ...(config.scope === undefined
            ? {}
            : {
                scope: {
                  ...(config.scope.paths === undefined ? {} : { paths: config.scope.paths }),
                  ...(config.scope.methods === undefined ? {} : { methods: config.scope.methods }),
                },
              }),
        });
      });
  const hosts = config.host === undefined ? undefined : createHostMatcher([config.host].flat());
  const service: CompiledService = {
    name: config.name,
    config,
    paywall,
    route: compiled,
    ...upstreamParts(config),
    matches: (host, path) =>
      (hosts === undefined || (host !== undefined && hosts(host))) && pathWithin(path, config.path),
  };
  if (routing === undefined) return service;
  return { ...service, llm: { routing, providers: llmProviders(service) } };
}

/** Options of {@link createServiceTable}. */
export interface ServiceTableOptions {
  /** `paywall.usdPerBtc`: converts the dollar prices of `llm` model tables. */
  usdPerBtc?: LlmRoutingOptions['usdPerBtc'];
  /** Told the usage of each metered LLM answer: the service, the model's label, the reading. */
  onLlmUsage?: (service: string, model: string, reading: UsageReading) => void;
}

/**
 * Compiles services in order. `paywallFor` gives the engine of each service (services with the same
 * engine settings share one). Throws `invalid_config` naming the service for options the
 * engine refuses.
 *
 * @example
 * ```ts
 * const table = createServiceTable(config.services, () => paywall);
 * const service = table.match(req.headers.host, '/weather/today');
 * ```
 */
export function createServiceTable(
  configs: readonly ServiceConfig[],
  paywallFor: (config: ServiceConfig) => Paywall,
  options: ServiceTableOptions = {},
): ServiceTable {
  const compiled = configs.map((config, index) =>
    compileService(config, index, paywallFor(config), options),
  );
  return {
    services: compiled,
    upstreams: compiled.flatMap((service) => [service, ...(service.llm?.providers.values() ?? [])]),
    match(host, path) {
      return compiled.find((service) => service.matches(host, path));
    },
  };
}
