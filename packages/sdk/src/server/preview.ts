/**
 * The 402 a request would get, for discovery documents that must say what the 402 says: its price,
 * what a payment buys, and the offers that take no invoice (x402), with no invoice minted, no
 * record written and no rate limit, freebie or credential counted.
 */
import { challenge } from './challenge.js';
import type { PaywallContext } from './context.js';
import { createExchange } from './exchange.js';
import type { Route } from './route.js';
import type { PaywallRequest, PaywallResponse } from './types.js';

/**
 * The preview of `request`'s 402 on `route` (see the module comment): undefined when the request
 * is free; another response when it cannot be priced (a 503, say).
 *
 * @example
 * ```ts
 * const response = await preview(context, { method: 'GET', url: '/forecast', headers, clientIp: '' }, route);
 * ```
 */
export async function preview(
  context: PaywallContext,
  request: PaywallRequest,
  route: Route,
): Promise<PaywallResponse | undefined> {
  if (route.free) return undefined;
  const exchange = createExchange(context, request, route);
  const decision = await challenge(
    context,
    exchange,
    {
      status: 402,
      code: 'payment_required',
      detail: `Payment required: ${route.description}.`,
    },
    { preview: true },
  );
  return decision.kind === 'respond' ? decision.response : undefined;
}
