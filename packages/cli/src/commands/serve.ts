/**
 * `tollway serve --config tollway.yaml`: runs the paid API gateway until SIGINT or SIGTERM (then
 * drains in-flight requests and exits 0); SIGHUP reloads the config file's services. `--check`
 * validates the config and exits 0 or 1 with every problem named by its field.
 */
import { resolve } from 'node:path';
import { isTollwayError } from '@tollway/sdk';
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { asPortInUse } from '../port-in-use.js';
import { nextSignal } from '../signals.js';

/** Exit codes of `tollway serve`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;

interface ServeFlags {
  config: string;
  check?: boolean;
}

/** Registers `tollway serve`. */
export function registerServeCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  program
    .command('serve')
    .description('Run the paid API gateway in front of HTTP APIs, MCP servers and LLM endpoints.')
    .option('-c, --config <file>', 'the gateway config (YAML)', 'tollway.yaml')
    .option('--check', 'validate the config and exit: 0 valid, 1 invalid')
    .action(async (flags: ServeFlags) => {
      const file = resolve(flags.config);
      const baseDir = resolve(file, '..');
      try {
        // Loaded when the command runs, so that other commands start without the gateway.
        const [{ loadGatewayConfig }, { checkGatewayConfig, createGateway }] = await Promise.all([
          import('../gateway/config.js'),
          import('../gateway/gateway.js'),
        ]);
        const config = await loadGatewayConfig(file);
        if (flags.check) {
          await checkGatewayConfig(config, process.env, baseDir);
          const names = config.services.map((service) => service.name).join(', ');
          io.stdout(
            `${flags.config}: valid (${config.services.length} services${names === '' ? '' : `: ${names}`})\n`,
          );
          return;
        }
        const gateway = await createGateway({ config, baseDir });
        io.stdout(
          `tollway gateway on ${gateway.url} (admin ${gateway.adminUrl}${gateway.metricsUrl === undefined ? '' : `, metrics ${gateway.metricsUrl}`})\n`,
        );
        for (;;) {
          const signal = await nextSignal(['SIGINT', 'SIGTERM', 'SIGHUP']);
          if (signal !== 'SIGHUP') break;
          try {
            await gateway.reload(await loadGatewayConfig(file));
          } catch (error) {
            io.stderr(
              `tollway serve: reload refused, the running config stays: ${isTollwayError(error) ? error.message : String(error)}\n`,
            );
          }
        }
        await gateway.close();
      } catch (caught) {
        const error = asPortInUse(
          caught,
          'stop it, or choose another port (`listen`, `admin.listen` or `metrics.listen` in the config)',
        );
        io.stderr(
          `tollway serve: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
        );
        setExitCode(EXIT_FAILED);
      }
    });
}
