/**
 * The services overlay: changes made through the admin API, kept in the store (one document every
 * instance on the store reads) and applied on top of the config file's services. An entry replaces
 * the config's service of that name in place (or is appended after them when new); `null` removes
 * it. Entries are kept as written, `${ENV}` references unexpanded, so secrets from the environment
 * never reach the store. A gateway that kept its overlay in a file (`<dataDir>/services.json`, as
 * earlier versions did) has it imported into the store at its first start.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TollwayError } from '@tollway/sdk';
import type { Store } from '@tollway/sdk/server';
import {
  type Env,
  type GatewayConfig,
  parseServiceConfig,
  resolveServicePaths,
  type ServiceConfig,
} from './config.js';

/** Service name → the service as written through the admin API, or `null` for a deletion. */
export type Overlay = ReadonlyMap<string, Readonly<Record<string, unknown>> | null>;

/** The store document that holds the overlay, shared by every instance on the store. */
const DOCUMENT = 'gateway.services';

/** The overlay and the revision of its store document it was read at (0: none yet). */
export interface SharedOverlay {
  overlay: Overlay;
  revision: number;
}

/** The overlay file of earlier versions (`admin.overlayFile`, else `<dataDir>/services.json`). */
export function overlayFile(config: GatewayConfig): string {
  return config.admin.overlayFile ?? join(config.dataDir, 'services.json');
}

/**
 * Reads the overlay file; an absent file is an empty overlay. Throws `invalid_config` for a file
 * that is not an overlay.
 *
 * @example
 * ```ts
 * const overlay = await readOverlayFile('.tollway/services.json');
 * ```
 */
export async function readOverlayFile(file: string): Promise<Overlay> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new TollwayError('invalid_config', `${file}: cannot be read`, { cause: error });
  }
  return parseOverlay(text, file);
}

/**
 * Reads the overlay from the store, or undefined when no instance has written one yet.
 *
 * @example
 * ```ts
 * const shared = await readSharedOverlay(store);
 * ```
 */
export async function readSharedOverlay(store: Store): Promise<SharedOverlay | undefined> {
  const document = await store.readDocument(DOCUMENT);
  if (document === undefined) return undefined;
  return {
    overlay: parseOverlay(document.body, 'the services overlay in the store'),
    revision: document.revision,
  };
}

/**
 * Writes the overlay to the store if it is still at `revision`: the new revision, or undefined
 * when another instance wrote first.
 *
 * @example
 * ```ts
 * const revision = await writeSharedOverlay(store, new Map([['old', null]]), shared.revision);
 * ```
 */
export function writeSharedOverlay(
  store: Store,
  overlay: Overlay,
  revision: number,
): Promise<number | undefined> {
  const services = [...overlay].map(([name, service]) => ({ name, service }));
  return store.writeDocument(DOCUMENT, JSON.stringify({ services }), revision);
}

/** Reads `{"services": [{"name", "service"}]}`; `origin` names where it came from in errors. */
function parseOverlay(text: string, origin: string): Overlay {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new TollwayError('invalid_config', `${origin}: is not JSON`, { cause });
  }
  const services =
    parsed !== null && typeof parsed === 'object' && 'services' in parsed
      ? parsed.services
      : undefined;
  if (!Array.isArray(services)) {
    throw new TollwayError(
      'invalid_config',
      `${origin}: must be {"services": [{"name": …, "service": {…} | null}]}`,
    );
  }
  const overlay = new Map<string, Record<string, unknown> | null>();
  for (const [index, entry] of services.entries()) {
    const name: unknown = entry?.name;
    const service: unknown = entry?.service;
    if (
      typeof name !== 'string' ||
      (service !== null && (typeof service !== 'object' || Array.isArray(service)))
    ) {
      throw new TollwayError(
        'invalid_config',
        `${origin}: services[${index}] must be {"name": "…", "service": {…} | null}`,
      );
    }
    overlay.set(name, service as Record<string, unknown> | null);
  }
  return overlay;
}

/** What overlay entries are read with. */
export interface OverlayContext {
  /** Where the `${NAME}` references of entries are read. */
  env: Env;
  /** The only variables entries may name: the config's `admin.env`. */
  allowedEnv: readonly string[];
  /** The folder relative paths (`tls.caFile`) resolve against. */
  baseDir: string;
}

/**
 * The services in force: the config's, with the overlay applied (see the module comment). Throws
 * `invalid_config` naming the overlay entry that does not check.
 *
 * @example
 * ```ts
 * const services = applyOverlay(config.services, overlay, { env: process.env, allowedEnv: config.admin.env, baseDir: '/etc/tollway' });
 * ```
 */
export function applyOverlay(
  services: readonly ServiceConfig[],
  overlay: Overlay,
  context: OverlayContext,
): ServiceConfig[] {
  const { env, allowedEnv, baseDir } = context;
  const parse = (name: string, input: Readonly<Record<string, unknown>>): ServiceConfig => {
    try {
      return resolveServicePaths(parseServiceConfig({ ...input, name }, env, allowedEnv), baseDir);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TollwayError('invalid_config', `services overlay, "${name}": ${reason}`, {
        cause: error,
      });
    }
  };
  const result: ServiceConfig[] = [];
  for (const service of services) {
    if (!overlay.has(service.name)) {
      result.push(service);
      continue;
    }
    const replacement = overlay.get(service.name);
    if (replacement) result.push(parse(service.name, replacement));
  }
  const named = new Set(services.map((service) => service.name));
  for (const [name, input] of overlay) {
    if (!named.has(name) && input) result.push(parse(name, input));
  }
  return result;
}
