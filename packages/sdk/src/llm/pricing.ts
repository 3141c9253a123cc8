/**
 * Selling LLM access per token: a price table per model, the most a request may cost (reserved
 * from the buyer's balance before it runs), and a meter that prices the usage the answer reports.
 * Costs are exact in millisatoshis, rounded up once per request; dollar prices convert at the
 * rate source's current rate.
 */
import { TollwayError } from '../errors.js';
import { isRecord } from '../internal/is-record.js';
import { type Amount, parseAmount, type RateSource } from '../money.js';
import type { Meter } from '../server/meter.js';
import type { PriceFunction } from '../server/pricing.js';
import { createAnswerReader } from './answer-reader.js';
import type { LlmUsage } from './usage.js';

/**
 * Prices of one model per million tokens, in sats (`'150 sat'`, `'0.5 sat'`) or dollars
 * (`'$0.15'`); all three in one unit. `cachedInput` defaults to `input`.
 */
export interface ModelPrices {
  input: string;
  output: string;
  cachedInput?: string;
}

/** Options of {@link createLlmPricing}. */
export interface LlmPricingOptions {
  /** The price table: model name (as requests send it) → prices. */
  models: Readonly<Record<string, ModelPrices>>;
  /** Prices of models the table does not list. Default: such requests are refused (400 `invalid_model`). */
  defaultPrices?: ModelPrices;
  /** Output tokens held for a request that sets no `max_tokens`. Default 4096. */
  defaultMaxTokens?: number;
  /** Converts dollar prices; required when the table has any. */
  rates?: RateSource;
  /**
   * Told the usage each metered answer reported and its cost (msat, before it is capped at what
   * was held), e.g. for per-model metrics. Not told of answers that reported no usage.
   */
  onUsage?: (reading: UsageReading) => void;
}

/** What {@link LlmPricingOptions.onUsage} is told. */
export interface UsageReading {
  /** The model as the request named it. */
  model: string;
  usage: LlmUsage;
  costMsat: bigint;
}

/** See {@link createLlmPricing}. */
export interface LlmPricing {
  /**
   * The route's `price`: the most a request may cost — its input (at most one token per byte of
   * its JSON body) and `max_tokens` (or `max_completion_tokens`, `max_output_tokens`, else the
   * default) of output, at the model's prices.
   */
  price: PriceFunction;
  /** The route's `meter`: the usage the answer reports, at the model's prices. */
  meter: Meter;
  /** The cost of `usage` on `model`, msat (exact, rounded up). Throws `invalid_model`. */
  cost(model: string, usage: LlmUsage): Promise<bigint>;
  /** The model a request body names, or undefined. */
  modelOf(body: unknown): string | undefined;
}

/** One model's prices, per million tokens, in one unit. */
interface Table {
  unit: 'msat' | 'usd';
  input: bigint;
  cachedInput: bigint;
  output: bigint;
}

const DEFAULT_MAX_TOKENS = 4096;
/** How many models a refusal of an unknown model lists. */
const MODELS_NAMED = 20;
const MILLION = 1_000_000n;

function amountOf(amount: Amount): bigint {
  return amount.unit === 'msat' ? amount.msat : amount.microUsd;
}

function readPrices(name: string, prices: ModelPrices): Table {
  const read = (text: string, what: string): Amount => {
    try {
      return parseAmount(text);
    } catch (cause) {
      throw new TollwayError('invalid_price', `model ${name}: ${what} is not a price: ${text}`, {
        cause,
      });
    }
  };
  const input = read(prices.input, 'input');
  const output = read(prices.output, 'output');
  const cachedInput =
    prices.cachedInput === undefined ? input : read(prices.cachedInput, 'cachedInput');
  if (input.unit !== output.unit || cachedInput.unit !== input.unit) {
    throw new TollwayError('invalid_price', `model ${name}: give its prices in one unit`);
  }
  return {
    unit: input.unit,
    input: amountOf(input),
    output: amountOf(output),
    cachedInput: amountOf(cachedInput),
  };
}

function tokens(value: unknown): bigint | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
    ? BigInt(value)
    : undefined;
}

/**
 * Creates the pricing of an LLM route. Throws `invalid_price` for a malformed table, and
 * `invalid_config` for dollar prices without a rate source.
 *
 * @example
 * ```ts
 * const llm = createLlmPricing({
 *   models: { 'gpt-4o-mini': { input: '$0.15', output: '$0.60', cachedInput: '$0.075' } },
 *   rates: fixedRate('100000'),
 * });
 * const chat = paywall.route({ service: 'llm', readsBody: true, price: llm.price, meter: llm.meter, balance: '5000 sat' });
 * ```
 */
export function createLlmPricing(options: LlmPricingOptions): LlmPricing {
  const tables = new Map<string, Table>();
  for (const [name, prices] of Object.entries(options.models)) {
    tables.set(name, readPrices(name, prices));
  }
  const fallback =
    options.defaultPrices === undefined
      ? undefined
      : readPrices('(default)', options.defaultPrices);
  const all = [...tables.values(), ...(fallback === undefined ? [] : [fallback])];
  if (all.some((table) => table.unit === 'usd') && options.rates === undefined) {
    throw new TollwayError('invalid_config', 'dollar prices need a rate source (option `rates`)');
  }
  const maxTokensDefault = BigInt(options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS);

  /** The models a refusal names: the table's first ones. */
  const offered = [...tables.keys()].slice(0, MODELS_NAMED).join(', ');

  function tableOf(model: string | undefined): Table {
    const table = (model === undefined ? undefined : tables.get(model)) ?? fallback;
    if (table === undefined) {
      const refused =
        model === undefined
          ? 'the request names no model'
          : `the model ${model.slice(0, 100)} is not offered here`;
      throw new TollwayError('invalid_model', `${refused}; models offered: ${offered}`);
    }
    return table;
  }

  /** Σ tokens × price per million, in msat, exact then rounded up once. */
  async function toMsat(table: Table, perMillionTotal: bigint): Promise<bigint> {
    if (table.unit === 'msat') return ceilDiv(perMillionTotal, MILLION);
    const rate = await (options.rates as RateSource).usdPerBtc();
    // micro-dollars = total / 1e6; msat = micro-dollars × 1e5 × denominator / numerator.
    return ceilDiv(perMillionTotal * rate.denominator, rate.numerator * 10n);
  }

  function modelOf(body: unknown): string | undefined {
    return isRecord(body) && typeof body.model === 'string' ? body.model : undefined;
  }

  async function cost(model: string, usage: LlmUsage): Promise<bigint> {
    const table = tableOf(model);
    const total =
      BigInt(usage.inputTokens) * table.input +
      BigInt(usage.cachedInputTokens) * table.cachedInput +
      BigInt(usage.outputTokens) * table.output;
    return toMsat(table, total);
  }

  const price: PriceFunction = async (request) => {
    const body = request.body;
    const table = tableOf(modelOf(body));
    const record = isRecord(body) ? body : {};
    const maxOutput =
      tokens(record.max_tokens) ??
      tokens(record.max_completion_tokens) ??
      tokens(record.max_output_tokens) ??
      maxTokensDefault;
    const maxInput = BigInt(utf8Length(JSON.stringify(body ?? null)));
    const dearestInput = largest(table.input, table.cachedInput);
    return toMsat(table, maxInput * dearestInput + maxOutput * table.output);
  };

  const meter: Meter = {
    open(answer) {
      const model = modelOf(answer.request.body);
      const reader = createAnswerReader();
      return {
        write: (chunk) => reader.write(chunk),
        cost() {
          const usage = reader.usage();
          if (usage === undefined || model === undefined) return undefined;
          const { onUsage } = options;
          if (onUsage === undefined) return cost(model, usage);
          return cost(model, usage).then((costMsat) => {
            onUsage({ model, usage, costMsat });
            return costMsat;
          });
        },
      };
    },
  };

  return { price, meter, cost, modelOf };
}

/** The length of `text` in UTF-8 bytes (as `TextEncoder` encodes it), counted without encoding it. */
function utf8Length(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) {
      length += 1;
      continue;
    }
    length += 2;
    // A surrogate pair is 4 bytes for its two code units: the second adds nothing.
    const next = text.charCodeAt(i + 1);
    if (code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
  }
  return length;
}

/** The larger amount (`Math.max` takes no bigints). */
function largest(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}
