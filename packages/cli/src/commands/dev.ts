/**
 * `tollway dev [--port <port>] [--once] [--x402]`: the one-command SANDBOX. Starts a dev Lightning node, a
 * gateway and a sample API with zero configuration, pays for a request end to end while printing
 * each step, and keeps running (until Ctrl-C) with the URLs and a ready-to-run `tollway fetch`.
 */
import { isTollwayError } from '@tollway/sdk';
import type { Command } from 'commander';
import type { Io } from '../io.js';

/** The gateway's port when none is given. */
const DEFAULT_DEV_PORT = 8402;

/** Exit codes of `tollway dev`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

interface DevFlags {
  port: string;
  once?: boolean;
  x402?: boolean;
}

/** Registers `tollway dev`. */
export function registerDevCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  program
    .command('dev')
    .description(
      'Start a SANDBOX (dev Lightning node, gateway, sample API) and pay for a request end to end.',
    )
    .option(
      '--port <port>',
      'gateway port; the dev node takes the next one (a taken port is replaced)',
      String(DEFAULT_DEV_PORT),
    )
    .option('--once', 'run the demo payment, then stop (exit 0 when it succeeded)')
    .option(
      '--x402',
      'also offer x402: a local EVM chain (anvil) with test tokens, and an x402 demo payment',
    )
    .action(async (flags: DevFlags) => {
      const port = Number(flags.port);
      if (!/^\d{1,5}$/.test(flags.port) || port > 65_534) {
        io.stderr('tollway dev: --port must be a port number (0 picks a free one)\n');
        setExitCode(EXIT_USAGE);
        return;
      }
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        // Loaded when the command runs, so that other commands start without the gateway.
        const { runDev } = await import('../dev/dev.js');
        setExitCode(
          await runDev({
            dir: process.cwd(),
            port,
            once: flags.once === true,
            x402: flags.x402 === true,
            signal: stop.signal,
            print: (line) => io.stdout(`${line}\n`),
            warn: (line) => io.stderr(`${line}\n`),
          }),
        );
      } catch (error) {
        io.stderr(
          `tollway dev: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
        );
        setExitCode(EXIT_FAILED);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
