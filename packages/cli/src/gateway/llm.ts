/**
 * A gateway service that sells LLM access per token (its `llm` block): the model table becomes
 * the route's price (what a call may cost, held from the buyer's balance) and meter (what the
 * answer's usage cost), and each call is routed by the model its body names to the provider that
 * serves it. On the way, the body is changed where the call needs it: the model renamed to the
 * provider's name for it, and an OpenAI-style stream asked to report its usage when the client did
 * not ask (the gateway then drops that extra chunk from what the client receives). Guide:
 * docs/guides/llm.md.
 */
import { fixedRate } from '@tollway/sdk';
import { createLlmPricing, type ModelPrices, type UsageReading } from '@tollway/sdk/llm';
import type { Meter, PriceFunction } from '@tollway/sdk/server';
import type { LlmConfig } from './config.js';
import { isRecord } from './is-record.js';

/** The label of models priced by `defaultPrices` in metrics (their names are the buyers' to pick). */
const DEFAULT_MODEL_LABEL = '(default)';

/** One call as the gateway forwards it. */
export interface LlmCall {
  /** The provider that serves it: a name of `llm.providers`, or undefined for the service's upstream. */
  provider: string | undefined;
  /** The model's name in the table, or {@link DEFAULT_MODEL_LABEL}: its metrics label. */
  model: string;
  /** The JSON body to send instead of the client's, when the gateway changed it. */
  body: Uint8Array | undefined;
  /** The gateway asked for stream usage itself: the usage-only chunk is not passed on. */
  dropsUsageChunk: boolean;
}

/** What a service's `llm` block compiles to; see {@link createLlmRouting}. */
export interface LlmRouting {
  /** The route's price: the most a call may cost (its reservation). */
  price: PriceFunction;
  /** The route's meter: the cost of the usage the answer reports. */
  meter: Meter;
  /** How the call with this JSON body, sent to this path, is forwarded. */
  plan(body: unknown, path: string): LlmCall;
}

/** Options of {@link createLlmRouting}. */
export interface LlmRoutingOptions {
  /** `paywall.usdPerBtc`: converts dollar prices. */
  usdPerBtc: string | number | undefined;
  /** Told the usage of each metered answer, by the model's metrics label. */
  onUsage?: (model: string, reading: UsageReading) => void;
}

const encoder = new TextEncoder();

function pricesOf(entry: ModelPrices): ModelPrices {
  return {
    input: entry.input,
    output: entry.output,
    ...(entry.cachedInput === undefined ? {} : { cachedInput: entry.cachedInput }),
  };
}

/**
 * Whether a call streams OpenAI-style chunks that report usage only when asked
 * (`stream_options.include_usage`): chat completions and completions with `stream: true`.
 */
function withholdsStreamUsage(body: Record<string, unknown>, path: string): boolean {
  if (body.stream !== true || !path.endsWith('/completions')) return false;
  const options = body.stream_options;
  return !(isRecord(options) && options.include_usage === true);
}

/**
 * Compiles an `llm` block. Throws `invalid_price` / `invalid_config` for a table the engine cannot
 * price (the config check catches these first).
 *
 * @example
 * ```ts
 * const llm = createLlmRouting(config.llm, { usdPerBtc: '100000' });
 * paywall.route({ service: 'llm', readsBody: true, price: llm.price, meter: llm.meter, balance: '5000 sat' });
 * const call = llm.plan(body, '/v1/chat/completions');
 * ```
 */
export function createLlmRouting(config: LlmConfig, options: LlmRoutingOptions): LlmRouting {
  const { onUsage } = options;
  const pricing = createLlmPricing({
    models: Object.fromEntries(
      Object.entries(config.models).map(([name, entry]) => [name, pricesOf(entry)]),
    ),
    ...(config.defaultPrices === undefined
      ? {}
      : { defaultPrices: pricesOf(config.defaultPrices) }),
    ...(config.defaultMaxTokens === undefined ? {} : { defaultMaxTokens: config.defaultMaxTokens }),
    ...(options.usdPerBtc === undefined ? {} : { rates: fixedRate(options.usdPerBtc) }),
    ...(onUsage === undefined
      ? {}
      : {
          onUsage: (reading: UsageReading) => onUsage(labelOf(reading.model), reading),
        }),
  });

  function labelOf(model: string): string {
    return Object.hasOwn(config.models, model) ? model : DEFAULT_MODEL_LABEL;
  }

  return {
    price: pricing.price,
    meter: pricing.meter,
    plan(body, path) {
      const requested = pricing.modelOf(body) ?? '';
      const label = labelOf(requested);
      const entry = label === DEFAULT_MODEL_LABEL ? config.defaultPrices : config.models[requested];
      const record = isRecord(body) ? body : {};
      const rename = config.models[requested]?.upstreamModel;
      const askUsage = withholdsStreamUsage(record, path);
      let changed: Record<string, unknown> | undefined;
      if (rename !== undefined) changed = { ...record, model: rename };
      if (askUsage) {
        const streamOptions = isRecord(record.stream_options) ? record.stream_options : {};
        changed = {
          ...(changed ?? record),
          stream_options: { ...streamOptions, include_usage: true },
        };
      }
      return {
        provider: entry?.provider,
        model: label,
        body: changed === undefined ? undefined : encoder.encode(JSON.stringify(changed)),
        dropsUsageChunk: askUsage,
      };
    },
  };
}
