/**
 * Per-service Prometheus metrics of the proxied path, kept as plain numbers: a request adds to a
 * counter or a histogram bucket and nothing else. prom-client's own Counter and Histogram check
 * and hash their label values on every update, bound children included (about 0.8 µs each, three
 * per proxied request); these are read by the registry only when it is scraped, through the same
 * `get()` its own metrics answer.
 */
import type { Histogram, Registry } from 'prom-client';

/** A value the registry prints: one line of the exposition. */
interface SampleValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What `Registry.metrics()` reads from a metric: the interface prom-client's classes share. */
interface RegisteredMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{
    name: string;
    help: string;
    type: 'counter' | 'histogram';
    aggregator: 'sum';
    values: SampleValue[];
  }>;
  reset(): void;
}

function register(registry: Registry, metric: RegisteredMetric): void {
  // The registry's type lists prom-client's classes; what it calls is the interface above.
  registry.registerMetric(metric as unknown as Histogram);
}

/** One series of a {@link registerTotalsCounter}: its labels, in the order printed, and its value. */
export interface TotalsSeries {
  labels: Record<string, string>;
  value: number;
}

/**
 * Registers a counter whose series are read from totals the caller keeps anyway, when the
 * registry is scraped: counting costs the caller's own addition and nothing more. Its `reset()`
 * calls `options.reset` (default: the caller's totals stay as they are).
 *
 * @example
 * ```ts
 * registerTotalsCounter(registry, { name: 'calls_total', help: 'Calls.', series: () => [{ labels: { service: 'a' }, value: calls }] });
 * ```
 */
export function registerTotalsCounter(
  registry: Registry,
  options: { name: string; help: string; series: () => TotalsSeries[]; reset?: () => void },
): void {
  const { name, help, reset = () => {} } = options;
  register(registry, {
    name,
    help,
    type: 'counter',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      values: options.series().map(({ labels, value }) => ({ metricName: name, labels, value })),
    }),
    reset,
  });
}

/** A counter by service and one more label, each series a number in a map. */
export interface ServiceCounter {
  /** The series of `service` with `value` for the second label: `inc()` adds one. */
  series(service: string, value: string): { inc(): void };
}

/**
 * Creates a counter labelled `service` and `label` in `registry`.
 *
 * @example
 * ```ts
 * const requests = createServiceCounter(registry, { name: 'tollway_requests_total', help: '…', label: 'outcome' });
 * requests.series('weather', 'paid').inc();
 * ```
 */
export function createServiceCounter(
  registry: Registry,
  options: { name: string; help: string; label: string },
): ServiceCounter {
  const { name, help, label } = options;
  const all = new Map<string, { service: string; value: string; count: number }>();
  registerTotalsCounter(registry, {
    name,
    help,
    series: () =>
      [...all.values()].map((s) => ({
        labels: { service: s.service, [label]: s.value },
        value: s.count,
      })),
    reset: () => {
      for (const series of all.values()) series.count = 0;
    },
  });
  return {
    series(service, value) {
      const key = `${service}\n${value}`;
      let series = all.get(key);
      if (series === undefined) {
        series = { service, value, count: 0 };
        all.set(key, series);
      }
      const counted = series;
      return {
        inc() {
          counted.count += 1;
        },
      };
    },
  };
}

/** A histogram by service, each series its bucket counts, sum and count. */
export interface ServiceHistogram {
  /** The series of `service`: `observe(value)` counts one value. */
  series(service: string): { observe(value: number): void };
}

/**
 * Creates a histogram labelled `service` in `registry`, with `buckets` (upper bounds, ascending).
 *
 * @example
 * ```ts
 * const overhead = createServiceHistogram(registry, { name: 'tollway_gateway_overhead_seconds', help: '…', buckets: [0.001, 0.01] });
 * overhead.series('weather').observe(0.0004);
 * ```
 */
export function createServiceHistogram(
  registry: Registry,
  options: { name: string; help: string; buckets: readonly number[] },
): ServiceHistogram {
  const { name, help, buckets } = options;
  const all = new Map<string, { counts: number[]; sum: number; count: number }>();
  const values = (service: string, s: { counts: number[]; sum: number; count: number }) => {
    let cumulative = 0;
    const out: SampleValue[] = buckets.map((le, i) => {
      cumulative += s.counts[i] ?? 0;
      return { metricName: `${name}_bucket`, labels: { le, service }, value: cumulative };
    });
    out.push(
      { metricName: `${name}_bucket`, labels: { le: '+Inf', service }, value: s.count },
      { metricName: `${name}_sum`, labels: { service }, value: s.sum },
      { metricName: `${name}_count`, labels: { service }, value: s.count },
    );
    return out;
  };
  register(registry, {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [...all].flatMap(([service, s]) => values(service, s)),
    }),
    reset: () => {
      for (const series of all.values()) {
        series.counts.fill(0);
        series.sum = 0;
        series.count = 0;
      }
    },
  });
  return {
    series(service) {
      let series = all.get(service);
      if (series === undefined) {
        series = { counts: buckets.map(() => 0), sum: 0, count: 0 };
        all.set(service, series);
      }
      const { counts } = series;
      const counted = series;
      return {
        observe(value) {
          let i = 0;
          while (i < buckets.length && value > (buckets[i] ?? 0)) i += 1;
          if (i < counts.length) counts[i] = (counts[i] ?? 0) + 1;
          counted.sum += value;
          counted.count += 1;
        },
      };
    },
  };
}
