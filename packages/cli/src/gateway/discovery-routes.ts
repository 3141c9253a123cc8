/**
 * What a gateway's discovery documents list: each priced endpoint its services name — a service's
 * own path, each `pricing` rule with a path, each gRPC method of `grpc.methods` — with what its
 * 402 says, read from the engine's preview of that 402 (`paywall.preview`: no invoice minted, no
 * limit counted). So the documents say what the 402 says. Endpoints priced by the request's body
 * (MCP tools, rules on body fields, an `llm` block) are listed as dynamic, unless their 402 sells a
 * balance (the token then costs the balance, whatever the request). An `llm` service is listed as
 * a POST to its path with an example body naming one of its models (it cannot be priced without
 * one).
 */
import type { PaywallRequest } from '@tollway/sdk/server';
import type { X402PaymentRequired } from '@tollway/sdk/x402';
import type { Service } from './services.js';

/** One priced endpoint, with what its 402 says. */
export interface ListedEndpoint {
  service: Service;
  /** Upper case. */
  method: string;
  path: string;
  /** A gRPC method of `grpc.methods`. */
  grpc: boolean;
  /** Priced by the request's body: the listed price is that of a request without one. */
  dynamic: boolean;
  /** A JSON body the endpoint needs to be priced, as an example. */
  body?: Record<string, unknown>;
  /** The price of one request, msat. */
  priceMsat: bigint;
  /** The price as listed, when in dollars (`$0.01`). */
  listedUsd?: string;
  /** What the Lightning invoice of its 402 is for, msat: the price, or the balance it sells. */
  invoiceMsat: bigint;
  /** Uses a token buys, when limited. */
  uses?: number;
  /** Seconds a token is valid, when limited. */
  validForSeconds?: number;
  /** The x402 offer of its 402, when it has one. */
  x402?: X402PaymentRequired;
}

/** An endpoint to list, before its 402 is read. */
interface Candidate {
  service: Service;
  method: string;
  path: string;
  grpc: boolean;
  dynamic: boolean;
  body?: Record<string, unknown>;
}

/** The endpoints a service names (see the module comment). */
function candidatesOf(service: Service): Candidate[] {
  const { config } = service;
  if (!config.auth) return [];
  if (config.llm !== undefined) {
    const model = Object.keys(config.llm.models)[0] ?? 'any';
    const body = { model };
    return [{ service, method: 'POST', path: config.path, grpc: false, dynamic: true, body }];
  }
  const found: Candidate[] = [];
  for (const method of Object.keys(config.grpc?.methods ?? {})) {
    found.push({ service, method: 'POST', path: method, grpc: true, dynamic: false });
  }
  // Rules apply in order: one is priced by the body when a rule before it, or itself, reads it.
  let dynamic = config.mcp !== undefined;
  for (const rule of config.pricing ?? []) {
    const readsBody = rule.when !== undefined || rule.field !== undefined;
    if (rule.path !== undefined && rule.price !== undefined && !readsBody) {
      const methods = rule.method === undefined ? ['GET'] : [rule.method].flat();
      for (const method of methods) {
        found.push({
          service,
          method: method.toUpperCase(),
          path: rule.path,
          grpc: false,
          dynamic,
        });
      }
    }
    dynamic ||= readsBody;
  }
  const method = config.mcp !== undefined || config.grpc !== undefined ? 'POST' : 'GET';
  found.push({ service, method, path: config.path, grpc: false, dynamic });
  return found;
}

interface PreviewBody {
  price?: { amount?: string; listed?: string };
  balance?: { amount?: string };
  grants?: { uses?: number; validForSeconds?: number };
}

/** Reads the preview of one candidate's 402; undefined when it is free or cannot be priced. */
async function describe(candidate: Candidate): Promise<ListedEndpoint | undefined> {
  const { service, method, path } = candidate;
  const { body: example } = candidate;
  const contentType = candidate.grpc ? 'application/grpc' : example && 'application/json';
  const request: PaywallRequest = {
    method,
    url: path,
    headers: new Headers(contentType ? { 'content-type': contentType } : {}),
    clientIp: '',
    ...(example === undefined ? {} : { jsonBody: async () => example }),
  };
  const response = await service.paywall.preview(request, service.route);
  if (response?.status !== 402) return undefined;
  const body = (response.problem?.extensions ?? {}) as PreviewBody;
  const price = body.price?.amount;
  if (price === undefined) return undefined;
  const x402 = response.offers?.x402 as X402PaymentRequired | undefined;
  return {
    ...candidate,
    dynamic: candidate.dynamic && body.balance === undefined,
    priceMsat: BigInt(price),
    ...(body.price?.listed === undefined ? {} : { listedUsd: body.price.listed }),
    invoiceMsat: BigInt(body.balance?.amount ?? price),
    ...(body.grants?.uses === undefined ? {} : { uses: body.grants.uses }),
    ...(body.grants?.validForSeconds === undefined
      ? {}
      : { validForSeconds: body.grants.validForSeconds }),
    ...(x402 === undefined ? {} : { x402 }),
  };
}

/**
 * The priced endpoints of `services`, in service order, each `method path` once.
 *
 * @example
 * ```ts
 * const endpoints = await listEndpoints(state.table.services);
 * ```
 */
export async function listEndpoints(services: readonly Service[]): Promise<ListedEndpoint[]> {
  const seen = new Set<string>();
  const candidates = services.flatMap(candidatesOf).filter((candidate) => {
    const key = `${candidate.method} ${candidate.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const described = await Promise.all(candidates.map(describe));
  return described.filter((endpoint) => endpoint !== undefined);
}
