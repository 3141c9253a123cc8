// For `TRACING=1` runs of bench/engine.js and bench/gateway.js: registers the OpenTelemetry SDK's
// tracer provider as the global one, its spans going through the batch processor (as an
// operator's set-up sends them) to an exporter that drops them. What such a run measures is
// Tollway's spans and the SDK's own work per span, not a collector's.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** True when the benchmark runs with the paywall's tracing on. */
export const TRACING = process.env.TRACING === '1';

/** Registers the dropping provider (see the file comment). */
export function registerDroppingProvider() {
  const dropping = {
    export: (_spans, done) => done({ code: 0 }),
    shutdown: async () => {},
  };
  const provider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(dropping)],
  });
  trace.setGlobalTracerProvider(provider);
}
