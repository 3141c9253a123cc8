/**
 * `createGateway`: the paid API gateway behind `tollway serve`. One `node:http` listener takes every
 * request, matches a service by host and path, asks that service's paywall engine, and either
 * answers (a 402 with offers, a 401, a 429, …) or streams the request to the upstream and back.
 * `/_tollway/*` is the admin surface (optionally on its own listener), `/_tollway/metrics` the
 * Prometheus endpoint (optionally on its own listener). Guide: docs/guides/gateway.md.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { fixedRate, isTollwayError, TollwayError } from '@tollway/sdk';
import { connectLightning, type LightningBackend } from '@tollway/sdk/lightning';
import type { UsageReading } from '@tollway/sdk/llm';
import { createPaywallRequest, writePaywallResponse } from '@tollway/sdk/node';
import {
  createPaywall,
  createX402Offer,
  type OfferKind,
  type Paywall,
  type PaywallOptions,
  type Problem,
  type Store,
} from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import {
  createFacilitatorClient,
  createSelfHostedFacilitator,
  type X402Network,
} from '@tollway/sdk/x402';
import pino from 'pino';
import { version } from '../version.js';
import { type AdminContext, createAdminHandler, type ServiceEntry } from './admin.js';
import type { Env, GatewayConfig, ListenConfig, ServiceConfig, X402Config } from './config.js';
import { dashboardHandler } from './dashboard/index.js';
import { discoveryDocument, serveDiscovery } from './discovery.js';
import { serveQuote } from './discovery-quote.js';
import { forwardGrpc, grpcStreamOf } from './grpc.js';
import { answerGrpc, sendGrpcProblem } from './grpc-status.js';
import { writeSocketAnswer, writeSocketProblem } from './http-server.js';
import { createHttp2Upstreams } from './http2-upstreams.js';
import { createListener, type Listener, type ListenerTls } from './listener.js';
import { planLlmForward } from './llm-forward.js';
import { serveToolCall } from './mcp-call.js';
import { readToolCall } from './mcp-x402.js';
import { createGatewayMetrics, type GatewayMetrics, observeSettlements } from './metrics.js';
import {
  applyOverlay,
  type Overlay,
  readOverlayFile,
  readSharedOverlay,
  type SharedOverlay,
  writeSharedOverlay,
} from './overlay.js';
import { sendProblem } from './problem.js';
import { createUpstreams, forward, type Upstreams } from './proxy.js';
import { readFraming } from './request-framing.js';
import { readRequestTarget } from './request-target.js';
import { loadSecrets } from './secrets.js';
import { createServiceTable, type Service, type ServiceTable } from './services.js';
import { createWebSocketProxy } from './websocket.js';

/** Where the gateway logs; a pino logger fits. */
export interface GatewayLogger {
  info(context: Record<string, unknown>, message: string): void;
  warn(context: Record<string, unknown>, message: string): void;
  error(context: Record<string, unknown>, message: string): void;
}

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** The checked config (`loadGatewayConfig` or `parseGatewayConfig`). */
  config: GatewayConfig;
  /** Folder that relative paths of admin-created services resolve against. Default: the cwd. */
  baseDir?: string;
  /**
   * Where `${ENV}` references of admin-created services are read (only the names in the config's
   * `admin.env`). Default `process.env`.
   */
  env?: Env;
  /** A backend to use instead of `config.lightning` (the gateway does not close it). */
  lightning?: LightningBackend;
  /** A store to use instead of `config.store` (the gateway does not close it). */
  store?: Store;
  /** Default: pino on stderr, level `$TOLLWAY_LOG_LEVEL` or `info`. */
  logger?: GatewayLogger;
}

/** A running gateway; see {@link createGateway}. */
export interface Gateway {
  /** The public listener, e.g. `http://127.0.0.1:8402`. */
  readonly url: string;
  /** Base URL of the admin API: `<url>/_tollway` or `<admin listener>/_tollway`. */
  readonly adminUrl: string;
  /** Base URL of the metrics endpoint (`<…>/_tollway/metrics`). */
  readonly metricsUrl: string | undefined;
  /** The engine of services without their own freebies or rate limits (`revoke` works for all). */
  readonly paywall: Paywall;
  /** The store every engine shares. */
  readonly store: Store;
  /** The services in force, in match order. Injected header values are redacted. */
  services(): ServiceEntry[];
  /**
   * Applies a new config's services and paywall settings without a restart (listeners, store,
   * Lightning backend and secrets need one). Throws `invalid_config` and keeps the old state.
   */
  reload(config: GatewayConfig): Promise<void>;
  /**
   * Stops accepting requests, lets in-flight ones finish until `shutdownTimeout`, cuts the rest,
   * then closes the engines, upstream pools, store and Lightning backend.
   */
  close(): Promise<void>;
}

/** What requests are served with; swapped whole on reload. */
interface State {
  config: GatewayConfig;
  table: ServiceTable;
  engines: Map<string, Paywall>;
  defaultEngine: Paywall;
}

const ADMIN_PREFIX = '/_tollway';
/** How often the services overlay in the store is checked for another instance's changes, ms. */
const FOLLOW_MS = 250;
/** A store that cannot be read is reported at most this often, ms. */
const FOLLOW_WARN_MS = 60_000;
const DRAIN_POLL_MS = 100;

/** The default pino logger on stderr. */
function createDefaultLogger(): GatewayLogger {
  return pino(
    { name: 'tollway', level: process.env.TOLLWAY_LOG_LEVEL ?? 'info' },
    pino.destination(2),
  );
}

/** What one engine is configured with; services with equal settings share an engine. */
type EngineSettings = Omit<GatewayConfig['paywall'], 'trustProxy' | 'bodyLimit'> & {
  allowlist?: readonly string[];
  /** Whether the engine adds the x402 offer (the config has an `x402` block, the service no opt-out). */
  x402: boolean;
};

/** The engine settings of a service: its own freebies, rate limits and allowlist, or the gateway's. */
function engineSettings(config: GatewayConfig, service: ServiceConfig | undefined): EngineSettings {
  const { trustProxy: _trustProxy, bodyLimit: _bodyLimit, ...paywall } = config.paywall;
  const freebies = service?.freebies ?? paywall.freebies;
  const rateLimits = service?.rateLimits ?? paywall.rateLimits;
  return {
    ...paywall,
    ...(freebies === undefined ? {} : { freebies }),
    ...(rateLimits === undefined ? {} : { rateLimits }),
    ...(service?.allowlist === undefined ? {} : { allowlist: service.allowlist }),
    x402: config.x402 !== undefined && service?.x402 !== false,
  };
}

/** The x402 offer of the config's `x402` block; the self-hosted facilitator asks its chain id. */
async function createX402OfferFrom(config: X402Config, bazaar: boolean): Promise<OfferKind> {
  try {
    const facilitator =
      'url' in config.facilitator
        ? createFacilitatorClient({ url: config.facilitator.url })
        : await createSelfHostedFacilitator(config.facilitator);
    return createX402Offer({
      facilitator,
      payTo: config.payTo as `0x${string}`,
      network: config.network as X402Network,
      asset: { ...config.asset, address: config.asset.address as `0x${string}` },
      ...(config.settle === undefined ? {} : { settle: config.settle }),
      bazaar,
    });
  } catch (error) {
    if (!isTollwayError(error)) throw error;
    throw new TollwayError('invalid_config', `x402: ${error.message}`, { cause: error });
  }
}

function createEngine(
  settings: EngineSettings,
  shared: {
    lightning: LightningBackend;
    store: Store;
    secrets: readonly string[];
    logger: GatewayLogger;
    x402?: OfferKind;
  },
): Paywall {
  const options: PaywallOptions = {
    lightning: shared.lightning,
    store: shared.store,
    secrets: shared.secrets,
    logger: shared.logger,
    // Engines of equal settings count freebies and rate limits together, on every instance.
    sharedLimits: { scope: limitScope(settings) },
    ...(settings.realm === undefined ? {} : { realm: settings.realm }),
    ...(settings.protocols === undefined ? {} : { protocols: settings.protocols }),
    ...(settings.l402Form === undefined ? {} : { l402Form: settings.l402Form }),
    ...(settings.compat === undefined ? {} : { compat: settings.compat }),
    ...(settings.strict === undefined ? {} : { strict: settings.strict }),
    ...(settings.challengeExpiry === undefined
      ? {}
      : { challengeExpiry: settings.challengeExpiry }),
    ...(settings.reservationTtl === undefined ? {} : { reservationTtl: settings.reservationTtl }),
    ...(settings.sessions === undefined ? {} : { sessions: settings.sessions }),
    ...(settings.usdPerBtc === undefined ? {} : { rates: fixedRate(settings.usdPerBtc) }),
    ...(settings.cors === undefined ? {} : { cors: settings.cors }),
    ...(settings.freebies === undefined ? {} : { freebies: settings.freebies }),
    ...(settings.rateLimits === undefined ? {} : { rateLimits: settings.rateLimits }),
    ...(settings.x402 && shared.x402 !== undefined ? { offers: [shared.x402] } : {}),
    ...(settings.allowlist === undefined
      ? {}
      : {
          allowlist: settings.allowlist.map((entry) =>
            entry.startsWith('~') ? new RegExp(entry.slice(1)) : entry,
          ),
        }),
  };
  try {
    return createPaywall(options);
  } catch (error) {
    if (!isTollwayError(error)) throw error;
    throw new TollwayError('invalid_config', `paywall: ${error.message}`, { cause: error });
  }
}

/** The name an engine's shared limit counters go by: its settings, hashed to be short. */
function limitScope(settings: EngineSettings): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('base64url').slice(0, 16);
}

/**
 * Builds the engines and the service table of `services` under `config`, reusing `previous`
 * engines whose settings did not change.
 */
function buildState(
  config: GatewayConfig,
  services: readonly ServiceConfig[],
  previous: ReadonlyMap<string, Paywall>,
  create: (settings: EngineSettings) => Paywall,
  metrics?: GatewayMetrics,
): State {
  const engines = new Map<string, Paywall>();
  const engineFor = (service: ServiceConfig | undefined): Paywall => {
    const settings = engineSettings(config, service);
    const key = JSON.stringify(settings);
    let engine = engines.get(key) ?? previous.get(key);
    if (engine === undefined) engine = create(settings);
    engines.set(key, engine);
    return engine;
  };
  const defaultEngine = engineFor(undefined);
  for (const service of services) {
    if (service.mcp?.paymentRequired === 'tool-result' && !engineSettings(config, service).x402) {
      throw new TollwayError(
        'invalid_config',
        `service ${service.name}: mcp.paymentRequired: tool-result needs the top-level \`x402\` block`,
      );
    }
  }
  const table = createServiceTable(services, engineFor, {
    usdPerBtc: config.paywall.usdPerBtc,
    ...(metrics === undefined
      ? {}
      : {
          onLlmUsage: (service: string, model: string, reading: UsageReading) =>
            metrics.llmUsage(service, model, reading.usage),
        }),
  });
  return { config, table, engines, defaultEngine };
}

async function lightningFrom(config: GatewayConfig): Promise<LightningBackend> {
  try {
    return await connectLightning(config.lightning);
  } catch (error) {
    if (!isTollwayError(error)) throw error;
    throw new TollwayError('invalid_config', `lightning: ${error.message}`, { cause: error });
  }
}

async function openStore(config: GatewayConfig): Promise<Store> {
  if (config.store?.kind === 'postgres') {
    const { createPostgresStore } = await import('@tollway/sdk/stores/postgres');
    return createPostgresStore({ connectionString: config.store.url });
  }
  const { createSqliteStore } = await import('@tollway/sdk/stores/sqlite');
  return createSqliteStore({ path: config.store?.path ?? join(config.dataDir, 'tollway.sqlite') });
}

function overlayFile(config: GatewayConfig): string {
  return config.admin.overlayFile ?? join(config.dataDir, 'services.json');
}

/** Header values shown as `<redacted>`: they may hold secrets (an API key from the environment). */
function redactHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, '<redacted>']));
}

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

function listen(listener: Listener, at: ListenConfig): Promise<string> {
  const { server } = listener;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      const host =
        address === '0.0.0.0'
          ? '127.0.0.1'
          : address === '::'
            ? '[::1]'
            : address.includes(':')
              ? `[${address}]`
              : address;
      resolve(`${listener.scheme}://${host}:${port}`);
    });
  });
}

/** Stops `listener` accepting, waits for its requests until `deadline` (ms since epoch), then cuts. */
function drain(listener: Listener, deadline: number): Promise<void> {
  const { server } = listener;
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    const poll = setInterval(() => {
      listener.closeIdle();
      if (Date.now() >= deadline) listener.closeAll();
    }, DRAIN_POLL_MS);
    server.close(() => {
      clearInterval(poll);
      resolve();
    });
    listener.closeIdle();
  });
}

/** The certificate of the public listener, read from the config's `tls` files. */
function readTls(config: GatewayConfig): ListenerTls | undefined {
  if (config.tls === undefined) return undefined;
  const read = (file: string, field: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (cause) {
      throw new TollwayError('invalid_config', `tls.${field}: ${file} cannot be read`, { cause });
    }
  };
  return { cert: read(config.tls.certFile, 'certFile'), key: read(config.tls.keyFile, 'keyFile') };
}

/** A request's framing, canonical target and host, or the problem that refuses it. */
type ReadTarget =
  | {
      ok: true;
      framing: Extract<ReturnType<typeof readFraming>, { ok: true }>;
      target: Extract<ReturnType<typeof readRequestTarget>, { ok: true }>;
      host: string | undefined;
    }
  | { ok: false; problem: Problem };

/**
 * Checks a request's framing and target; from then on, the engine and the proxy read the
 * canonical target (`req.url` is set to it).
 */
function readTarget(req: IncomingMessage): ReadTarget {
  const framing = readFraming(req);
  if (!framing.ok)
    return { ok: false, problem: { code: 'malformed_request', detail: framing.detail } };
  const target = readRequestTarget(req.url ?? '/');
  if (!target.ok) return { ok: false, problem: { code: 'invalid_path', detail: target.detail } };
  req.url = `${target.path}${target.query}`;
  return { ok: true, framing, target, host: target.authority ?? framing.host };
}

/** A throwaway secret for checking routes (nothing is minted with it). */
const CHECK_SECRET = '00'.repeat(32);

const silentLogger: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Checks a config as deeply as possible without opening anything: every service is compiled by a
 * real engine (prices, durations, scopes), the Lightning connection string is parsed, CA files are
 * read. Throws `invalid_config` naming the field and the reason.
 *
 * @example
 * ```ts
 * await checkGatewayConfig(await loadGatewayConfig('tollway.yaml'));
 * ```
 */
export async function checkGatewayConfig(
  config: GatewayConfig,
  env: Env = process.env,
  baseDir = process.cwd(),
): Promise<void> {
  const lightning = await lightningFrom(config);
  const store = createMemoryStore();
  const upstreams = createUpstreams();
  const overlay = await readOverlayFile(overlayFile(config));
  const secrets = [CHECK_SECRET];
  try {
    const services = applyOverlay(config.services, overlay, {
      env,
      allowedEnv: config.admin.env,
      baseDir,
    });
    const state = buildState(config, services, new Map(), (settings) =>
      createEngine(settings, { lightning, store, secrets, logger: silentLogger }),
    );
    for (const upstream of state.table.upstreams) upstreams.pool(upstream);
  } finally {
    await upstreams.close();
    await lightning.close();
  }
}

/**
 * Starts a gateway: loads (or creates) the master secrets, opens the store and the Lightning
 * backend, compiles the services (with the admin overlay applied) and listens. Throws
 * `invalid_config` for a config the engine refuses, `store_error` when the store cannot start.
 *
 * @example
 * ```ts
 * const gateway = await createGateway({ config: await loadGatewayConfig('tollway.yaml') });
 * console.log(`paid API on ${gateway.url}, admin on ${gateway.adminUrl}`);
 * process.once('SIGTERM', () => gateway.close());
 * ```
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { config: initial } = options;
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const logger = options.logger ?? createDefaultLogger();
  const closers: Array<() => Promise<void>> = [];
  const listeners: Listener[] = [];
  const upstreams: Upstreams = createUpstreams();
  const http2Upstreams = createHttp2Upstreams();
  const sockets = createWebSocketProxy();
  const metrics: GatewayMetrics = createGatewayMetrics();

  async function shutdown(): Promise<void> {
    for (const close of closers.splice(0).reverse()) {
      await close().catch((error: unknown) => logger.error({ err: error }, 'closing failed'));
    }
  }

  try {
    const loaded = await loadSecrets(
      {
        file: initial.secrets.file ?? join(initial.dataDir, 'secrets'),
        ...(initial.secrets.env === undefined ? {} : { env: initial.secrets.env }),
      },
      env,
      (message) => logger.warn({}, message),
    );
    if (loaded.created) logger.info({ file: loaded.origin }, 'created a new master secret');

    const lightning = options.lightning ?? (await lightningFrom(initial));
    if (options.lightning === undefined) closers.push(() => lightning.close());
    const rawStore = options.store ?? (await openStore(initial));
    if (options.store === undefined) closers.push(() => rawStore.close());
    await rawStore.init();
    const store = observeSettlements(rawStore, metrics);
    const x402 =
      initial.x402 === undefined
        ? undefined
        : await createX402OfferFrom(initial.x402, initial.discovery.enabled);
    const shared = {
      lightning,
      store,
      secrets: loaded.secrets,
      logger,
      ...(x402 === undefined ? {} : { x402 }),
    };

    const stored = await readSharedOverlay(store);
    let overlay: Overlay = stored?.overlay ?? (await readOverlayFile(overlayFile(initial)));
    let revision = stored?.revision ?? 0;
    let state = buildState(
      initial,
      applyOverlay(initial.services, overlay, { env, allowedEnv: initial.admin.env, baseDir }),
      new Map(),
      (settings) => createEngine(settings, shared),
      metrics,
    );
    if (stored === undefined && overlay.size > 0) {
      // An overlay file of an earlier version: the store holds it from now on. When another
      // instance imported first, following the store picks its overlay up.
      revision = (await writeSharedOverlay(store, overlay, 0)) ?? 0;
      logger.info({ file: overlayFile(initial) }, 'services overlay file imported into the store');
    }
    for (const upstream of state.table.upstreams) upstreams.pool(upstream);
    await Promise.all([...state.engines.values()].map((engine) => engine.init()));
    closers.push(() => upstreams.close());
    closers.push(async () => http2Upstreams.close());
    closers.push(async () => {
      await Promise.all([...state.engines.values()].map((engine) => engine.close()));
    });

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

    function rebuild(config: GatewayConfig, nextOverlay: Overlay): State {
      return buildState(
        config,
        applyOverlay(config.services, nextOverlay, {
          env,
          allowedEnv: config.admin.env,
          baseDir,
        }),
        state.engines,
        (settings) => createEngine(settings, shared),
        metrics,
      );
    }

    function listServices(): ServiceEntry[] {
      return state.table.services.map((service) => ({
        name: service.name,
        source: overlay.has(service.name) ? 'admin' : 'config',
        config: redact(service.config),
      }));
    }

    /** Runs state changes one at a time, so two admin requests never build on the same state. */
    let changing: Promise<unknown> = Promise.resolve();
    function serialized<T>(work: () => Promise<T>): Promise<T> {
      const run = changing.then(work, work);
      changing = run.catch(() => {});
      return run;
    }

    /** Serves the services of an overlay read from the store. */
    async function adopt(latest: SharedOverlay): Promise<void> {
      if (latest.revision === revision) return;
      await commit(rebuild(state.config, latest.overlay));
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
        const built = rebuild(state.config, next);
        const written = await writeSharedOverlay(store, next, latest.revision);
        if (written === undefined) continue;
        overlay = next;
        revision = written;
        await commit(built);
        return true;
      }
    }

    /** Serves what other instances changed through their admin API, within `FOLLOW_MS`. */
    let refusedRevision = 0;
    let warnedAt = Number.NEGATIVE_INFINITY;
    async function follow(): Promise<void> {
      let latest: SharedOverlay | undefined;
      try {
        latest = await readSharedOverlay(store);
      } catch (error) {
        if (Date.now() - warnedAt < FOLLOW_WARN_MS) return;
        warnedAt = Date.now();
        logger.warn({ err: error }, 'services changed on other instances cannot be read now');
        return;
      }
      if (latest === undefined || latest.revision === revision) return;
      try {
        await adopt(latest);
        logger.info({ revision }, 'services changed through another instance');
      } catch (error) {
        if (refusedRevision === latest.revision) return;
        refusedRevision = latest.revision;
        logger.error({ err: error }, 'services changed through another instance do not apply here');
      }
    }
    const follower = setInterval(() => void serialized(follow), FOLLOW_MS);
    follower.unref();
    closers.push(async () => clearInterval(follower));

    const adminContext: AdminContext = {
      token: initial.admin.token ?? (env.TOLLWAY_ADMIN_TOKEN || undefined),
      store,
      registry: metrics.registry,
      publicMetrics: initial.metrics.public,
      version,
      listServices,
      putService: (input, name) =>
        serialized(async () => {
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
          const deleted = await changeOverlay((current) => {
            const absent = current.has(name) ? current.get(name) === null : !inConfig;
            if (absent) return undefined;
            const next = new Map(current);
            if (inConfig) next.set(name, null);
            else next.delete(name);
            return next;
          });
          if (deleted) logger.info({ service: name }, 'service deleted through the admin API');
          return deleted;
        }),
      revoke: (tokenId, reason) => state.defaultEngine.revoke(tokenId, reason),
      llmTotals: () => metrics.llmTotals(),
      shadowTotals: () => metrics.shadowTotals(),
      logError: (error) => logger.error({ err: error }, 'the admin API failed'),
      dashboard: (req, res) =>
        dashboardHandler(req, res, { sandbox: lightning.kind === 'dev', version }),
    };
    const admin = createAdminHandler(adminContext);

    function adminOnly(req: IncomingMessage, res: ServerResponse): void {
      const url = req.url ?? '/';
      if (url.startsWith(`${ADMIN_PREFIX}/`)) void admin(req, res, url.slice(ADMIN_PREFIX.length));
      else sendProblem(res, { code: 'not_found', detail: 'The admin API is under /_tollway/.' });
    }

    function metricsOnly(req: IncomingMessage, res: ServerResponse): void {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics' || path === `${ADMIN_PREFIX}/metrics`)
        void admin(req, res, '/metrics');
      else sendProblem(res, { code: 'not_found', detail: 'Metrics are at /metrics.' });
    }

    /** An upgrade request (a WebSocket): decided by the engine, then proxied (websocket.ts). */
    async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
      const read = readTarget(req);
      if (!read.ok) return writeSocketProblem(socket, read.problem);
      if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
        return writeSocketProblem(socket, {
          code: 'malformed_request',
          detail: 'Only WebSocket upgrades are served.',
        });
      }
      const current = state;
      const service = read.target.path.startsWith(`${ADMIN_PREFIX}/`)
        ? undefined
        : current.table.match(read.host, read.target.path);
      if (service === undefined) {
        return writeSocketProblem(socket, {
          code: 'not_found',
          detail: 'No service of this gateway matches this host and path.',
        });
      }
      const { trustProxy, bodyLimit, usdPerBtc } = current.config.paywall;
      const request = createPaywallRequest(req, { trustProxy, bodyLimit, reportsOutcome: true });
      const decision = await service.paywall.handle(request, service.route);
      metrics.decision(service.name, decision);
      if (decision.kind === 'respond') return writeSocketAnswer(socket, decision.response);
      await sockets.serve({
        req,
        socket,
        head,
        service,
        decision,
        host: read.host,
        trustProxy,
        metrics,
        usdPerBtc,
      });
    }

    async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const startedAt = performance.now();
      const grpc = grpcStreamOf(req);
      const refuse = (problem: Problem): void =>
        grpc === undefined ? sendProblem(res, problem) : sendGrpcProblem(grpc, problem);
      const read = readTarget(req);
      if (!read.ok) return refuse(read.problem);
      const { framing, target, host } = read;
      if (target.path.startsWith(`${ADMIN_PREFIX}/`)) {
        const sub = `${target.path}${target.query}`.slice(ADMIN_PREFIX.length);
        const path = sub.split('?')[0];
        const here =
          path === '/health' ||
          (path === '/metrics'
            ? initial.metrics.enabled && initial.metrics.listen === undefined
            : initial.admin.listen === undefined);
        if (here) return admin(req, res, sub);
        return refuse({
          code: 'not_found',
          detail: 'This admin endpoint is served on another listener.',
        });
      }
      const current = state;
      const document = current.config.discovery.enabled
        ? discoveryDocument(target.path)
        : undefined;
      if (document !== undefined) {
        const source = { table: current.table, config: current.config, version };
        return serveDiscovery(req, res, document, host, source, () => {
          const { trustProxy, bodyLimit } = current.config.paywall;
          const base = createPaywallRequest(req, { trustProxy, bodyLimit });
          return serveQuote(res, current.table, base);
        });
      }
      const service: Service | undefined = current.table.match(host, target.path);
      if (service === undefined) {
        return refuse({
          code: 'not_found',
          detail: 'No service of this gateway matches this host and path.',
        });
      }
      if (
        framing.hasBody &&
        service.route.readsBody &&
        (req.method === 'GET' || req.method === 'HEAD')
      ) {
        // The engine prices only the bodies of other methods; this one would reach the upstream unpriced.
        return refuse({
          code: 'invalid_request',
          detail: `${req.method} requests to ${service.name} are priced without a body and cannot carry one.`,
        });
      }
      const { trustProxy, bodyLimit } = current.config.paywall;
      const request = createPaywallRequest(req, { trustProxy, bodyLimit, reportsOutcome: true });
      if (service.config.mcp !== undefined && service.config.auth && req.method === 'POST') {
        // The engine reads this body to price the call anyway; the read is shared. A body that
        // does not parse is refused by the engine below.
        const body = await request.jsonBody?.().catch(() => undefined);
        const call = readToolCall(body);
        if (
          call !== undefined &&
          (call.payment !== undefined || service.config.mcp.paymentRequired === 'tool-result')
        ) {
          return serveToolCall({
            req,
            res,
            service,
            pool: upstreams.pool(service),
            request,
            body: body as Record<string, unknown>,
            call,
            host,
            trustProxy,
            metrics,
            startedAt,
          });
        }
      }
      const decision = await service.paywall.handle(request, service.route);
      metrics.decision(service.name, decision);
      if (decision.kind === 'pass' && decision.payment.shadowMsat !== undefined) {
        logger.info(
          {
            service: service.name,
            path: target.path,
            wouldChargeMsat: String(decision.payment.shadowMsat),
          },
          'shadow mode: passed unpaid',
        );
      }
      if (grpc !== undefined) {
        if (decision.kind === 'respond') return answerGrpc(grpc, decision.response);
        return forwardGrpc({
          req,
          stream: grpc,
          res,
          service,
          upstreams: http2Upstreams,
          payment: decision.payment,
          responseHeaders: decision.headers,
          charge: decision.charge,
          host,
          trustProxy,
          metrics,
          startedAt,
        });
      }
      if (decision.kind === 'respond') return writePaywallResponse(res, decision.response);
      const forwarded = {
        req,
        res,
        service,
        pool: upstreams.pool(service),
        payment: decision.payment,
        responseHeaders: decision.headers,
        charge: decision.charge,
        host,
        trustProxy,
        metrics,
        startedAt,
      };
      if (service.llm === undefined) return forward(forwarded);
      const call = await planLlmForward({
        service,
        llm: service.llm,
        request,
        path: target.path,
        metrics,
        onError: (error) => logger.error({ err: error }, 'a metered answer could not be charged'),
      });
      if (!call.ok) return sendProblem(res, call.problem, decision.charge?.release());
      await forward({
        ...forwarded,
        service: call.upstream,
        pool: upstreams.pool(call.upstream),
        body: call.body,
        metered: call.metered,
      });
    }

    /** `handler`, with a failure it throws logged and answered with a 500 problem. */
    function guarded(
      handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
    ): (req: IncomingMessage, res: ServerResponse) => void {
      return (req, res) => {
        Promise.resolve(handler(req, res)).catch((error: unknown) => {
          logger.error({ err: error, url: req.url }, 'the gateway failed on a request');
          if (!res.headersSent)
            sendProblem(res, {
              code: 'internal_error',
              detail: 'The gateway failed; it logged why.',
            });
          else res.destroy();
        });
      };
    }

    function guardedUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      upgrade(req, socket, head).catch((error: unknown) => {
        logger.error({ err: error, url: req.url }, 'the gateway failed on an upgrade');
        writeSocketProblem(socket, {
          code: 'internal_error',
          detail: 'The gateway failed; it logged why.',
        });
      });
    }

    function serve(
      handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
      options: {
        tls?: ListenerTls | undefined;
        h2c?: boolean;
        upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
      } = {},
    ): Listener {
      const listener = createListener({
        limits: initial.connections,
        ...options,
        request: guarded(handler),
      });
      listeners.push(listener);
      return listener;
    }

    const url = await listen(
      serve(handle, { tls: readTls(initial), h2c: initial.h2c, upgrade: guardedUpgrade }),
      initial.listen,
    );
    const adminBase =
      initial.admin.listen === undefined
        ? url
        : await listen(serve(adminOnly), initial.admin.listen);
    let metricsUrl: string | undefined;
    if (initial.metrics.enabled) {
      const base =
        initial.metrics.listen === undefined
          ? url
          : await listen(serve(metricsOnly), initial.metrics.listen);
      metricsUrl = `${base}${ADMIN_PREFIX}/metrics`;
    }
    if (adminContext.token === undefined)
      logger.warn({}, 'no admin token: the admin API is off (health stays open)');
    logger.info({ url, services: state.table.services.length }, 'gateway listening');

    let closing: Promise<void> | undefined;
    return {
      url,
      adminUrl: `${adminBase}${ADMIN_PREFIX}`,
      metricsUrl,
      get paywall() {
        return state.defaultEngine;
      },
      store,
      services: listServices,
      async reload(config) {
        for (const field of [
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
        ] as const) {
          if (JSON.stringify(config[field]) !== JSON.stringify(state.config[field])) {
            logger.warn({ field }, 'this setting changes only on restart');
          }
        }
        await serialized(() => commit(rebuild(config, overlay)));
        logger.info({ services: state.table.services.length }, 'config reloaded');
      },
      close() {
        closing ??= (async () => {
          const deadline = Date.now() + state.config.shutdownTimeout;
          sockets.close();
          await Promise.all(listeners.map((listener) => drain(listener, deadline)));
          await shutdown();
          logger.info({}, 'gateway closed');
        })();
        return closing;
      },
    };
  } catch (error) {
    await Promise.all(listeners.map((listener) => drain(listener, Date.now())));
    await shutdown();
    throw error;
  }
}
