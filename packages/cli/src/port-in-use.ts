/** Listening on a port another program holds, reported as the coded error `port_in_use`. */
import { TollwayError } from '@tollway/sdk';

/**
 * `error` as `port_in_use` naming the address and saying what to do (`hint`) when it is Node's
 * EADDRINUSE from a listen; any other error unchanged.
 */
export function asPortInUse(error: unknown, hint: string): unknown {
  const failure = error as { code?: unknown; address?: unknown; port?: unknown };
  if (!(error instanceof Error) || failure.code !== 'EADDRINUSE') return error;
  const where =
    typeof failure.address === 'string' && typeof failure.port === 'number'
      ? `${failure.address.includes(':') ? `[${failure.address}]` : failure.address}:${failure.port}`
      : 'the address';
  return new TollwayError('port_in_use', `${where} is already in use by another program; ${hint}`, {
    cause: error,
    details: { address: failure.address, port: failure.port },
  });
}
