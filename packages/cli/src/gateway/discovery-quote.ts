/**
 * `POST /l402/quote`, in the shape of Aperture's proposal (lightninglabs/aperture PR #241,
 * `discovery/server.go` at e09dfce): `{service, tier?, max_price_msat?, payment_method?}` in,
 * `{price_msat, quote_expiry, macaroon, invoice}` out — a fresh L402 challenge for the service,
 * minted as its 402 would be (the same rate limits apply). Errors are the gateway's problem
 * bodies, with Aperture's `{error: {code, message, field?}}` beside them for its clients.
 */
import type { ServerResponse } from 'node:http';
import type { TollwayErrorCode } from '@tollway/sdk';
import { writePaywallResponse } from '@tollway/sdk/node';
import type { PaywallRequest } from '@tollway/sdk/server';
import { sendProblem } from './problem.js';
import type { Service, ServiceTable } from './services.js';

/** A quote request as Aperture's proposal has it (the fields the gateway reads). */
interface QuoteRequest {
  service?: unknown;
  tier?: unknown;
  max_price_msat?: unknown;
  payment_method?: unknown;
}

interface L402Entry {
  protocol?: string;
  amount?: string;
  macaroon?: string;
  invoice?: string;
  expiresAt?: string;
}

function refuse(
  res: ServerResponse,
  code: TollwayErrorCode,
  aperture: string,
  message: string,
  field?: string,
): void {
  sendProblem(res, {
    code,
    detail: message,
    extensions: { error: { code: aperture, message, ...(field === undefined ? {} : { field }) } },
  });
}

/** A request for `service`'s own path, as the quote's 402 is minted for it. */
function mintRequest(base: PaywallRequest, service: Service, offers: string[]): PaywallRequest {
  return {
    ...base,
    method: 'GET',
    url: service.config.path,
    headers: new Headers(),
    authorization: [],
    jsonBody: undefined,
    offers,
    reportsOutcome: false,
  };
}

/**
 * Answers one quote request; `base` is the request as the engine sees it (its client address
 * counts against the challenge limits).
 *
 * @example
 * ```ts
 * await serveQuote(res, table, createPaywallRequest(req, { trustProxy, bodyLimit }));
 * ```
 */
export async function serveQuote(
  res: ServerResponse,
  table: ServiceTable,
  base: PaywallRequest,
): Promise<void> {
  let body: QuoteRequest;
  try {
    body = ((await base.jsonBody?.()) ?? {}) as QuoteRequest;
  } catch {
    return refuse(res, 'invalid_request', 'malformed_request', 'The body is not JSON.');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return refuse(res, 'invalid_request', 'malformed_request', 'The body is a JSON object.');
  }
  const service = table.services.find(
    (candidate) => candidate.name === body.service && candidate.config.auth,
  );
  if (service === undefined) {
    return refuse(
      res,
      'not_found',
      'unknown_service',
      'No priced service of this name.',
      'service',
    );
  }
  if (body.tier !== undefined && body.tier !== (service.config.tier ?? 0)) {
    return refuse(res, 'invalid_request', 'unknown_tier', 'The service has no such tier.', 'tier');
  }
  if (body.payment_method !== undefined && body.payment_method !== 'bolt11') {
    return refuse(
      res,
      'invalid_request',
      'unsupported_payment_method',
      'Only bolt11 is offered.',
      'payment_method',
    );
  }
  const budget = body.max_price_msat;
  if (budget !== undefined && !(typeof budget === 'number' && Number.isSafeInteger(budget))) {
    return refuse(
      res,
      'invalid_request',
      'malformed_request',
      'max_price_msat is a whole number of msat.',
      'max_price_msat',
    );
  }
  const previewed = await service.paywall.preview(mintRequest(base, service, []), service.route);
  const balance = previewed?.problem?.extensions?.balance as { amount?: string } | undefined;
  const price = previewed?.problem?.extensions?.price as { amount?: string } | undefined;
  const cost = BigInt(balance?.amount ?? price?.amount ?? '0');
  if (budget !== undefined && cost > BigInt(budget)) {
    return refuse(
      res,
      'quote_over_budget',
      'unsatisfiable_budget',
      `The token costs ${cost} msat, more than max_price_msat.`,
      'max_price_msat',
    );
  }
  const decision = await service.paywall.handle(
    mintRequest(base, service, ['l402']),
    service.route,
  );
  if (decision.kind === 'pass') {
    return refuse(res, 'invalid_request', 'unpriceable', 'This service is free right now.');
  }
  const offers = (decision.response.problem?.extensions?.offers ?? []) as L402Entry[];
  const entry = offers.find((offer) => offer.protocol === 'l402');
  if (decision.response.status !== 402 || entry?.macaroon === undefined) {
    return writePaywallResponse(res, decision.response);
  }
  const body402 = JSON.stringify({
    price_msat: Number(entry.amount),
    quote_expiry: Math.floor(Date.parse(entry.expiresAt ?? '') / 1000),
    macaroon: entry.macaroon,
    invoice: entry.invoice,
  });
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body402),
  });
  res.end(body402);
}
