import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGatewayMetrics } from '../../src/gateway/metrics.js';
import { createServiceCounter, createServiceHistogram } from '../../src/gateway/service-metrics.js';

const BUCKETS = [0.0001, 0.001, 0.01, 0.1, 1];
const services = fc.constantFrom('weather', 'maps', 'a "quoted" \\ name');

// prom-client's own classes are the reference: the registry must print the same text for the
// same updates, whatever their order.
describe('service metrics', () => {
  it('print as prom-client Histogram and Counter print the same observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            services,
            fc.oneof(fc.constantFrom(...BUCKETS), fc.double({ min: 0, max: 5, noNaN: true })),
          ),
          {
            maxLength: 40,
          },
        ),
        fc.array(fc.tuple(services, fc.constantFrom('paid', 'free', 'refused')), {
          maxLength: 40,
        }),
        async (observations, increments) => {
          const ours = new Registry();
          const histogram = createServiceHistogram(ours, {
            name: 'h_seconds',
            help: 'Help text.',
            buckets: BUCKETS,
          });
          const counter = createServiceCounter(ours, {
            name: 'c_total',
            help: 'Other help.',
            label: 'outcome',
          });
          const theirs = new Registry();
          const reference = new Histogram({
            name: 'h_seconds',
            help: 'Help text.',
            labelNames: ['service'],
            buckets: BUCKETS,
            registers: [theirs],
          });
          const referenceCounter = new Counter({
            name: 'c_total',
            help: 'Other help.',
            labelNames: ['service', 'outcome'],
            registers: [theirs],
          });
          for (const [service, value] of observations) {
            histogram.series(service).observe(value);
            reference.labels(service).observe(value);
          }
          for (const [service, outcome] of increments) {
            counter.series(service, outcome).inc();
            referenceCounter.labels(service, outcome).inc();
          }
          expect(await ours.metrics()).toBe(await theirs.metrics());
        },
      ),
    );
  });

  it('print the LLM counters as prom-client Counters print the same calls', async () => {
    const models = fc.constantFrom('gpt-4o', '(default)', 'a "quoted" \\ model');
    const tokens = fc.nat({ max: 100_000 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            service: services,
            model: models,
            usage: fc.option(fc.tuple(tokens, tokens, tokens), { nil: undefined }),
            charged: fc.option(fc.bigInt({ min: 0n, max: 10n ** 12n }), { nil: undefined }),
          }),
          { maxLength: 30 },
        ),
        async (calls) => {
          const metrics = createGatewayMetrics();
          const theirs = new Registry();
          const tokensCounter = new Counter({
            name: 'tollway_llm_tokens_total',
            help: 'Tokens metered LLM answers reported, by service, model and kind (input, cached_input, output).',
            labelNames: ['service', 'model', 'kind'],
            registers: [theirs],
          });
          const callsCounter = new Counter({
            name: 'tollway_llm_calls_total',
            help: 'Metered LLM calls charged, by service and model.',
            labelNames: ['service', 'model'],
            registers: [theirs],
          });
          const revenueCounter = new Counter({
            name: 'tollway_llm_revenue_msat_total',
            help: 'What metered LLM calls were charged from their balances, msat, by service and model.',
            labelNames: ['service', 'model'],
            registers: [theirs],
          });
          for (const { service, model, usage, charged } of calls) {
            if (usage !== undefined) {
              const [inputTokens, cachedInputTokens, outputTokens] = usage;
              metrics.llmUsage(service, model, { inputTokens, cachedInputTokens, outputTokens });
              tokensCounter.labels(service, model, 'input').inc(inputTokens);
              tokensCounter.labels(service, model, 'cached_input').inc(cachedInputTokens);
              tokensCounter.labels(service, model, 'output').inc(outputTokens);
            }
            if (charged !== undefined) {
              metrics.llmCharged(service, model, charged);
              callsCounter.labels(service, model).inc();
              revenueCounter.labels(service, model).inc(Number(charged));
            }
          }
          const llmLines = (text: string) =>
            text
              .split('\n')
              .filter((line) => line.includes('tollway_llm_'))
              .sort();
          expect(llmLines(await metrics.registry.metrics())).toEqual(
            llmLines(await theirs.metrics()),
          );
        },
      ),
    );
  });

  it('keeps counting through a series taken before a reset', async () => {
    const registry = new Registry();
    const histogram = createServiceHistogram(registry, {
      name: 'h_seconds',
      help: 'h',
      buckets: [1],
    });
    const series = histogram.series('weather');
    series.observe(0.5);
    registry.resetMetrics();
    series.observe(2);
    const text = await registry.metrics();
    expect(text).toContain('h_seconds_bucket{le="1",service="weather"} 0');
    expect(text).toContain('h_seconds_count{service="weather"} 1');
  });
});
