/**
 * The services overlay: changes made through the admin API, kept in a JSON file beside the data
 * (default `<dataDir>/services.json`, mode 0600) and applied on top of the config file's services at
 * every start. An entry replaces the config's service of that name in place (or is appended after
 * them when new); `null` removes it. Entries are kept as written, `${ENV}` references unexpanded, so
 * secrets from the environment never reach the file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TollwayError } from '@tollway/sdk';
import { type Env, parseServiceConfig, resolveServicePaths, type ServiceConfig } from './config.js';

/** Service name → the service as written through the admin API, or `null` for a deletion. */
export type Overlay = ReadonlyMap<string, Readonly<Record<string, unknown>> | null>;

/**
 * Reads the overlay file; an absent file is an empty overlay. Throws `invalid_config` for a file
 * that is not an overlay.
 *
 * @example
 * ```ts
 * const overlay = await readOverlay('.tollway/services.json');
 * ```
 */
export async function readOverlay(file: string): Promise<Overlay> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new TollwayError('invalid_config', `${file}: cannot be read`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new TollwayError('invalid_config', `${file}: is not JSON`, { cause });
  }
  const services =
    parsed !== null && typeof parsed === 'object' && 'services' in parsed
      ? parsed.services
      : undefined;
  if (!Array.isArray(services)) {
    throw new TollwayError(
      'invalid_config',
      `${file}: must be {"services": [{"name": …, "service": {…} | null}]}`,
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
        `${file}: services[${index}] must be {"name": "…", "service": {…} | null}`,
      );
    }
    overlay.set(name, service as Record<string, unknown> | null);
  }
  return overlay;
}

/**
 * Writes the overlay atomically (a temporary file renamed over the old one), mode 0600.
 *
 * @example
 * ```ts
 * await writeOverlay('.tollway/services.json', new Map([['old', null]]));
 * ```
 */
export async function writeOverlay(file: string, overlay: Overlay): Promise<void> {
  const services = [...overlay].map(([name, service]) => ({ name, service }));
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(temporary, `${JSON.stringify({ services }, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  } catch (cause) {
    throw new TollwayError('store_error', `${file}: the services overlay cannot be written`, {
      cause,
    });
  }
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
