/**
 * `tollway dev [--port <port>] [--once] [--x402]`: the one-command SANDBOX. Starts a dev Lightning node, a
 * gateway and a sample API with zero configuration, pays for a request end to end while printing
 * each step, and keeps running (until Ctrl-C) with the URLs and a ready-to-run `tollway fetch`.
 *
 * `tollway dev node [--port <port>]`: the dev Lightning node alone, to pay your own app: it prints
 * a connection string for the app (to receive) and one to pay with.
 */
import { isTollwayError } from '@tollway/sdk';
import type { Command } from 'commander';
import type { Io } from '../io.js';

/** The gateway's port when none is given. */
const DEFAULT_DEV_PORT = 8402;
/** The dev node's port when none is given: the one it takes beside the sandbox's gateway. */
const DEFAULT_DEV_NODE_PORT = 8403;

/** Exit codes of `tollway dev`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

interface DevFlags {
  port: string;
  once?: boolean;
  x402?: boolean;
}

/** Registers `tollway dev` and `tollway dev node`. */
export function registerDevCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  /**
   * Runs a command that serves until Ctrl-C (SIGINT or SIGTERM aborts `signal`), with its port
   * checked first; prints failures as `<command>: <code>: <message>`.
   */
  async function serveUntilStopped(
    command: string,
    portFlag: string,
    run: (port: number, signal: AbortSignal) => Promise<number>,
  ): Promise<void> {
    const port = Number(portFlag);
    if (!/^\d{1,5}$/.test(portFlag) || port > 65_534) {
      io.stderr(`${command}: --port must be a port number (0 picks a free one)\n`);
      setExitCode(EXIT_USAGE);
      return;
    }
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      setExitCode(await run(port, stop.signal));
    } catch (error) {
      io.stderr(
        `${command}: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
      );
      setExitCode(EXIT_FAILED);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  const dev = program
    .command('dev')
    // `tollway dev node --port <port>` is the node's port, not the sandbox's.
    .enablePositionalOptions()
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
    .action((flags: DevFlags) =>
      serveUntilStopped('tollway dev', flags.port, async (port, signal) => {
        // Loaded when the command runs, so that other commands start without the gateway.
        const { runDev } = await import('../dev/dev.js');
        return runDev({
          dir: process.cwd(),
          port,
          once: flags.once === true,
          x402: flags.x402 === true,
          signal,
          print: (line) => io.stdout(`${line}\n`),
          warn: (line) => io.stderr(`${line}\n`),
        });
      }),
    );

  dev
    .command('node')
    .description(
      'Run the dev Lightning node alone (SANDBOX, play money) and print wallets to pay your own app.',
    )
    .option(
      '--port <port>',
      "the node's port (a taken port is replaced; 0 picks a free one)",
      String(DEFAULT_DEV_NODE_PORT),
    )
    .action((flags: { port: string }) =>
      serveUntilStopped('tollway dev node', flags.port, async (port, signal) => {
        const { runDevNode } = await import('../dev/node.js');
        return runDevNode({
          dir: process.cwd(),
          port,
          signal,
          print: (line) => io.stdout(`${line}\n`),
        });
      }),
    );
}
