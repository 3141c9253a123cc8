/** The gateway's logger: what it needs of one, and pino on stderr by default. */
import pino from 'pino';

/** Where the gateway logs; a pino logger fits. */
export interface GatewayLogger {
  info(context: Record<string, unknown>, message: string): void;
  warn(context: Record<string, unknown>, message: string): void;
  error(context: Record<string, unknown>, message: string): void;
}

/** The default pino logger on stderr. */
export function createDefaultLogger(): GatewayLogger {
  return pino(
    { name: 'tollway', level: process.env.TOLLWAY_LOG_LEVEL ?? 'info' },
    pino.destination(2),
  );
}
