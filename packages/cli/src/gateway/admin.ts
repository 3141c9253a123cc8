/**
 * The gateway's admin surface under `/_tollway/`: health (open), and behind the admin token
 * (`Authorization: Bearer <token>`, or the dashboard's HttpOnly cookie, whose changes must come
 * from the gateway's own origin): services (list, create, update, delete; applied without
 * restart), tokens (list, revoke), payments and revenue, the per-model totals of metered LLM
 * calls, the Prometheus metrics and the dashboard. Reference: docs/guides/gateway.md#admin-api.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorStatus, isTollwayError, TollwayError } from '@tollway/sdk';
import type { PaymentProtocol, Store } from '@tollway/sdk/server';
import type { Registry } from 'prom-client';
import {
  fromOwnOrigin,
  type PageSession,
  requestCredential,
  sameSecret,
  sessionCookie,
} from '../page/auth.js';
import { sendJson } from '../page/kit.js';
import type { ServiceConfig } from './config.js';
import type { LlmTotals, ShadowTotal } from './metrics.js';
import { sendProblem } from './problem.js';

/** A service as the admin API lists it. */
export interface ServiceEntry {
  name: string;
  /** `config`: from the config file; `admin`: created or changed through the admin API. */
  source: 'config' | 'admin';
  config: ServiceConfig;
}

/** What the admin API changes and reads; the gateway provides it. */
export interface AdminContext {
  /** The admin token; without one, everything but health answers 401. */
  token: string | undefined;
  store: Store;
  registry: Registry;
  /** Serve `/_tollway/metrics` without the admin token. */
  publicMetrics: boolean;
  version: string;
  listServices(): ServiceEntry[];
  /** Validates, applies and persists a service (create or replace). Throws `invalid_config`. */
  putService(input: unknown, name?: string): Promise<ServiceEntry>;
  /** Removes a service; false when there is none of that name. */
  deleteService(name: string): Promise<boolean>;
  /** Revokes a token on every instance sharing the store. */
  revoke(tokenId: string, reason?: string): Promise<void>;
  /** Told about unexpected failures (answered 500 `internal_error`). */
  logError(error: unknown): void;
  /** The per-model totals of metered LLM calls on this instance since it started. */
  llmTotals(): LlmTotals[];
  /** What services in shadow mode let through unpaid since this instance started. */
  shadowTotals(): ShadowTotal[];
  /** Serves the dashboard page (already authenticated). */
  dashboard(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

/** The dashboard's session cookie for `token`. */
function dashboardSession(token: string | undefined): PageSession {
  return { token, cookie: 'tollway_admin', purpose: 'tollway dashboard session' };
}

const MAX_BODY_BYTES = 1_048_576;
const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const PROTOCOLS = new Set<string>(['l402', 'mpp', 'x402']);
const TOKEN_ID = /^[0-9a-f]{64}$/;

function badRequest(message: string): TollwayError {
  return new TollwayError('invalid_request', message);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw badRequest(`the body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new TollwayError('invalid_json', 'the body is not JSON', { cause });
  }
}

/** A time query parameter: unix milliseconds or an ISO 8601 date. */
function timeParam(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(value))
    throw badRequest(`${name} must be unix milliseconds or an ISO 8601 date`);
  return value;
}

function countParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const text = query.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > max)
    throw badRequest(`${name} must be a whole number up to ${max}`);
  return value;
}

function protocolParam(query: URLSearchParams): PaymentProtocol | undefined {
  const text = query.get('protocol');
  if (text === null || text === '') return undefined;
  if (!PROTOCOLS.has(text)) throw badRequest('protocol must be l402, mpp or x402');
  return text as PaymentProtocol;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

async function listTokens(ctx: AdminContext, query: URLSearchParams): Promise<unknown> {
  const service = query.get('service') ?? undefined;
  const tokens = await ctx.store.listTokens({
    ...optional('service', service),
    limit: countParam(query, 'limit', DEFAULT_LIMIT, MAX_LIMIT),
    offset: countParam(query, 'offset', 0, Number.MAX_SAFE_INTEGER),
  });
  const revoked = new Set((await ctx.store.listRevocations()).map((entry) => entry.tokenId));
  const rows = await Promise.all(
    tokens.map(async (token) => {
      // Counters are kept per payment: every credential of one invoice draws from them.
      const usage = await ctx.store.getUsage(token.paymentHash);
      return {
        ...token,
        uses: usage.uses,
        spentMsat: usage.spentMsat,
        revoked: revoked.has(token.tokenId),
      };
    }),
  );
  return { tokens: rows };
}

async function revenue(ctx: AdminContext, query: URLSearchParams): Promise<unknown> {
  const bucket = query.get('bucket') ?? 'day';
  if (bucket !== 'hour' && bucket !== 'day') throw badRequest('bucket must be hour or day');
  const service = query.get('service') ?? undefined;
  const protocol = protocolParam(query);
  const rows = (
    await ctx.store.revenue({
      bucket,
      ...optional('since', timeParam(query, 'since')),
      ...optional('until', timeParam(query, 'until')),
    })
  ).filter(
    (row) =>
      (service === undefined || row.service === service) &&
      (protocol === undefined || row.protocol === protocol),
  );
  const totals = new Map<
    string,
    { service: string; protocol: string; unit: string; amount: bigint; count: number }
  >();
  for (const row of rows) {
    const key = JSON.stringify([row.service, row.protocol, row.unit]);
    const total = totals.get(key) ?? {
      service: row.service,
      protocol: row.protocol,
      unit: row.unit,
      amount: 0n,
      count: 0,
    };
    total.amount += row.amount;
    total.count += row.count;
    totals.set(key, total);
  }
  return { bucket, rows, totals: [...totals.values()] };
}

/** Routes one authenticated admin request; throws typed errors for the caller to answer. */
async function route(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
): Promise<void> {
  const method = req.method ?? 'GET';
  const [resource, id, extra] = path.split('/').slice(1).map(decodeURIComponent);
  const endpoint = `${method} ${resource ?? ''}${id === undefined ? '' : '/:id'}${extra === undefined ? '' : '/…'}`;
  switch (endpoint) {
    case 'GET metrics': {
      res.writeHead(200, { 'content-type': ctx.registry.contentType, 'cache-control': 'no-store' });
      res.end(await ctx.registry.metrics());
      return;
    }
    case 'GET dashboard':
      await ctx.dashboard(req, res);
      return;
    case 'GET services':
      sendJson(res, 200, { services: ctx.listServices() });
      return;
    case 'GET services/:id': {
      const entry = ctx.listServices().find((service) => service.name === id);
      if (entry === undefined) throw new TollwayError('not_found', `no service named "${id}"`);
      sendJson(res, 200, entry);
      return;
    }
    case 'POST services': {
      const input = await readJson(req);
      const name =
        input !== null && typeof input === 'object' && 'name' in input ? input.name : undefined;
      if (ctx.listServices().some((service) => service.name === name)) {
        throw new TollwayError(
          'invalid_config',
          `a service named "${String(name)}" exists; PUT /_tollway/services/${String(name)} replaces it`,
          {
            details: { status: 409 },
          },
        );
      }
      sendJson(res, 201, await ctx.putService(input));
      return;
    }
    case 'PUT services/:id': {
      const existed = ctx.listServices().some((service) => service.name === id);
      const entry = await ctx.putService(await readJson(req), id);
      sendJson(res, existed ? 200 : 201, entry);
      return;
    }
    case 'DELETE services/:id':
      if (!(await ctx.deleteService(id ?? '')))
        throw new TollwayError('not_found', `no service named "${id}"`);
      res.writeHead(204).end();
      return;
    case 'GET tokens':
      sendJson(res, 200, await listTokens(ctx, query));
      return;
    case 'DELETE tokens/:id': {
      const tokenId = (id ?? '').toLowerCase();
      if (!TOKEN_ID.test(tokenId)) throw badRequest('a token id is 64 hex digits');
      const reason = query.get('reason');
      await (reason === null ? ctx.revoke(tokenId) : ctx.revoke(tokenId, reason));
      res.writeHead(204).end();
      return;
    }
    case 'GET payments': {
      const service = query.get('service') ?? undefined;
      const payments = await ctx.store.listSettlements({
        limit: countParam(query, 'limit', DEFAULT_LIMIT, MAX_LIMIT),
        ...optional('since', timeParam(query, 'since')),
        ...optional('until', timeParam(query, 'until')),
        ...optional('service', service),
        ...optional('protocol', protocolParam(query)),
      });
      sendJson(res, 200, { payments });
      return;
    }
    case 'GET revenue':
      sendJson(res, 200, await revenue(ctx, query));
      return;
    case 'GET models':
      sendJson(res, 200, { models: ctx.llmTotals() });
      return;
    case 'GET shadow':
      sendJson(res, 200, { services: ctx.shadowTotals() });
      return;
    default:
      throw new TollwayError('not_found', `no admin endpoint ${method} /_tollway${path}`);
  }
}

/**
 * Creates the handler of `/_tollway/*`. `path` is what follows `/_tollway` (e.g. `/services/llm`).
 * Never throws: failures are JSON problem bodies (401 `admin_unauthorized`, 403
 * `cross_origin_refused`, 404 `not_found`, 400, 409, 503 `store_error`, or 500 `internal_error`).
 *
 * @example
 * ```ts
 * const admin = createAdminHandler(ctx);
 * if (url.startsWith('/_tollway/')) return admin(req, res, url.slice('/_tollway'.length));
 * ```
 */
export function createAdminHandler(
  ctx: AdminContext,
): (req: IncomingMessage, res: ServerResponse, target: string) => Promise<void> {
  return async (req, res, target) => {
    const url = new URL(target, 'http://admin.invalid');
    const path = url.pathname.replace(/\/$/, '');
    try {
      if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
        // A store that cannot serve (unreachable, its SQLite file gone) fails health: 503 store_error.
        await ctx.store.assertHealthy();
        sendJson(res, 200, {
          status: 'ok',
          version: ctx.version,
          services: ctx.listServices().length,
        });
        return;
      }
      if (path === '/dashboard' && req.method === 'GET' && url.searchParams.has('token')) {
        const token = url.searchParams.get('token') ?? '';
        if (ctx.token === undefined || !sameSecret(token, ctx.token)) {
          throw new TollwayError('admin_unauthorized', 'the token is not the admin token');
        }
        res.writeHead(303, {
          location: '/_tollway/dashboard',
          'set-cookie': sessionCookie(req, dashboardSession(ctx.token), '/_tollway'),
          'cache-control': 'no-store',
        });
        res.end();
        return;
      }
      const open = path === '/metrics' && ctx.publicMetrics;
      const credential = requestCredential(req, dashboardSession(ctx.token));
      if (!open && credential === undefined) {
        throw new TollwayError(
          'admin_unauthorized',
          ctx.token === undefined
            ? 'the admin API is off: set admin.token in the config or TOLLWAY_ADMIN_TOKEN'
            : 'send Authorization: Bearer <admin token> (browsers: open /_tollway/dashboard?token=<admin token> once)',
        );
      }
      const reads = req.method === 'GET' || req.method === 'HEAD';
      if (credential === 'cookie' && !reads && !fromOwnOrigin(req)) {
        throw new TollwayError(
          'cross_origin_refused',
          'a change authorised by the dashboard cookie must come from the dashboard itself (its Origin is this gateway); scripts send Authorization: Bearer <admin token>',
        );
      }
      await route(ctx, req, res, path, url.searchParams);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (!isTollwayError(error)) {
        ctx.logError(error);
        sendProblem(res, {
          code: 'internal_error',
          detail: 'The admin API failed; the gateway logged why.',
        });
        return;
      }
      const status = error.details?.status === 409 ? 409 : errorStatus[error.code];
      if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="tollway admin"');
      sendProblem(res, { status, code: error.code, detail: error.message });
    }
  };
}
