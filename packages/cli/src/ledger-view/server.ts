/**
 * The ledger view of `tollway ledger --serve`: a local web page for the agent's owner over the
 * agent's store, and the JSON API it reads. Everything but the sign-in link needs the view's
 * token (`Authorization: Bearer`, or the session cookie the link sets); pausing and resuming with
 * the cookie must come from the page's own origin. Reference: docs/guides/agents.md.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorStatus, isTollwayError, TollwayError } from '@tollway/sdk';
import type { AgentBudget, ClientStore } from '@tollway/sdk/client';
import { sendProblem } from '../gateway/problem.js';
import { parseGrouping } from '../ledger-spend.js';
import {
  fromOwnOrigin,
  type PageSession,
  requestCredential,
  sameSecret,
  sessionCookie,
} from '../page/auth.js';
import { sendJson, sendPage } from '../page/kit.js';
import { budgetWindows, recentEntries, spendOverTime } from './api.js';
import { renderLedgerPage } from './page.js';

/** Options of {@link startLedgerView}. */
export interface LedgerViewOptions {
  /** The agent's store: its ledger, budget windows and pause switch. */
  store: ClientStore;
  /** The budget the agent's paying fetch enforces (same path and limits), for its windows. */
  budget: AgentBudget;
  /** Address to listen on (loopback unless told otherwise) and port (0: any free one). */
  host: string;
  port: number;
  /** The secret of the sign-in link and the API's bearer token. */
  token: string;
  /** Told about unexpected failures (answered 500 `internal_error`). */
  logError(error: unknown): void;
}

/** A running ledger view. */
export interface LedgerView {
  /** `http://127.0.0.1:3403` */
  readonly url: string;
  /** The link that signs a browser in: `<url>/?token=<token>`. */
  readonly signInUrl: string;
  close(): Promise<void>;
}

const MAX_ENTRIES = 500;
const DEFAULT_ENTRIES = 50;

function badRequest(message: string): TollwayError {
  return new TollwayError('invalid_request', message);
}

function entriesLimit(query: URLSearchParams): number {
  const text = query.get('limit');
  if (text === null || text === '') return DEFAULT_ENTRIES;
  if (!/^\d+$/.test(text) || Number(text) > MAX_ENTRIES) {
    throw badRequest(`limit must be a whole number up to ${MAX_ENTRIES}`);
  }
  return Number(text);
}

async function spend(options: LedgerViewOptions, query: URLSearchParams): Promise<unknown> {
  const by = parseGrouping(query.get('by') ?? 'origin');
  if (by === undefined)
    throw badRequest('by must be origin, account, agent, task, model or tag:<key>');
  const bucket = query.get('bucket') ?? 'hour';
  if (bucket !== 'hour' && bucket !== 'day') throw badRequest('bucket must be hour or day');
  return spendOverTime(options.store, by, bucket, Date.now());
}

async function budget(options: LedgerViewOptions): Promise<unknown> {
  const { store } = options;
  return {
    budget: options.budget.path,
    paused: await store.isPaused(),
    disabled: (await store.disabledBudgets()).includes(options.budget.path),
    windows: await budgetWindows(options.budget, Date.now()),
  };
}

/** Routes one authenticated request; throws typed errors for the caller to answer. */
async function route(
  options: LedgerViewOptions,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const endpoint = `${req.method === 'HEAD' ? 'GET' : req.method} ${url.pathname}`;
  switch (endpoint) {
    case 'GET /':
      sendPage(req, res, (nonce) => renderLedgerPage({ nonce, budget: options.budget.path }));
      return;
    case 'GET /api/spend':
      sendJson(res, 200, await spend(options, url.searchParams));
      return;
    case 'GET /api/budget':
      sendJson(res, 200, await budget(options));
      return;
    case 'GET /api/entries':
      sendJson(res, 200, {
        entries: await recentEntries(options.store, entriesLimit(url.searchParams)),
      });
      return;
    case 'POST /api/pause':
    case 'POST /api/resume': {
      const paused = url.pathname === '/api/pause';
      await options.store.setPaused(paused);
      sendJson(res, 200, { paused });
      return;
    }
    default:
      throw new TollwayError('not_found', `no ledger view endpoint ${req.method} ${url.pathname}`);
  }
}

/**
 * Answers one request: the sign-in link, then the token or session for everything else, and
 * the same-origin check for changes made with the session cookie. Never throws: failures are
 * JSON problem bodies (401 `admin_unauthorized`, 403 `cross_origin_refused`, 404 `not_found`,
 * 400 `invalid_request`, 503 `store_error`, or 500 `internal_error`).
 */
async function handle(
  options: LedgerViewOptions,
  session: PageSession,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://ledger.invalid');
  try {
    if (url.pathname === '/' && req.method === 'GET' && url.searchParams.has('token')) {
      if (!sameSecret(url.searchParams.get('token') ?? '', options.token)) {
        throw new TollwayError('admin_unauthorized', 'the token is not the ledger view token');
      }
      res.writeHead(303, {
        location: '/',
        'set-cookie': sessionCookie(req, session, '/'),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    const credential = requestCredential(req, session);
    if (credential === undefined) {
      throw new TollwayError(
        'admin_unauthorized',
        'open the link tollway ledger --serve printed (it signs the browser in), or send Authorization: Bearer <token>',
      );
    }
    const reads = req.method === 'GET' || req.method === 'HEAD';
    if (credential === 'cookie' && !reads && !fromOwnOrigin(req)) {
      throw new TollwayError(
        'cross_origin_refused',
        'a change authorised by the ledger view cookie must come from the ledger view itself; scripts send Authorization: Bearer <token>',
      );
    }
    await route(options, req, res, url);
  } catch (error) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!isTollwayError(error)) {
      options.logError(error);
      sendProblem(res, {
        code: 'internal_error',
        detail: 'The ledger view failed; it logged why.',
      });
      return;
    }
    const status = errorStatus[error.code];
    if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="tollway ledger"');
    sendProblem(res, { status, code: error.code, detail: error.message });
  }
}

/**
 * Serves the ledger view on `host:port` until closed. Throws Node's EADDRINUSE when the port is
 * taken.
 *
 * @example
 * ```ts
 * const view = await startLedgerView({ store, budget, host: '127.0.0.1', port: 3403, token, logError });
 * console.error(`open ${view.signInUrl}`);
 * ```
 */
export async function startLedgerView(options: LedgerViewOptions): Promise<LedgerView> {
  const session: PageSession = {
    token: options.token,
    cookie: 'tollway_ledger',
    purpose: 'tollway ledger view session',
  };
  const server = createServer((req, res) => {
    void handle(options, session, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  return {
    url,
    signInUrl: `${url}/?token=${encodeURIComponent(options.token)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
