/**
 * The gateway's own span, when `tracing.enabled` is set: `tollway.upstream`, the call to a
 * service's upstream, under the engine's `tollway.handler` span of the request (its context comes
 * with the engine's pass decision). `@opentelemetry/api`, an optional peer, is imported when the
 * gateway starts with tracing on; spans come from the globally registered tracer provider
 * (docs/guides/tracing.md: `node --import` with the OpenTelemetry Node SDK).
 */
import { TollwayError } from '@tollway/sdk';

type OtelApi = typeof import('@opentelemetry/api');

/** Starts upstream spans. */
export interface UpstreamTracer {
  /** Starts the span of one upstream call, under `parent` (a decision's `traceContext`). */
  start(parent: unknown, call: UpstreamCall): UpstreamSpan;
  /**
   * Sends the spans the registered provider still holds (when it can: the SDK's providers have
   * `forceFlush`), for the gateway's close: `tollway serve` exits right after it.
   */
  flush(): Promise<void>;
}

/** What an upstream span says of the call. */
export interface UpstreamCall {
  method: string;
  /** The upstream origin, e.g. `https://api.example.com`. */
  origin: string;
  /** The path sent upstream, without its query. */
  path: string;
  service: string;
}

/** One upstream call's span. */
export interface UpstreamSpan {
  /** The upstream answered with `status` (its head). */
  answered(status: number): void;
  /** The exchange is over: complete, or failed with a problem code. */
  end(failedWith?: string): void;
}

/**
 * Imports `@opentelemetry/api` and makes the upstream tracer. Throws `invalid_config` when the
 * package is not installed.
 *
 * @example
 * ```ts
 * const tracer = config.tracing.enabled ? await loadUpstreamTracer() : undefined;
 * ```
 */
export async function loadUpstreamTracer(): Promise<UpstreamTracer> {
  let api: OtelApi;
  try {
    api = await import('@opentelemetry/api');
  } catch (cause) {
    throw new TollwayError(
      'invalid_config',
      'tracing.enabled needs the package @opentelemetry/api installed beside tollway',
      { cause },
    );
  }
  const tracer = api.trace.getTracer('tollway');
  return {
    async flush() {
      const provider = api.trace.getTracerProvider() as { getDelegate?: () => unknown };
      const registered = (provider.getDelegate?.() ?? provider) as {
        forceFlush?: () => Promise<void>;
      };
      await registered.forceFlush?.();
    },
    start(parent, call) {
      const url = new URL(call.origin);
      const span = tracer.startSpan(
        'tollway.upstream',
        {
          kind: api.SpanKind.CLIENT,
          attributes: {
            'http.request.method': call.method,
            'url.full': `${call.origin}${call.path}`,
            'server.address': url.hostname,
            'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
            'tollway.service': call.service,
          },
        },
        (parent as ReturnType<OtelApi['context']['active']> | undefined) ?? api.context.active(),
      );
      return {
        answered: (status) => span.setAttribute('http.response.status_code', status),
        end(failedWith) {
          if (failedWith !== undefined) {
            span.setAttribute('error.type', failedWith);
            span.setStatus({ code: api.SpanStatusCode.ERROR });
          }
          span.end();
        },
      };
    },
  };
}
