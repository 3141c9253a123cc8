/**
 * `tollway facilitator`: an x402 facilitator for the `exact` scheme (EIP-3009) on one EVM chain,
 * served over HTTP (`POST /verify`, `POST /settle`, `GET /supported`) until SIGINT or SIGTERM.
 * It settles with a key of your own, which pays the gas. The work is done by `@tollway/sdk/x402`;
 * this file only bridges `node:http` to its Web-standard handler.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isTollwayError } from '@tollway/sdk';
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { asPortInUse } from '../port-in-use.js';

/** Exit codes of `tollway facilitator`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

const KEY_ENV = 'TOLLWAY_FACILITATOR_KEY';

interface FacilitatorFlags {
  rpc: string;
  key?: string;
  port: string;
  host: string;
  network?: string;
}

/** The settlement key: `--key <hex>`, `--key env:NAME`, or else $TOLLWAY_FACILITATOR_KEY. */
function resolveKey(flag: string | undefined): string | undefined {
  const source = flag ?? `env:${KEY_ENV}`;
  const key = source.startsWith('env:') ? process.env[source.slice(4)] : source;
  return key === '' ? undefined : key;
}

/** Aborts on SIGINT or SIGTERM. */
function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const abort = () => {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
    controller.abort();
  };
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  return controller.signal;
}

/**
 * A `node:http` listener around a Web-standard handler. The body is buffered up to `maxBody` + 1
 * bytes (the rest is read and dropped), so the handler sees an over-long body and answers 413.
 */
function toNodeListener(
  handle: (request: Request) => Promise<Response>,
  maxBody: number,
): (req: IncomingMessage, res: ServerResponse) => void {
  return async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        if (size <= maxBody) chunks.push(chunk);
        size += chunk.length;
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        for (const item of Array.isArray(value) ? value : [value ?? '']) headers.append(name, item);
      }
      const method = req.method ?? 'GET';
      const response = await handle(
        new Request(new URL(req.url ?? '/', 'http://localhost'), {
          method,
          headers,
          ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/problem+json' });
      res.end(
        '{"type":"about:blank","title":"Bad Request","status":400,"code":"invalid_x402_payload"}',
      );
    }
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}

/**
 * Registers `tollway facilitator`. `stop` ends the server (tests pass their own); by default
 * SIGINT and SIGTERM do.
 */
export function registerFacilitatorCommand(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
  stop?: AbortSignal,
): void {
  program
    .command('facilitator')
    .description('Serve an x402 facilitator (exact scheme, EIP-3009) for one EVM chain over HTTP.')
    .requiredOption('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--key <hex|env:NAME>', `settlement key, or env:NAME to read it (default: $${KEY_ENV})`)
    .option('--port <port>', 'port to listen on (0 picks a free one)', '4020')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--network <caip2>',
      'refuse to start unless the RPC serves this network, e.g. eip155:8453',
    )
    .action(async (flags: FacilitatorFlags) => {
      const key = resolveKey(flags.key);
      const port = Number(flags.port);
      if (key === undefined || !Number.isInteger(port) || port < 0 || port > 65_535) {
        io.stderr(
          key === undefined
            ? `tollway facilitator: give the settlement key with --key <hex|env:NAME> or ${KEY_ENV}\n`
            : `tollway facilitator: --port must be an integer from 0 to 65535\n`,
        );
        setExitCode(EXIT_USAGE);
        return;
      }
      try {
        // Loaded here: viem, @x402/* and the HTTP server are needed by this command only.
        const [x402, { createServer }] = await Promise.all([
          import('@tollway/sdk/x402'),
          import('node:http'),
        ]);
        const facilitator = await x402.createSelfHostedFacilitator({
          rpcUrl: flags.rpc,
          privateKey: key,
          ...(flags.network !== undefined
            ? { network: flags.network as `${string}:${string}` }
            : {}),
        });
        const server = createServer(
          toNodeListener(x402.createFacilitatorHandler(facilitator), x402.X402_MAX_BODY_LENGTH),
        );
        const address = await listen(server, port, flags.host);
        io.stdout(
          `tollway facilitator: ${facilitator.network}, settling from ${facilitator.address}\n` +
            `listening on http://${flags.host}:${address.port}\n`,
        );
        await waitForAbort(stop ?? shutdownSignal());
        server.closeIdleConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      } catch (caught) {
        const error = asPortInUse(caught, 'stop it, or give --port another port');
        io.stderr(
          `tollway facilitator: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
        );
        setExitCode(EXIT_FAILED);
      }
    });
}
