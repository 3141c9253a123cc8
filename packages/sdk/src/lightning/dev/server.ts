/**
 * The HTTP API of the dev Lightning node (a SANDBOX: play money), so that a paying client in one
 * process can pay a gateway hosted by another. JSON in and out; amounts are decimal strings of
 * millisatoshis; every error is an `application/problem+json` body `{title, status, code, detail}`;
 * every response carries `x-tollway-sandbox`.
 *
 * | route | auth | body → answer |
 * |---|---|---|
 * | `POST /v1/wallets` | admin token | `{name, balanceMsat?}` → `{name, token, balanceMsat, sandbox}` (an existing wallet is returned unchanged) |
 * | `GET /v1/wallets/:w/info` | wallet token | → `{pubkey, network, alias, sandbox}` |
 * | `GET /v1/wallets/:w/balance` | wallet token | → `{balanceMsat}` |
 * | `POST /v1/wallets/:w/invoices` | wallet token | `{amountMsat, memo?, descriptionHash?, expirySeconds?}` → 201 created invoice |
 * | `GET /v1/wallets/:w/invoices/:hash` | wallet token | → invoice status |
 * | `GET /v1/wallets/:w/invoices/:hash/wait?timeoutMs=` | wallet token | long poll (at most 30 s) → invoice status, possibly still `open` |
 * | `POST /v1/wallets/:w/payments` | wallet token | `{paymentRequest, amountMsat?, maxFeeMsat?}` → payment result |
 * | `GET /v1/wallets/:w/payments/:hash` | wallet token | → payment status |
 *
 * Tokens go in `Authorization: Bearer <token>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { errorCodes, errorStatus, isTollwayError, TollwayError } from '../../errors.js';
import { bytesToHex } from '../../internal/bytes.js';
import { randomBytes, sha256, timingSafeEqual } from '../../internal/crypto.js';
import type { LightningBackend } from '../types.js';
import type { DevNetwork } from './node.js';

/** Misbehaviour a test can ask of the server, to exercise a client's error handling. */
export type DevServerFault = 'unauthorized' | 'unavailable' | 'garbage' | 'drop' | 'wrong_preimage';

/** Options of {@link createDevServer}. */
export interface DevServerOptions {
  network: DevNetwork;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Receives one line per notable event, each labelled as the sandbox. */
  log?: (line: string) => void;
  /**
   * Test hook, consulted on every request: the fault to act out, or `undefined` to behave. Only code
   * that constructs the server can set it; no HTTP request can.
   */
  fault?: () => DevServerFault | undefined;
}

/** A listening dev node HTTP API. */
export interface DevServer {
  /** e.g. `http://127.0.0.1:4242`. */
  url: string;
  /** Stops listening and cuts open connections (long polls included). Leaves the network open. */
  close(): Promise<void>;
}

/** Value of the `x-tollway-sandbox` header sent with every response. */
export const DEV_SANDBOX_HEADER = 'tollway dev Lightning node; play money, not a real node';

const LOG_PREFIX = '[tollway dev-lightning SANDBOX]';
const MAX_BODY_BYTES = 64 * 1024;
const MAX_POLL_MS = 30_000;

/** Wallet routes as `METHOD resource[/:hash][/action]`. */
const WALLET_ROUTES = new Set([
  'GET info',
  'GET balance',
  'POST invoices',
  'GET invoices/:hash',
  'GET invoices/:hash/wait',
  'POST payments',
  'GET payments/:hash',
]);

const walletBody = z.object({
  name: z.string(),
  balanceMsat: z.string().exactOptional(),
});

const invoiceBody = z.object({
  amountMsat: z.string(),
  memo: z.string().exactOptional(),
  descriptionHash: z.string().exactOptional(),
  expirySeconds: z.number().exactOptional(),
});

const paymentBody = z.object({
  paymentRequest: z.string(),
  amountMsat: z.string().exactOptional(),
  maxFeeMsat: z.string().exactOptional(),
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Serves a dev network's JSON API over `node:http`.
 *
 * @example
 * ```ts
 * const network = createDevNetwork();
 * const server = await createDevServer({ network, port: 4242, log: console.log });
 * const { token } = network.openWallet('agent');
 * console.log(`dev+${server.url}?wallet=agent&token=${token}`);
 * ```
 */
export async function createDevServer(options: DevServerOptions): Promise<DevServer> {
  const { network } = options;
  const log = (line: string): void => options.log?.(`${LOG_PREFIX} ${line}`);

  async function route(req: http.IncomingMessage, signal: AbortSignal): Promise<Reply> {
    const target = req.url ?? '/';
    if (!URL.canParse(target, 'http://dev.invalid')) throw notFound();
    const url = new URL(target, 'http://dev.invalid');
    const parts = url.pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    if (parts[0] !== 'v1' || parts[1] !== 'wallets') throw notFound();
    const [, , walletName, resource, hash, action] = parts;

    if (walletName === undefined) {
      if (method !== 'POST') throw notFound();
      assertToken(req, network.adminToken);
      const body = walletBody.parse(await readJson(req));
      const wallet = network.openWallet(body.name, {
        ...(body.balanceMsat !== undefined ? { balanceMsat: msat(body.balanceMsat) } : {}),
      });
      log(`wallet "${wallet.name}" open, balance ${wallet.balanceMsat} msat of play money`);
      return {
        status: 200,
        body: {
          name: wallet.name,
          token: wallet.token,
          balanceMsat: wallet.balanceMsat,
          sandbox: true,
        },
      };
    }

    const key = `${method} ${resource ?? ''}${hash === undefined ? '' : '/:hash'}${action === undefined ? '' : `/${action}`}`;
    if (!WALLET_ROUTES.has(key) || parts.length > 6) throw notFound();
    const wallet = network.getWallet(walletName);
    assertToken(req, wallet?.token);
    const ln: LightningBackend = network.backend(walletName);

    switch (key) {
      case 'GET info':
        return { status: 200, body: { ...(await ln.getInfo()), sandbox: true } };
      case 'GET balance':
        return { status: 200, body: { balanceMsat: (await ln.getBalance()).msat } };
      case 'POST invoices': {
        const body = invoiceBody.parse(await readJson(req));
        const created = await ln.createInvoice({
          amountMsat: msat(body.amountMsat),
          ...(body.memo !== undefined ? { memo: body.memo } : {}),
          ...(body.descriptionHash !== undefined ? { descriptionHash: body.descriptionHash } : {}),
          ...(body.expirySeconds !== undefined ? { expirySeconds: body.expirySeconds } : {}),
        });
        return { status: 201, body: { ...created } };
      }
      case 'GET invoices/:hash':
        return { status: 200, body: { ...(await ln.lookupInvoice(hash ?? '')) } };
      case 'GET invoices/:hash/wait': {
        const timeoutMs = pollTimeout(url.searchParams.get('timeoutMs'));
        try {
          return {
            status: 200,
            body: { ...(await ln.waitForSettlement(hash ?? '', { timeoutMs, signal })) },
          };
        } catch (error) {
          if (!isTollwayError(error, 'payment_timeout')) throw error;
          return { status: 200, body: { ...(await ln.lookupInvoice(hash ?? '')) } };
        }
      }
      case 'POST payments': {
        const body = paymentBody.parse(await readJson(req));
        const paid = await ln.payInvoice({
          paymentRequest: body.paymentRequest,
          ...(body.amountMsat !== undefined ? { amountMsat: msat(body.amountMsat) } : {}),
          ...(body.maxFeeMsat !== undefined ? { maxFeeMsat: msat(body.maxFeeMsat) } : {}),
        });
        log(
          `wallet "${walletName}" paid ${paid.amountMsat} msat of play money (${paid.paymentHash})`,
        );
        return { status: 200, body: { ...paid } };
      }
      default:
        return { status: 200, body: { ...(await ln.lookupPayment(hash ?? '')) } };
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const fault = options.fault?.();
    if (fault === 'unauthorized')
      return sendProblem(res, new TollwayError('unauthorized', 'injected fault: unauthorized'));
    if (fault === 'unavailable') {
      return sendProblem(
        res,
        new TollwayError('backend_unavailable', 'injected fault: unavailable'),
      );
    }
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    let reply: Reply;
    try {
      reply = await route(req, controller.signal);
    } catch (error) {
      if (error instanceof z.ZodError) {
        const issue = error.issues[0];
        const where = issue?.path.join('.') || 'body';
        return sendProblem(res, new TollwayError('invalid_json', `${where}: ${issue?.message}`));
      }
      if (isTollwayError(error)) return sendProblem(res, error);
      log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      return sendProblem(
        res,
        new TollwayError('backend_error', 'internal error of the dev node'),
        500,
      );
    }
    if (fault === 'drop') {
      res.socket?.destroy();
      return;
    }
    if (fault === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html', 'x-tollway-sandbox': DEV_SANDBOX_HEADER });
      res.end('<html>this is not JSON</html>');
      return;
    }
    if (fault === 'wrong_preimage' && typeof reply.body.preimage === 'string') {
      reply.body.preimage = bytesToHex(randomBytes(32));
    }
    send(res, reply.status, 'application/json', reply.body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`failed to answer: ${error instanceof Error ? error.message : String(error)}`);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log(`node ${network.pubkey} listening on ${url} (regtest, play money, not a real node)`);

  return {
    url,
    close() {
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function notFound(): TollwayError {
  return new TollwayError('capability_unsupported', 'the dev node has no such route');
}

/** Checks the bearer token against the expected one in constant time (over their hashes). */
function assertToken(req: http.IncomingMessage, expected: string | undefined): void {
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  const given = match?.[1];
  if (given === undefined || expected === undefined) {
    throw new TollwayError('unauthorized', 'a valid bearer token for this wallet is required');
  }
  if (!timingSafeEqual(sha256(given), sha256(expected))) {
    throw new TollwayError('unauthorized', 'a valid bearer token for this wallet is required');
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      // Past the limit the rest is read and dropped, so the client still gets its 400.
      size += (chunk as Buffer).length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
    }
  } catch (cause) {
    throw new TollwayError('invalid_json', 'the request body was cut off', { cause });
  }
  if (size > MAX_BODY_BYTES) {
    throw new TollwayError('invalid_json', `request body over ${MAX_BODY_BYTES} bytes`);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new TollwayError('invalid_json', 'the request body is not JSON', { cause });
  }
}

/** Parses a decimal string of millisatoshis (range checks are the network's). */
function msat(text: string): bigint {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(text)) {
    throw new TollwayError('invalid_amount', 'amounts are decimal strings of millisatoshis');
  }
  return BigInt(text);
}

function pollTimeout(text: string | null): number {
  if (text === null) return MAX_POLL_MS;
  if (!/^[0-9]{1,9}$/.test(text)) {
    throw new TollwayError('invalid_json', 'timeoutMs must be a whole number of milliseconds');
  }
  return Math.min(Number(text), MAX_POLL_MS);
}

function sendProblem(res: http.ServerResponse, error: TollwayError, status?: number): void {
  const code = error.code;
  const httpStatus = status ?? errorStatus[code];
  send(res, httpStatus, 'application/problem+json', {
    title: errorCodes[code],
    status: httpStatus,
    code,
    detail: error.message,
  });
}

function send(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  body: Record<string, unknown>,
): void {
  const text = JSON.stringify(body, (_key, value) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-tollway-sandbox': DEV_SANDBOX_HEADER,
  });
  res.end(text);
}
