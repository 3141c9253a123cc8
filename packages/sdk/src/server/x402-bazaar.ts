/**
 * The x402 Bazaar discovery extension of a 402 (`PaymentRequired.extensions.bazaar`), as
 * x402-foundation/x402 `specs/extensions/bazaar.md` and `@x402/extensions` 2.27 (`bazaar/types.ts`,
 * `declareDiscoveryExtension`) define it: `info` says how the resource is called (an HTTP method,
 * with a JSON body for methods that carry one), `schema` is the JSON Schema (draft 2020-12) that
 * `info` satisfies. A client echoes it in its payment so that a facilitator can catalogue the
 * resource.
 */

/** Methods whose input is the query; the others take a body (bazaar.md, "HTTP input"). */
const QUERY_METHODS = new Set(['GET', 'HEAD', 'DELETE']);

/**
 * The Bazaar extension for a resource called with `method` (upper case).
 *
 * @example
 * ```ts
 * const required = { x402Version: 2, resource, accepts, extensions: { bazaar: createBazaarExtension('GET') } };
 * ```
 */
export function createBazaarExtension(method: string): Record<string, unknown> {
  const query = QUERY_METHODS.has(method);
  const input: Record<string, unknown> = query
    ? { type: 'http', method }
    : { type: 'http', method, bodyType: 'json', body: {} };
  const properties: Record<string, unknown> = {
    type: { type: 'string', const: 'http' },
    method: { type: 'string', enum: [method] },
  };
  if (!query) {
    properties.bodyType = { type: 'string', enum: ['json'] };
    properties.body = { type: 'object' };
  }
  return {
    info: { input },
    schema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        input: {
          type: 'object',
          properties,
          required: query ? ['type', 'method'] : ['type', 'method', 'bodyType', 'body'],
          additionalProperties: false,
        },
      },
      required: ['input'],
    },
  };
}
