/**
 * `createGateway`: the paid API gateway behind `tollway serve`. One `node:http` listener takes every
 * request, matches a service by host and path, asks that service's paywall engine, and either
 * answers (a 402 with offers, a 401, a 429, …) or streams the request to the upstream and back.
 * `/_tollway/*` is the admin surface (optionally on its own listener), `/_tollway/metrics` the
 * Prometheus endpoint (optionally on its own listener). Guide: docs/guides/gateway.md.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { isTollwayError, TollwayError } from '@tollway/sdk';
import { connectLightning, type LightningBackend } from '@tollway/sdk/lightning';
import type { Paywall, Store } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { version } from '../version.js';
import { type AdminContext, createAdminHandler, type ServiceEntry } from './admin.js';
import type { Env, GatewayConfig, ListenConfig } from './config.js';
import { dashboardHandler } from './dashboard/index.js';
import { buildState, createEngine, createX402OfferFrom } from './engines.js';
import { createHttp2Upstreams } from './http2-upstreams.js';
import { createListener, type Listener, type ListenerTls } from './listener.js';
import { createDefaultLogger, type GatewayLogger } from './logger.js';
import { createGatewayMetrics, type GatewayMetrics, observeSettlements } from './metrics.js';
import { applyOverlay, overlayFile, readOverlayFile } from './overlay.js';
import { createUpstreams, type Upstreams } from './proxy.js';
import {
  ADMIN_PREFIX,
  type GatewayParts,
  guarded,
  guardedUpgrade,
  handleAdminOnly,
  handleMetricsOnly,
  handleRequest,
  handleUpgrade,
} from './request-handler.js';
import { loadSecrets } from './secrets.js';
import { openServiceRegistry } from './service-registry.js';
import { loadUpstreamTracer } from './tracing.js';
import { createWebSocketProxy } from './websocket.js';

export type { GatewayLogger } from './logger.js';

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

const DRAIN_POLL_MS = 100;

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

/** A throwaway secret for checking routes (nothing is minted with it). */
const CHECK_SECRET = '00'.repeat(32);

const silentLogger: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Checks a config as deeply as possible without opening anything: every service is compiled by a
 * real engine (prices, durations, scopes), the Lightning connection string is parsed, CA files are
 * read, and `@opentelemetry/api` is imported when `tracing.enabled` is set. Throws
 * `invalid_config` naming the field and the reason.
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
      createEngine(settings, { lightning, store, secrets, logger: silentLogger, tracing: false }),
    );
    for (const upstream of state.table.upstreams) upstreams.pool(upstream);
    if (config.tracing.enabled) await loadUpstreamTracer();
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
        : await createX402OfferFrom(initial.x402, initial.discovery.enabled, store);
    if (x402 !== undefined && initial.x402?.batch !== undefined) {
      const redeeming = setInterval(() => {
        x402.redeemBatch().then(
          (redeemed) => {
            if (redeemed.claimed > 0) logger.info({ ...redeemed }, 'redeemed x402 vouchers');
          },
          (error: unknown) => logger.warn({ err: error }, 'redeeming x402 vouchers failed'),
        );
      }, initial.x402.batch.redeemEvery ?? 60_000);
      redeeming.unref();
      closers.push(async () => clearInterval(redeeming));
    }
    const tracer = initial.tracing.enabled ? await loadUpstreamTracer() : undefined;
    // Closers run in reverse: the spans are flushed once the requests drained and the engines
    // closed.
    if (tracer !== undefined) closers.push(() => tracer.flush());
    const shared = {
      lightning,
      store,
      secrets: loaded.secrets,
      logger,
      tracing: initial.tracing.enabled,
      ...(x402 === undefined ? {} : { x402 }),
    };

    const registry = await openServiceRegistry({
      config: initial,
      env,
      baseDir,
      store,
      upstreams,
      http2Upstreams,
      metrics,
      logger,
      createEngine: (settings) => createEngine(settings, shared),
    });
    closers.push(() => upstreams.close());
    closers.push(async () => http2Upstreams.close());
    closers.push(() => registry.close());

    const adminContext: AdminContext = {
      token: initial.admin.token ?? (env.TOLLWAY_ADMIN_TOKEN || undefined),
      store,
      registry: metrics.registry,
      publicMetrics: initial.metrics.public,
      version,
      listServices: () => registry.listServices(),
      putService: (input, name) => registry.putService(input, name),
      deleteService: (name) => registry.deleteService(name),
      revoke: (tokenId, reason) => registry.state.defaultEngine.revoke(tokenId, reason),
      llmTotals: () => metrics.llmTotals(),
      shadowTotals: () => metrics.shadowTotals(),
      logError: (error) => logger.error({ err: error }, 'the admin API failed'),
      dashboard: (req, res) =>
        dashboardHandler(req, res, { sandbox: lightning.kind === 'dev', version }),
    };
    const parts: GatewayParts = {
      config: initial,
      registry,
      admin: createAdminHandler(adminContext),
      upstreams,
      http2Upstreams,
      sockets,
      metrics,
      logger,
      tracer,
    };

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
        request: guarded(logger, handler),
      });
      listeners.push(listener);
      return listener;
    }

    const url = await listen(
      serve((req, res) => handleRequest(parts, req, res), {
        tls: readTls(initial),
        h2c: initial.h2c,
        upgrade: guardedUpgrade(logger, (req, socket, head) =>
          handleUpgrade(parts, req, socket, head),
        ),
      }),
      initial.listen,
    );
    const adminBase =
      initial.admin.listen === undefined
        ? url
        : await listen(
            serve((req, res) => handleAdminOnly(parts, req, res)),
            initial.admin.listen,
          );
    let metricsUrl: string | undefined;
    if (initial.metrics.enabled) {
      const base =
        initial.metrics.listen === undefined
          ? url
          : await listen(
              serve((req, res) => handleMetricsOnly(parts, req, res)),
              initial.metrics.listen,
            );
      metricsUrl = `${base}${ADMIN_PREFIX}/metrics`;
    }
    if (adminContext.token === undefined)
      logger.warn({}, 'no admin token: the admin API is off (health stays open)');
    logger.info({ url, services: registry.state.table.services.length }, 'gateway listening');

    let closing: Promise<void> | undefined;
    return {
      url,
      adminUrl: `${adminBase}${ADMIN_PREFIX}`,
      metricsUrl,
      get paywall() {
        return registry.state.defaultEngine;
      },
      store,
      services: () => registry.listServices(),
      reload: (config) => registry.reload(config),
      close() {
        closing ??= (async () => {
          const deadline = Date.now() + registry.state.config.shutdownTimeout;
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
