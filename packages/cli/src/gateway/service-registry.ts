/**
 * The services a gateway serves, and how they change: the config file's services with the admin
 * overlay applied, compiled into engines and a service table (`engines.ts`). An admin change is
 * written to the store on top of the newest overlay (again when another instance wrote in between)
 * and served; every instance follows the store's overlay within `FOLLOW_MS`; a reload serves a new
 * config file. Changes run one at a time, so two never build on the same state.
 */
import { TollwayError } from '@tollway/sdk';
import type { Paywall, Store } from '@tollway/sdk/server';
import type { ServiceEntry } from './admin.js';
import type { Env, GatewayConfig, ServiceConfig } from './config.js';
import { buildState, type EngineSettings, type State } from './engines.js';
import type { Http2Upstreams } from './http2-upstreams.js';
import type { GatewayLogger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';
import {
  applyOverlay,
  type Overlay,
  overlayFile,
  readOverlayFile,
  readSharedOverlay,
  type SharedOverlay,
  writeSharedOverlay,
} from './overlay.js';
import type { Upstreams } from './proxy.js';

/** How often the services overlay in the store is checked for another instance's changes, ms. */
const FOLLOW_MS = 250;
/** A store that cannot be read is reported at most this often, ms. */
const FOLLOW_WARN_MS = 60_000;
/** Settings a reload cannot change: the listeners, store, backend and secrets stay as started. */
const RESTART_ONLY = [
  'listen',
  'store',
  'lightning',
  'secrets',
  'dataDir',
  'admin',
  'metrics',
  'x402',
  'connections',
  'tls',
  'h2c',
] as const;

/** Options of {@link openServiceRegistry}. */
export interface ServiceRegistryOptions {
  config: GatewayConfig;
  /** Where `${ENV}` references of admin-created services are read. */
  env: Env;
  /** Folder that relative paths of admin-created services resolve against. */
  baseDir: string;
  store: Store;
  upstreams: Upstreams;
  http2Upstreams: Http2Upstreams;
  metrics: GatewayMetrics;
  logger: GatewayLogger;
  /** Makes the engine of a set of paywall settings. */
  createEngine: (settings: EngineSettings) => Paywall;
}

/** The services in force and the ways to change them; see {@link openServiceRegistry}. */
export interface ServiceRegistry {
  /** What requests are served with now. */
  readonly state: State;
  /** The services in force, in match order, header values redacted. */
  listServices(): ServiceEntry[];
  /** Adds or replaces a service through the admin API; the entry as it is served. */
  putService(input: unknown, name: string | undefined): Promise<ServiceEntry>;
  /** Deletes a service through the admin API; false when there is none of that name. */
  deleteService(name: string): Promise<boolean>;
  /** Serves a new config file's services and paywall settings. */
  reload(config: GatewayConfig): Promise<void>;
  /** Stops following the store and closes the engines. */
  close(): Promise<void>;
}

/** Header values shown as `<redacted>`: they may hold secrets (an API key from the environment). */
function redactHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, '<redacted>']));
}

/** A service as the admin API shows it: header values redacted. */
function redact(service: ServiceConfig): ServiceConfig {
  const { headers, llm } = service;
  return {
    ...service,
    ...(headers === undefined ? {} : { headers: redactHeaders(headers) }),
    ...(llm?.providers === undefined
      ? {}
      : {
          llm: {
            ...llm,
            providers: Object.fromEntries(
              Object.entries(llm.providers).map(([name, provider]) => [
                name,
                provider.headers === undefined
                  ? provider
                  : { ...provider, headers: redactHeaders(provider.headers) },
              ]),
            ),
          },
        }),
  };
}

/** A service sent to the admin API, checked for a name that matches the URL's; name and entry. */
function serviceInput(
  input: unknown,
  name: string | undefined,
): { name: string; written: Record<string, unknown> } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TollwayError('invalid_config', 'a service is a JSON object');
  }
  const written = { ...(input as Record<string, unknown>) };
  const serviceName = name ?? written.name;
  if (
    typeof serviceName !== 'string' ||
    (written.name !== undefined && written.name !== serviceName)
  ) {
    throw new TollwayError('invalid_config', 'name: must be given, and match the URL');
  }
  delete written.name;
  return { name: serviceName, written };
}

/** The overlay with `name` deleted, or undefined when it is absent already. */
function withoutService(current: Overlay, name: string, inConfig: boolean): Overlay | undefined {
  const absent = current.has(name) ? current.get(name) === null : !inConfig;
  if (absent) return undefined;
  const next = new Map(current);
  if (inConfig) next.set(name, null);
  else next.delete(name);
  return next;
}

/**
 * Compiles the config's services with the store's overlay (importing a legacy overlay file at the
 * first start), initialises their engines and starts following the store.
 */
export async function openServiceRegistry(
  options: ServiceRegistryOptions,
): Promise<ServiceRegistry> {
  const { store, upstreams, http2Upstreams, metrics, logger, env, baseDir } = options;
  const stored = await readSharedOverlay(store);
  let overlay: Overlay = stored?.overlay ?? (await readOverlayFile(overlayFile(options.config)));
  let revision = stored?.revision ?? 0;

  function build(config: GatewayConfig, nextOverlay: Overlay, previous: State | undefined): State {
    const services = applyOverlay(config.services, nextOverlay, {
      env,
      allowedEnv: config.admin.env,
      baseDir,
    });
    return buildState(
      config,
      services,
      previous?.engines ?? new Map(),
      options.createEngine,
      metrics,
    );
  }

  let state = build(options.config, overlay, undefined);
  if (stored === undefined && overlay.size > 0) {
    // An overlay file of an earlier version: the store holds it from now on. When another
    // instance imported first, following the store picks its overlay up.
    revision = (await writeSharedOverlay(store, overlay, 0)) ?? 0;
    logger.info(
      { file: overlayFile(options.config) },
      'services overlay file imported into the store',
    );
  }
  for (const upstream of state.table.upstreams) upstreams.pool(upstream);
  await Promise.all([...state.engines.values()].map((engine) => engine.init()));

  /** Swaps in a new state: pools first (a bad CA file fails here), then engines. */
  async function commit(next: State): Promise<void> {
    for (const upstream of next.table.upstreams) upstreams.pool(upstream);
    await Promise.all([...next.engines.values()].map((engine) => engine.init()));
    const previous = state;
    state = next;
    const kept = new Set(next.engines.values());
    await Promise.all(
      [...previous.engines.values()]
        .filter((engine) => !kept.has(engine))
        .map((engine) => engine.close()),
    );
    await upstreams.retain(next.table.upstreams);
    http2Upstreams.retain(next.table.services);
  }

  let changing: Promise<unknown> = Promise.resolve();
  function serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = changing.then(work, work);
    changing = run.catch(() => {});
    return run;
  }

  /** Serves the services of an overlay read from the store. */
  async function adopt(latest: SharedOverlay): Promise<void> {
    if (latest.revision === revision) return;
    await commit(build(state.config, latest.overlay, state));
    overlay = latest.overlay;
    revision = latest.revision;
  }

  /**
   * Applies an admin change on top of the newest overlay in the store, again when another
   * instance wrote in between, and serves it. False when `change` finds nothing to change.
   */
  async function changeOverlay(
    change: (current: Overlay) => Overlay | undefined,
  ): Promise<boolean> {
    for (;;) {
      const latest = (await readSharedOverlay(store)) ?? { overlay, revision };
      const next = change(latest.overlay);
      if (next === undefined) {
        await adopt(latest);
        return false;
      }
      const built = build(state.config, next, state);
      const written = await writeSharedOverlay(store, next, latest.revision);
      if (written === undefined) continue;
      overlay = next;
      revision = written;
      await commit(built);
      return true;
    }
  }

  const follower = createFollower({ store, logger, current: () => revision, adopt });
  const timer = setInterval(() => void serialized(follower), FOLLOW_MS);
  timer.unref();

  function listServices(): ServiceEntry[] {
    return state.table.services.map((service) => ({
      name: service.name,
      source: overlay.has(service.name) ? 'admin' : 'config',
      config: redact(service.config),
    }));
  }

  return {
    get state() {
      return state;
    },
    listServices,
    putService: (input, name) =>
      serialized(async () => {
        const { name: serviceName, written } = serviceInput(input, name);
        await changeOverlay((current) => new Map([...current, [serviceName, written]]));
        const entry = listServices().find((service) => service.name === serviceName);
        if (entry === undefined)
          throw new TollwayError('not_found', `no service named "${serviceName}"`);
        logger.info({ service: serviceName }, 'service saved through the admin API');
        return entry;
      }),
    deleteService: (name) =>
      serialized(async () => {
        const inConfig = state.config.services.some((service) => service.name === name);
        const deleted = await changeOverlay((current) => withoutService(current, name, inConfig));
        if (deleted) logger.info({ service: name }, 'service deleted through the admin API');
        return deleted;
      }),
    async reload(config) {
      for (const field of RESTART_ONLY) {
        if (JSON.stringify(config[field]) !== JSON.stringify(state.config[field])) {
          logger.warn({ field }, 'this setting changes only on restart');
        }
      }
      await serialized(() => commit(build(config, overlay, state)));
      logger.info({ services: state.table.services.length }, 'config reloaded');
    },
    async close() {
      clearInterval(timer);
      await Promise.all([...state.engines.values()].map((engine) => engine.close()));
    },
  };
}

/** What following the store's overlay needs of the registry. */
interface FollowerParts {
  store: Store;
  logger: GatewayLogger;
  /** The revision served now. */
  current: () => number;
  adopt: (latest: SharedOverlay) => Promise<void>;
}

/**
 * One look at the store for what other instances changed through their admin API: adopted when
 * newer; a store that cannot be read, or an overlay that does not apply here, is logged (the first
 * at most every `FOLLOW_WARN_MS`, the second once per revision).
 */
function createFollower({ store, logger, current, adopt }: FollowerParts): () => Promise<void> {
  let refusedRevision = 0;
  let warnedAt = Number.NEGATIVE_INFINITY;
  return async () => {
    let latest: SharedOverlay | undefined;
    try {
      latest = await readSharedOverlay(store);
    } catch (error) {
      if (Date.now() - warnedAt < FOLLOW_WARN_MS) return;
      warnedAt = Date.now();
      logger.warn({ err: error }, 'services changed on other instances cannot be read now');
      return;
    }
    if (latest === undefined || latest.revision === current()) return;
    try {
      await adopt(latest);
      logger.info({ revision: current() }, 'services changed through another instance');
    } catch (error) {
      if (refusedRevision === latest.revision) return;
      refusedRevision = latest.revision;
      logger.error({ err: error }, 'services changed through another instance do not apply here');
    }
  };
}
