/**
 * `tollway discover URL`: reads the discovery documents of an origin (an L402 manifest, an x402
 * one, an OpenAPI document with `x-payment-info`) and prints one list of priced endpoints — a
 * table, or JSON with `--json`. Nothing is paid. Reference: docs/reference/cli.md#tollway-discover.
 */
import { isTollwayError } from '@tollway/sdk';
import type { DiscoveredPrice, Discovery } from '@tollway/sdk/client';
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { UsageError } from '../usage.js';

/** Exit codes of `tollway discover`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

interface DiscoverFlags {
  json?: boolean;
}

/** A price as a person reads it: `10 sat`, `2500 msat`, `10000 0x8335… (eip155:8453)`, `dynamic`. */
function describePrice(price: DiscoveredPrice): string {
  const amount = price.amount ?? 'dynamic';
  const unit = price.amount === undefined ? '' : ` ${price.unit}`;
  const network = price.network === undefined ? '' : ` on ${price.network}`;
  return `${price.protocol} ${amount}${unit}${network}`;
}

/** The table `tollway discover` prints: one endpoint a line, then what each document gave. */
function formatDiscovery(discovery: Discovery): string {
  const rows = discovery.endpoints.map((endpoint) => [
    endpoint.method,
    new URL(endpoint.url).origin === discovery.origin
      ? endpoint.url.slice(discovery.origin.length)
      : endpoint.url,
    endpoint.prices.map(describePrice).join(', '),
    endpoint.description ?? '',
  ]);
  const header = ['METHOD', 'PATH', 'PRICES', 'DESCRIPTION'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const documents = discovery.documents.map(
    (document) =>
      `  ${document.format.padEnd(8)} ${document.url}  ${
        document.error === undefined
          ? `${document.endpoints} endpoints`
          : `not read: ${document.error}`
      }`,
  );
  return `${[line(header), ...rows.map(line)].join('\n')}\n\ndocuments:\n${documents.join('\n')}\n`;
}

/**
 * Registers `tollway discover`.
 *
 * @example
 * ```ts
 * registerDiscoverCommand(program, processIo, (code) => { process.exitCode = code; });
 * ```
 */
export function registerDiscoverCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  program
    .command('discover')
    .description(
      'List the priced endpoints an API publishes (L402 manifest, x402 manifest, OpenAPI x-payment-info); pays nothing.',
    )
    .argument('<url>', 'the API, e.g. https://api.example.com')
    .option('--json', 'print the endpoints and documents as JSON')
    .action(async (url: string, flags: DiscoverFlags) => {
      try {
        if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
          throw new UsageError(`"${url}" is not an http:// or https:// URL`);
        }
        // Loaded when the command runs, so that other commands start without the client.
        const { discover } = await import('@tollway/sdk/client');
        const discovery = await discover(url);
        io.stdout(
          flags.json ? `${JSON.stringify(discovery, null, 2)}\n` : formatDiscovery(discovery),
        );
      } catch (error) {
        if (error instanceof UsageError) {
          io.stderr(`tollway discover: ${error.message}\n`);
          setExitCode(EXIT_USAGE);
          return;
        }
        io.stderr(
          `tollway discover: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
        );
        setExitCode(EXIT_FAILED);
      }
    });
}
