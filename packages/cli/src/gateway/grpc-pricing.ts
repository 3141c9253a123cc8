/**
 * Prices per gRPC method: a call's path is its method (`/package.Service/Method`), priced by the
 * service's `grpc.methods`; other paths keep the service's own price (fixed or by rules).
 */
import type { Price, PriceFunction } from '@tollway/sdk/server';

/**
 * The price function of a service with method prices: the method's price, else `fallback`'s.
 *
 * @example
 * ```ts
 * const price = createGrpcPriceFunction({ '/pkg.Svc/Do': '5 sat' }, '1 sat');
 * ```
 */
export function createGrpcPriceFunction(
  methods: Readonly<Record<string, string>>,
  fallback: Price,
): PriceFunction {
  return (request) => {
    if (Object.hasOwn(methods, request.path)) return methods[request.path] ?? '';
    return typeof fallback === 'function' ? fallback(request) : fallback;
  };
}
