/**
 * Prices of MCP tools over Streamable HTTP: the JSON-RPC body of each POST decides the price. A
 * `tools/call` of a tool in `mcp.tools` costs its price; other tools cost the service's `price`
 * (free when it is unset or zero, and always free for `mcp.freeTools`); every other message
 * (`initialize`, `tools/list`, notifications, responses, `ping`, …) is free. A batch holding a priced
 * call is refused: MCP dropped JSON-RPC batches (2025-06-18) and one price per HTTP request keeps
 * the 402 readable.
 */
import { parseAmount, TollwayError } from '@tollway/sdk';
import type { PriceFunction, PriceInput } from '@tollway/sdk/server';
import type { McpPricing } from './config.js';

function isZero(text: string): boolean {
  const amount = parseAmount(text);
  return amount.unit === 'msat' ? amount.msat === 0n : amount.microUsd === 0n;
}

/** The price of tools not listed: the service's `price`, unless unset or zero. */
function unlistedPrice(fallback: string | undefined): string | undefined {
  return fallback === undefined || isZero(fallback) ? undefined : fallback;
}

function toolPrice(
  mcp: Pick<McpPricing, 'tools'>,
  free: ReadonlySet<string>,
  unlisted: string | undefined,
  name: string,
): string | undefined {
  if (Object.hasOwn(mcp.tools, name)) return mcp.tools[name];
  return free.has(name) ? undefined : unlisted;
}

/**
 * The price function of a service with an `mcp` block; `fallback` is the service's `price`, the
 * price of tools not listed.
 *
 * @example
 * ```ts
 * const price = createMcpPriceFunction({ tools: { get_forecast: '10 sat' } }, undefined);
 * // a POST of {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_forecast"}}: '10 sat'
 * // a POST of {"jsonrpc":"2.0","id":2,"method":"tools/list"}: free
 * ```
 */
export function createMcpPriceFunction(
  mcp: Pick<McpPricing, 'tools' | 'freeTools'>,
  fallback: string | undefined,
): PriceFunction {
  const free = new Set(mcp.freeTools ?? []);
  const unlisted = unlistedPrice(fallback);

  /** The price of one JSON-RPC message, or undefined when it is free. */
  function priceOf(message: unknown): string | undefined {
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return undefined;
    const { method, params } = message as { method?: unknown; params?: unknown };
    if (method !== 'tools/call') return undefined;
    const name =
      params !== null && typeof params === 'object' && Object.hasOwn(params, 'name')
        ? (params as { name: unknown }).name
        : undefined;
    if (typeof name !== 'string') return unlisted;
    return toolPrice(mcp, free, unlisted, name);
  }

  return (request): PriceInput => {
    const { body } = request;
    if (!Array.isArray(body)) return priceOf(body) ?? 0n;
    if (body.some((message) => priceOf(message) !== undefined)) {
      throw new TollwayError(
        'invalid_json',
        'a JSON-RPC batch cannot hold a priced tools/call; send each priced call on its own',
      );
    }
    return 0n;
  };
}
