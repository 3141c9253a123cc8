/**
 * The gateway's master secrets (which sign every token): from an environment variable, or from a
 * file created with a fresh secret on first start (mode 0600). Current secret first, then older
 * ones still accepted, one per line in the file or comma-separated in the variable.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TollwayError } from '@tollway/sdk';
import { createMasterSecret } from '@tollway/sdk/server';

/** Where the secrets come from. */
export interface SecretsSource {
  /** The file; created with a new secret when absent. */
  file: string;
  /** An environment variable that, when set, takes precedence over the file. */
  env?: string;
}

/** The secrets and where they came from (`env:NAME`, or the file, `created` on first start). */
export interface LoadedSecrets {
  secrets: string[];
  origin: string;
  created: boolean;
}

const HEX_SECRET = /^[0-9a-fA-F]{64,}$/;

/** The secrets of a list (one per line of a file, or comma-separated), `#` comments skipped. */
export function readSecretList(text: string, where: string, separator: RegExp): string[] {
  const secrets = text
    .split(separator)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (secrets.length === 0) throw new TollwayError('invalid_config', `${where}: holds no secret`);
  for (const [index, secret] of secrets.entries()) {
    if (!HEX_SECRET.test(secret) || secret.length % 2 !== 0) {
      throw new TollwayError(
        'invalid_config',
        `${where}: secret #${index + 1} must be at least 64 hex digits (32 bytes)`,
      );
    }
  }
  return secrets;
}

async function createSecretFile(file: string): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const content = `# tollway master secrets: current first, then older ones still accepted\n${createMasterSecret()}\n`;
  try {
    // `wx` fails if another process created the file first; that process's secret is then read.
    await writeFile(file, content, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new TollwayError('invalid_config', `${file}: cannot create the secrets file`, {
      cause: error,
    });
  }
}

/**
 * Loads the master secrets: from `env` when that variable is set, else from `file`, which is
 * created (mode 0600, folder 0700) with a fresh secret if it does not exist. Throws
 * `invalid_config` for an unreadable file or a malformed secret; warns through `warn` when the
 * file can be read by others.
 *
 * @example
 * ```ts
 * const { secrets } = await loadSecrets({ file: '.tollway/secrets', env: 'TOLLWAY_SECRETS' });
 * ```
 */
export async function loadSecrets(
  source: SecretsSource,
  env: Readonly<Record<string, string | undefined>> = process.env,
  warn: (message: string) => void = () => {},
): Promise<LoadedSecrets> {
  const fromEnv = source.env === undefined ? undefined : env[source.env];
  if (source.env !== undefined && fromEnv !== undefined && fromEnv !== '') {
    return {
      secrets: readSecretList(fromEnv, `$${source.env}`, /,/),
      origin: `env:${source.env}`,
      created: false,
    };
  }
  const created = await createSecretFile(source.file);
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (cause) {
    throw new TollwayError('invalid_config', `${source.file}: cannot read the secrets file`, {
      cause,
    });
  }
  const { mode } = await stat(source.file);
  if ((mode & 0o077) !== 0) warn(`${source.file} can be read by other users; chmod 600 it`);
  return { secrets: readSecretList(text, source.file, /\r?\n/), origin: source.file, created };
}
