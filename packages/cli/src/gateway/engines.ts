/**
 * The gateway's engines and its service table: one paywall engine per distinct set of paywall
 * settings (services with equal settings share one, and its counters), built from the config's
 * services with the admin overlay applied, and what requests are served with, swapped whole on
 * reload.
 */
import { createHash } from 'node:crypto';
import { fixedRate, isTollwayError, TollwayError } from '@tollway/sdk';
import type { LightningBackend } from '@tollway/sdk/lightning';
import type { UsageReading } from '@tollway/sdk/llm';
import {
  createPaywall,
  createX402Offer,
  type OfferKind,
  type Paywall,
  type PaywallOptions,
  type Store,
  type X402OfferKind,
} from '@tollway/sdk/server';
import {
  createBatchChannels,
  createFacilitatorClient,
  createSelfHostedFacilitator,
  type Facilitator,
  type X402Network,
} from '@tollway/sdk/x402';
import type { GatewayConfig, ServiceConfig, X402Config } from './config.js';
import type { GatewayLogger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';
import { createServiceTable, type ServiceTable } from './services.js';

/** What requests are served with; swapped whole on reload. */
export interface State {
  config: GatewayConfig;
  table: ServiceTable;
  engines: Map<string, Paywall>;
  defaultEngine: Paywall;
}

/** What one engine is configured with; services with equal settings share an engine. */
export type EngineSettings = Omit<GatewayConfig['paywall'], 'trustProxy' | 'bodyLimit'> & {
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
export async function createX402OfferFrom(
  config: X402Config,
  bazaar: boolean,
  store: Store,
): Promise<X402OfferKind> {
  try {
    let facilitator: Facilitator;
    // The one account that may settle an upto authorisation: the facilitator's.
    let uptoSettler: `0x${string}` | undefined;
    if ('url' in config.facilitator) {
      facilitator = createFacilitatorClient({ url: config.facilitator.url });
    } else {
      const selfHosted = await createSelfHostedFacilitator(config.facilitator);
      facilitator = selfHosted;
      uptoSettler = selfHosted.address;
    }
    if (typeof config.upto === 'object') {
      uptoSettler = config.upto.facilitatorAddress as `0x${string}`;
    } else if (config.upto === undefined) {
      uptoSettler = undefined;
    }
    return createX402Offer({
      facilitator,
      payTo: config.payTo as `0x${string}`,
      network: config.network as X402Network,
      asset: { ...config.asset, address: config.asset.address as `0x${string}` },
      ...(config.settle === undefined ? {} : { settle: config.settle }),
      bazaar,
      ...(uptoSettler === undefined ? {} : { upto: { facilitatorAddress: uptoSettler } }),
      ...(config.batch === undefined
        ? {}
        : {
            batch: {
              store,
              channels: createBatchChannels(config.batch.receiverAuthorizerKey),
              ...(config.batch.withdrawDelay === undefined
                ? {}
                : { withdrawDelay: config.batch.withdrawDelay }),
            },
          }),
    });
  } catch (error) {
    if (!isTollwayError(error)) throw error;
    throw new TollwayError('invalid_config', `x402: ${error.message}`, { cause: error });
  }
}

/** What every engine of a gateway shares. */
export interface EngineShared {
  lightning: LightningBackend;
  store: Store;
  secrets: readonly string[];
  logger: GatewayLogger;
  x402?: OfferKind;
  /** OpenTelemetry spans for every request (the config's `tracing.enabled`). */
  tracing: boolean;
}

/** The paywall engine of `settings`; throws `invalid_config` for settings the engine refuses. */
export function createEngine(settings: EngineSettings, shared: EngineShared): Paywall {
  const options: PaywallOptions = {
    lightning: shared.lightning,
    store: shared.store,
    secrets: shared.secrets,
    logger: shared.logger,
    tracing: shared.tracing,
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
    ...(settings.balanceLeases === undefined ? {} : { balanceLeases: settings.balanceLeases }),
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
export function buildState(
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
