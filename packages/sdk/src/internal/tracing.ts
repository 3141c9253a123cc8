/**
 * OpenTelemetry for the engine and the paying fetch. `@opentelemetry/api`, an optional peer, is
 * imported only when tracing is turned on, and spans come from the globally registered tracer
 * provider (the application registers one, e.g. with `@opentelemetry/sdk-node`); with none
 * registered they are the API's no-op spans. Only `import type` names the package statically, so
 * nothing of it loads while tracing is off. Internal: not exported.
 *
 * What may go into a span is listed in docs/guides/tracing.md: public identifiers and amounts,
 * never a preimage, a token, a key, a signature or a header value.
 */
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import { TollwayError } from '../errors.js';
import { isPromiseLike } from './promise.js';

/** The API module, as `import('@opentelemetry/api')` gives it. */
type OtelApi = typeof import('@opentelemetry/api');

/** The loaded API and the tracer Tollway's spans come from. */
export interface Tracing {
  readonly api: OtelApi;
  readonly tracer: Tracer;
}

/** The instrumentation scope of every Tollway span. */
const TRACER_NAME = '@tollway/sdk';

/**
 * Imports `@opentelemetry/api` and gets Tollway's tracer from the global provider. Throws
 * `invalid_config` when the package is not installed.
 *
 * @example
 * ```ts
 * const tracing = await loadTracing();
 * const span = tracing.tracer.startSpan('tollway.request');
 * ```
 */
export async function loadTracing(): Promise<Tracing> {
  let api: OtelApi;
  try {
    api = await import('@opentelemetry/api');
  } catch (cause) {
    throw new TollwayError(
      'invalid_config',
      'tracing needs the package @opentelemetry/api (npm install @opentelemetry/api)',
      { cause },
    );
  }
  return { api, tracer: api.trace.getTracer(TRACER_NAME) };
}

/** Sets `attributes` and ends `span`; with `failedWith`, marks it failed (`error.type`). */
export function endSpan(
  tracing: Tracing,
  span: Span,
  attributes: Attributes,
  failedWith?: string,
): void {
  span.setAttributes(attributes);
  if (failedWith !== undefined) {
    span.setAttribute('error.type', failedWith);
    span.setStatus({ code: tracing.api.SpanStatusCode.ERROR });
  }
  span.end();
}

/**
 * Runs `run` in a child span `name` of `parent` (sync or async alike), ending it when `run`
 * returns or settles; a throw or rejection marks it failed with the error's code.
 */
export function inSpan<T>(
  tracing: Tracing,
  parent: Context,
  name: string,
  run: (span: Span) => T,
): T {
  const span = tracing.tracer.startSpan(name, undefined, parent);
  let result: T;
  try {
    result = run(span);
  } catch (error) {
    endSpan(tracing, span, {}, errorType(error));
    throw error;
  }
  if (!isPromiseLike(result)) {
    span.end();
    return result;
  }
  return Promise.resolve(result).then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      endSpan(tracing, span, {}, errorType(error));
      throw error;
    },
  ) as T;
}

/** What `error.type` says of a thrown value: its Tollway code, else its class name. */
export function errorType(error: unknown): string {
  if (error instanceof TollwayError) return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

export type { Attributes, Context, Span };
