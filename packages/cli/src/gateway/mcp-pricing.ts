/**
 * Prices of MCP tools over Streamable HTTP: the JSON-RPC body of each POST decides the price. A
 * `tools/call` of a tool in `mcp.tools` costs its price; other tools cost the service's `price`
 * (free when it is unset or zero, and always free for `mcp.freeTools`); every other message
 * (`initialize`, `tools/list`, notifications, responses, `ping`, …) is free. A batch holding a priced
 * call is refused: MCP dropped JSON-RPC batches (2025-06-18) and one price per HTTP request keeps
 * the 402 readable. Tool names are compared as {@link toolKey} gives them (case, surrounding
 * spaces and Unicode compatibility forms ignored), so a server that matches names loosely cannot
 * run a priced tool under a free spelling.
 */
import { parseAmount, TollwayError } from '@tollway/sdk';
import type { PriceFunction, PriceInput } from '@tollway/sdk/server';
import type { McpPricing } from './config.js';

/**
 * The key a tool name is priced by: NFKC-normalised, trimmed, lower case. A server may match
 * `Search`, `search ` or a full-width `ｓｅａｒｃｈ` to its `search` tool; the price does too.
 *
 * @example
 * ```ts
 * toolKey(' Search\t'); // 'search'
 * ```
 */
export function toolKey(name: string): string {
  return name.normalize('NFKC').trim().toLowerCase();
}

function isZero(text: string): boolean {
  const amount = parseAmount(text);
  return amount.unit === 'msat' ? amount.msat === 0n : amount.microUsd === 0n;
}

/** The price of tools not listed: the service's `price`, unless unset or zero. */
function unlistedPrice(fallback: string | undefined): string | undefined {
  return fallback === undefined || isZero(fallback) ? undefined : fallback;
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
  const priced = new Map(Object.entries(mcp.tools).map(([name, price]) => [toolKey(name), price]));
  const free = new Set((mcp.freeTools ?? []).map(toolKey));
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
    const key = toolKey(name);
    return priced.get(key) ?? (free.has(key) ? undefined : unlisted);
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
