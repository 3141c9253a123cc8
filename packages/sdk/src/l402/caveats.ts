/**
 * First-party caveats: `condition=value` text, the satisfiers that check them against a request,
 * and the order Tollway mints them in.
 *
 * Conditions understood here:
 *
 * - `services=<name>:<tier>[,…]`: the token grants these services (at these tiers).
 * - `<service>_capabilities=<a,b,…>`: for that service, only these capabilities.
 * - `<service>_valid_until=<unix seconds>`: for that service, valid while `now < value`.
 * - `tollway_paths=<prefix>[,…]`: the request path must start with one of these prefixes, on a
 *   segment boundary (`/v1` matches `/v1` and `/v1/x`, not `/v10`; `/v1/` matches only below it).
 * - `tollway_methods=<METHOD>[,…]`: the request method must be listed (case-insensitive).
 * - `tollway_uses=<n>`: at most `n` requests; reported for the engine to count, not enforced here.
 * - `tollway_balance_msat=<msat>`: a spending allowance; reported for the engine, not enforced here.
 * - `tollway_price_msat=<msat>` / `tollway_price_microusd=<micro-dollars>`: the price of the
 *   request the token was bought for, in the unit the route listed it; the engine refuses dearer
 *   requests. Reported for the engine, not enforced here.
 * - `tollway_bought_with=<protocol>`: the token was minted after a payment in another protocol
 *   (x402) bought it; its payment hash is not an invoice's. Informational.
 * - `preimage=<hex>`: appended by some clients (lnget, Aperture's gRPC client); not a restriction,
 *   always ignored.
 *
 * Every caveat must be satisfied, and a caveat that repeats an earlier condition may only narrow it
 * (a subset for lists, an earlier or equal time, a smaller or equal count); one that widens fails
 * verification. Unknown conditions are skipped, or rejected in strict mode.
 */
import { fail, ok, type Result, TollwayError } from '../errors.js';
import { hasDotSegment, isBelowPrefix } from '../internal/path.js';

/** A caveat split into its condition and value. */
export interface ParsedCaveat {
  condition: string;
  value: string;
}

/** What a request asks for, as the caveat satisfiers see it. */
export interface CaveatRequest {
  /** The service the request is for (matched against `services=`). */
  service: string;
  /** The capability the request exercises; when absent, `<service>_capabilities` is not checked. */
  capability?: string;
  /** The request path, already normalised and without the query; required by `tollway_paths`. */
  path?: string;
  /** The request method; required by `tollway_methods`. */
  method?: string;
  /** The current time in unix seconds. */
  now: number;
}

/**
 * Checks one family of caveat conditions (Aperture-style satisfier).
 *
 * @example
 * ```ts
 * const volume: CaveatSatisfier = {
 *   handles: (condition) => condition === 'loop_out_monthly_volume_sats',
 *   satisfies: (caveat) => (/^\d+$/.test(caveat.value) ? ok(true) : fail('invalid_caveat', 'bad volume')),
 *   narrows: (previous, next) => BigInt(next.value) <= BigInt(previous.value),
 * };
 * ```
 */
export interface CaveatSatisfier {
  /** True when this satisfier is responsible for caveats with this condition. */
  handles(condition: string): boolean;
  /** Checks one caveat against the request. */
  satisfies(caveat: ParsedCaveat, request: CaveatRequest): Result<true>;
  /**
   * True when `next`, a later caveat with the same condition as `previous`, grants no more than it.
   * Both values have already passed {@link CaveatSatisfier.satisfies}.
   */
  narrows(previous: ParsedCaveat, next: ParsedCaveat): boolean;
}

/** The condition names of Tollway's own scoping caveats. */
export const tollwayConditions = {
  paths: 'tollway_paths',
  methods: 'tollway_methods',
  uses: 'tollway_uses',
  balanceMsat: 'tollway_balance_msat',
  priceMsat: 'tollway_price_msat',
  priceMicroUsd: 'tollway_price_microusd',
  boughtWith: 'tollway_bought_with',
} as const;

/** A service granted by a token, with its tier. */
export interface ServiceGrant {
  name: string;
  tier: number;
}

/**
 * Splits `condition=value` on the first `=` (the value may contain more). Throws `invalid_caveat`
 * when there is no `=` or the condition is empty.
 *
 * @example
 * ```ts
 * parseCaveat('forecast_valid_until=1767225600'); // { condition: 'forecast_valid_until', value: '1767225600' }
 * ```
 */
export function parseCaveat(text: string): ParsedCaveat {
  const caveat = splitCaveat(text);
  if (caveat === undefined) {
    throw new TollwayError('invalid_caveat', 'a caveat must be condition=value');
  }
  return caveat;
}

function splitCaveat(text: string): ParsedCaveat | undefined {
  const index = text.indexOf('=');
  return index > 0 ? { condition: text.slice(0, index), value: text.slice(index + 1) } : undefined;
}

/** Formats a caveat as `condition=value`. Throws `invalid_caveat` for an empty condition or one with `=`. */
export function formatCaveat(caveat: ParsedCaveat): string {
  if (caveat.condition === '' || caveat.condition.includes('=')) {
    throw new TollwayError('invalid_caveat', 'a caveat condition must be non-empty without "="');
  }
  return `${caveat.condition}=${caveat.value}`;
}

const COUNT = /^\d{1,16}$/;
const NAME = /^[^,:=]+$/;
const LIST_ITEM = /^[^,]+$/;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseCount(value: string): number | undefined {
  if (!COUNT.test(value)) return undefined;
  const count = Number(value);
  return Number.isSafeInteger(count) ? count : undefined;
}

function parseMsat(value: string): bigint | undefined {
  return /^\d{1,30}$/.test(value) ? BigInt(value) : undefined;
}

/** A comma list; `''` is the empty list. Undefined when an item is empty or fails `item`. */
function parseList(value: string, item: RegExp): string[] | undefined {
  if (value === '') return [];
  const items = value.split(',');
  for (const entry of items) if (!item.test(entry)) return undefined;
  return items;
}

/**
 * A comma list whose items may be anything but empty: {@link parseList} with {@link LIST_ITEM},
 * without a regular expression per item.
 */
function parseItems(value: string): string[] | undefined {
  if (value === '') return [];
  const items = value.split(',');
  for (const entry of items) if (entry === '') return undefined;
  return items;
}

function parseServices(value: string): ServiceGrant[] | undefined {
  const grants: ServiceGrant[] = [];
  for (const entry of value.split(',')) {
    const colon = entry.lastIndexOf(':');
    const name = entry.slice(0, colon);
    const tier = parseCount(entry.slice(colon + 1));
    if (colon < 0 || !NAME.test(name) || tier === undefined) return undefined;
    if (grants.some((grant) => grant.name === name)) return undefined;
    grants.push({ name, tier });
  }
  return grants;
}

/**
 * Wraps a parser so that parsing the same caveat again returns the first result (one entry, keyed
 * by the caveat object and its value). `verifyCaveats` parses the latest caveat of each condition
 * twice, to check it and then for the scope; this spares the second parse of the costly lists.
 */
function parseOnce<T>(parse: (value: string) => T): (caveat: ParsedCaveat) => T {
  let lastCaveat: ParsedCaveat | undefined;
  let lastValue = '';
  let lastResult = undefined as T;
  return (caveat) => {
    if (caveat !== lastCaveat || caveat.value !== lastValue) {
      lastResult = parse(caveat.value);
      lastCaveat = caveat;
      lastValue = caveat.value;
    }
    return lastResult;
  };
}

const servicesOf = parseOnce(parseServices);
const untilOf = parseOnce(parseCount);
const capabilitiesOf = parseOnce(parseItems);

function parsePaths(value: string): string[] | undefined {
  const paths = parseItems(value);
  if (paths === undefined) return undefined;
  const valid = paths.every(
    (path) => path.startsWith('/') && !/[?#]/.test(path) && !hasDotSegment(path),
  );
  return valid ? paths : undefined;
}

function parseMethods(value: string): string[] | undefined {
  return parseList(value, METHOD)?.map((method) => method.toUpperCase());
}

function isSubset(next: readonly string[], previous: readonly string[]): boolean {
  return next.every((entry) => previous.includes(entry));
}

/** The answer of a satisfied check: one shared object, as nothing reads more than `ok` from it. */
const SATISFIED: Result<true> = ok(true);

function malformed(caveat: ParsedCaveat): Result<true> {
  return fail('invalid_caveat', `caveat ${caveat.condition} has a malformed value`);
}

/** True when `condition` is some service's `<service><suffix>`. */
function hasServiceSuffix(condition: string, suffix: string): boolean {
  return condition.length > suffix.length && condition.endsWith(suffix);
}

/** True when `condition` is `<service><suffix>` for this `service` (no string built). */
function isServiceCondition(condition: string, service: string, suffix: string): boolean {
  return (
    condition.length === service.length + suffix.length &&
    condition.startsWith(service) &&
    condition.endsWith(suffix)
  );
}

/** `services=<name>:<tier>[,…]`: the requested service must be listed; later lists are subsets, tiers not raised. */
export const servicesSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === 'services',
  satisfies(caveat, request) {
    const grants = servicesOf(caveat);
    if (grants === undefined) return malformed(caveat);
    if (!grants.some((grant) => grant.name === request.service)) {
      return fail('wrong_service', `the token does not grant service ${request.service}`);
    }
    return SATISFIED;
  },
  narrows(previous, next) {
    const before = parseServices(previous.value);
    const after = parseServices(next.value);
    if (before === undefined || after === undefined) return false;
    return after.every((grant) =>
      before.some((earlier) => earlier.name === grant.name && grant.tier <= earlier.tier),
    );
  },
};

/** `<service>_capabilities=<a,b,…>`: the requested capability must be listed; later lists are subsets. */
export const capabilitiesSatisfier: CaveatSatisfier = {
  handles: (condition) => hasServiceSuffix(condition, '_capabilities'),
  satisfies(caveat, request) {
    const capabilities = capabilitiesOf(caveat);
    if (capabilities === undefined) return malformed(caveat);
    if (!isServiceCondition(caveat.condition, request.service, '_capabilities')) return SATISFIED;
    if (request.capability !== undefined && !capabilities.includes(request.capability)) {
      return fail('caveat_not_satisfied', `capability ${request.capability} is not granted`);
    }
    return SATISFIED;
  },
  narrows(previous, next) {
    const before = parseItems(previous.value);
    const after = parseItems(next.value);
    return before !== undefined && after !== undefined && isSubset(after, before);
  },
};

/** `<service>_valid_until=<unix seconds>`: valid while `now < value`; later ones earlier or equal. */
export const validUntilSatisfier: CaveatSatisfier = {
  handles: (condition) => hasServiceSuffix(condition, '_valid_until'),
  satisfies(caveat, request) {
    const until = untilOf(caveat);
    if (until === undefined) return malformed(caveat);
    if (!isServiceCondition(caveat.condition, request.service, '_valid_until')) return SATISFIED;
    if (!(request.now < until)) return fail('token_expired', `the token expired at ${until}`);
    return SATISFIED;
  },
  narrows(previous, next) {
    const before = parseCount(previous.value);
    const after = parseCount(next.value);
    return before !== undefined && after !== undefined && after <= before;
  },
};

/** `tollway_paths=<prefix>[,…]`: the path must lie under a listed prefix; later prefixes lie under earlier ones. */
export const pathsSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === tollwayConditions.paths,
  satisfies(caveat, request) {
    const prefixes = parsePaths(caveat.value);
    if (prefixes === undefined) return malformed(caveat);
    const { path } = request;
    if (path === undefined || hasDotSegment(path)) {
      return fail('caveat_not_satisfied', 'the token is restricted to paths; no usable path given');
    }
    if (!prefixes.some((prefix) => isBelowPrefix(path, prefix))) {
      return fail('caveat_not_satisfied', `path ${path} is not granted`);
    }
    return SATISFIED;
  },
  narrows(previous, next) {
    const before = parsePaths(previous.value);
    const after = parsePaths(next.value);
    if (before === undefined || after === undefined) return false;
    return after.every((prefix) => before.some((earlier) => isBelowPrefix(prefix, earlier)));
  },
};

/** `tollway_methods=<METHOD>[,…]`: the method must be listed (any case); later lists are subsets. */
export const methodsSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === tollwayConditions.methods,
  satisfies(caveat, request) {
    const methods = parseMethods(caveat.value);
    if (methods === undefined) return malformed(caveat);
    if (request.method === undefined || !methods.includes(request.method.toUpperCase())) {
      return fail('caveat_not_satisfied', `method ${request.method ?? '(none)'} is not granted`);
    }
    return SATISFIED;
  },
  narrows(previous, next) {
    const before = parseMethods(previous.value);
    const after = parseMethods(next.value);
    return before !== undefined && after !== undefined && isSubset(after, before);
  },
};

/** `tollway_uses=<n>`: a use limit for the engine to count; later limits smaller or equal. */
export const usesSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === tollwayConditions.uses,
  satisfies: (caveat) => (parseCount(caveat.value) === undefined ? malformed(caveat) : SATISFIED),
  narrows(previous, next) {
    const before = parseCount(previous.value);
    const after = parseCount(next.value);
    return before !== undefined && after !== undefined && after <= before;
  },
};

/** `tollway_balance_msat=<msat>`: an allowance for the engine to debit; later ones smaller or equal. */
export const balanceSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === tollwayConditions.balanceMsat,
  satisfies: (caveat) => (parseMsat(caveat.value) === undefined ? malformed(caveat) : SATISFIED),
  narrows(previous, next) {
    const before = parseMsat(previous.value);
    const after = parseMsat(next.value);
    return before !== undefined && after !== undefined && after <= before;
  },
};

/**
 * `tollway_price_msat=<msat>` and `tollway_price_microusd=<micro-dollars>`: the price a token paid
 * per request, for the engine to compare with each request's price; later ones smaller or equal.
 */
export const priceSatisfier: CaveatSatisfier = {
  handles: (condition) =>
    condition === tollwayConditions.priceMsat || condition === tollwayConditions.priceMicroUsd,
  satisfies: (caveat) => (parseMsat(caveat.value) === undefined ? malformed(caveat) : SATISFIED),
  narrows(previous, next) {
    const before = parseMsat(previous.value);
    const after = parseMsat(next.value);
    return before !== undefined && after !== undefined && after <= before;
  },
};

/** `tollway_bought_with=<protocol>`: informational; later ones must repeat it. */
export const boughtWithSatisfier: CaveatSatisfier = {
  handles: (condition) => condition === tollwayConditions.boughtWith,
  satisfies: (caveat) => (NAME.test(caveat.value) ? SATISFIED : malformed(caveat)),
  narrows: (previous, next) => previous.value === next.value,
};

/** The satisfiers {@link verifyCaveats} always applies, before any extra ones. */
export const defaultSatisfiers: readonly CaveatSatisfier[] = [
  servicesSatisfier,
  capabilitiesSatisfier,
  validUntilSatisfier,
  pathsSatisfier,
  methodsSatisfier,
  usesSatisfier,
  balanceSatisfier,
  priceSatisfier,
  boughtWithSatisfier,
];

/** Options of {@link verifyCaveats}. */
export interface VerifyCaveatsOptions {
  /** Reject caveats no satisfier handles (`unknown_caveat`) and malformed ones (`invalid_caveat`). */
  strict?: boolean;
  /** Satisfiers for further conditions, consulted after {@link defaultSatisfiers}. */
  satisfiers?: readonly CaveatSatisfier[];
}

/** What a token's caveats grant, as far as the engine needs to enforce or report it. */
export interface CaveatScope {
  /** The services of the last `services` caveat (the narrowest); absent when unrestricted. */
  services?: ServiceGrant[];
  /** The requested service's granted capabilities; absent when unrestricted. */
  capabilities?: string[];
  /** The requested service's expiry in unix seconds; absent when it never expires. */
  validUntil?: number;
  /** The tightest use limit; the engine enforces it with a counter keyed by token id. */
  uses?: number;
  /** The tightest allowance in msat; the engine enforces it. */
  balanceMsat?: bigint;
  /** The price paid per request in msat, when the route listed it in msat; the engine enforces it. */
  priceMsat?: bigint;
  /** The price paid per request in micro-dollars, when the route listed it in dollars. */
  priceMicroUsd?: bigint;
  /** The protocol whose payment bought the token, when not a Lightning invoice (`x402`). */
  boughtWith?: string;
  /** The granted path prefixes. */
  paths?: string[];
  /** The granted methods, upper case. */
  methods?: string[];
}

/**
 * Checks first-party caveats against a request and reports the scope they grant. Every caveat must
 * be satisfied and repeated conditions may only narrow. Caveats only ever restrict: a token without
 * a `services` caveat (Tollway and Aperture always mint one) is not limited to any service.
 *
 * Failure codes: `wrong_service`, `token_expired`, `caveat_not_satisfied`, `invalid_caveat`
 * (a known condition with a malformed value; in strict mode also text that is not
 * `condition=value`), `unknown_caveat` (strict mode only).
 *
 * @example
 * ```ts
 * const result = verifyCaveats(firstPartyCaveats(macaroon), { service: 'forecast', now: Date.now() / 1000 });
 * if (!result.ok) console.log(result.code);
 * ```
 */
export function verifyCaveats(
  caveats: readonly string[],
  request: CaveatRequest,
  options: VerifyCaveatsOptions = {},
): Result<CaveatScope> {
  const satisfiers =
    options.satisfiers === undefined
      ? defaultSatisfiers
      : [...defaultSatisfiers, ...options.satisfiers];
  // The latest caveat of each condition, in a pair of arrays: a token has a handful of caveats,
  // and a scan of so few beats a Map's hashing (this runs on every token check not cached).
  const conditions: string[] = [];
  const latest: ParsedCaveat[] = [];
  for (const text of caveats) {
    const caveat = splitCaveat(text);
    if (caveat === undefined) {
      if (options.strict === true) return fail('invalid_caveat', 'a caveat is not condition=value');
      continue;
    }
    if (caveat.condition === 'preimage') continue;
    let satisfier: CaveatSatisfier | undefined;
    for (const candidate of satisfiers) {
      if (candidate.handles(caveat.condition)) {
        satisfier = candidate;
        break;
      }
    }
    if (satisfier === undefined) {
      if (options.strict === true) {
        return fail('unknown_caveat', `no satisfier for caveat ${caveat.condition}`);
      }
      continue;
    }
    const checked = satisfier.satisfies(caveat, request);
    if (!checked.ok) return checked;
    const at = conditions.indexOf(caveat.condition);
    if (at < 0) {
      conditions.push(caveat.condition);
      latest.push(caveat);
    } else {
      if (!satisfier.narrows(latest[at]!, caveat)) {
        return fail('caveat_not_satisfied', `caveat ${caveat.condition} widens an earlier one`);
      }
      latest[at] = caveat;
    }
  }
  // The scope comes from the latest caveat of each condition, one pass over those kept.
  const scope: CaveatScope = {};
  for (let i = 0; i < latest.length; i++) {
    const condition = conditions[i]!;
    const caveat = latest[i]!;
    const { value } = caveat;
    if (condition === 'services') scope.services = servicesOf(caveat) ?? [];
    else if (isServiceCondition(condition, request.service, '_capabilities'))
      scope.capabilities = capabilitiesOf(caveat) ?? [];
    else if (isServiceCondition(condition, request.service, '_valid_until'))
      scope.validUntil = untilOf(caveat) ?? 0;
    else if (condition === tollwayConditions.uses) scope.uses = parseCount(value) ?? 0;
    else if (condition === tollwayConditions.balanceMsat)
      scope.balanceMsat = parseMsat(value) ?? 0n;
    else if (condition === tollwayConditions.priceMsat) scope.priceMsat = parseMsat(value) ?? 0n;
    else if (condition === tollwayConditions.priceMicroUsd)
      scope.priceMicroUsd = parseMsat(value) ?? 0n;
    else if (condition === tollwayConditions.boughtWith) scope.boughtWith = value;
    else if (condition === tollwayConditions.paths) scope.paths = parsePaths(value) ?? [];
    else if (condition === tollwayConditions.methods) scope.methods = parseMethods(value) ?? [];
  }
  return ok(scope);
}

/** One service to mint caveats for; see {@link createServiceCaveats}. */
export interface ServiceCaveatsParams {
  name: string;
  tier: number;
  /** Emits `<name>_capabilities=<list>` (an empty list grants no capability). */
  capabilities?: readonly string[];
  /** Further `key=value` caveats, emitted sorted by key (Tollway's `tollway_*` ones go here). */
  constraints?: Readonly<Record<string, string>>;
  /** Emits `<name>_valid_until=<unix seconds>`. */
  validUntil?: number;
}

/**
 * The caveats to mint for these services, in Aperture's order: `services=…`, then per service
 * `<name>_capabilities`, its constraints sorted by key, and `<name>_valid_until`. Throws
 * `invalid_caveat` for a value that could not be read back.
 *
 * @example
 * ```ts
 * createServiceCaveats([{ name: 'forecast', tier: 0, capabilities: ['daily'], validUntil: 1767225600 }]);
 * // ['services=forecast:0', 'forecast_capabilities=daily', 'forecast_valid_until=1767225600']
 * ```
 */
export function createServiceCaveats(services: readonly ServiceCaveatsParams[]): string[] {
  const invalid = (message: string) => new TollwayError('invalid_caveat', message);
  if (services.length === 0) throw invalid('at least one service is required');
  for (const service of services) {
    if (!NAME.test(service.name)) throw invalid(`invalid service name ${service.name}`);
    if (!Number.isSafeInteger(service.tier) || service.tier < 0) throw invalid('invalid tier');
  }
  const caveats = [`services=${services.map((s) => `${s.name}:${s.tier}`).join(',')}`];
  for (const service of services) {
    if (service.capabilities !== undefined) {
      if (!service.capabilities.every((capability) => LIST_ITEM.test(capability))) {
        throw invalid('a capability must be non-empty without ","');
      }
      caveats.push(`${service.name}_capabilities=${service.capabilities.join(',')}`);
    }
    const constraints = Object.entries(service.constraints ?? {}).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    for (const [condition, value] of constraints) caveats.push(formatCaveat({ condition, value }));
    if (service.validUntil !== undefined) {
      if (!Number.isSafeInteger(service.validUntil) || service.validUntil < 0) {
        throw invalid('validUntil must be whole unix seconds');
      }
      caveats.push(`${service.name}_valid_until=${service.validUntil}`);
    }
  }
  return caveats;
}
