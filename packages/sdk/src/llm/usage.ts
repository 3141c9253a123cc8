/**
 * Token usage as OpenAI-compatible APIs (chat completions, completions, responses, embeddings) and
 * Anthropic's messages API report it, in JSON answers and in SSE streams, normalised to what a
 * price table charges: uncached input, cached input, and output tokens.
 *
 * Field rules (from each API's documented types):
 * - OpenAI chat completions, completions, embeddings: `usage.prompt_tokens` (of which
 *   `prompt_tokens_details.cached_tokens` were cached) and `usage.completion_tokens`; when
 *   streaming, one last chunk carries `usage` (only with `stream_options.include_usage`).
 * - OpenAI responses: `usage.input_tokens` (of which `input_tokens_details.cached_tokens` cached)
 *   and `usage.output_tokens`; when streaming, in `response.usage` of the `response.completed`,
 *   `response.incomplete` or `response.failed` event.
 * - Anthropic messages: `usage.input_tokens` (uncached), `cache_creation_input_tokens` (charged
 *   as input), `cache_read_input_tokens` (cached) and `output_tokens`; when streaming,
 *   `message_start` carries the input side and each `message_delta` the cumulative counts, which
 *   replace earlier ones.
 */
import { isRecord } from '../internal/is-record.js';

/** What a price table charges. */
export interface LlmUsage {
  /** Input tokens charged at the input price (not read from a cache). */
  inputTokens: number;
  /** Input tokens read from a cache, charged at the cached-input price. */
  cachedInputTokens: number;
  outputTokens: number;
}

/** Counts seen so far in an Anthropic stream, field by field (later values replace earlier). */
type AnthropicCounts = Partial<
  Record<
    'input_tokens' | 'output_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens',
    number
  >
>;

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The usage of an OpenAI-style `usage` object (chat, completions, embeddings, responses). */
function openAiUsage(usage: Record<string, unknown>): LlmUsage | undefined {
  const prompt = count(usage.prompt_tokens);
  if (prompt !== undefined) {
    const details = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {};
    const cached = Math.min(count(details.cached_tokens) ?? 0, prompt);
    return {
      inputTokens: prompt - cached,
      cachedInputTokens: cached,
      outputTokens: count(usage.completion_tokens) ?? 0,
    };
  }
  const input = count(usage.input_tokens);
  const output = count(usage.output_tokens);
  if (input === undefined || output === undefined) return undefined;
  const details = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : {};
  const cached = Math.min(count(details.cached_tokens) ?? 0, input);
  return { inputTokens: input - cached, cachedInputTokens: cached, outputTokens: output };
}

/** An Anthropic `usage` object, or the counts of a stream merged so far. */
function anthropicUsage(counts: AnthropicCounts): LlmUsage | undefined {
  if (counts.input_tokens === undefined || counts.output_tokens === undefined) return undefined;
  return {
    inputTokens: counts.input_tokens + (counts.cache_creation_input_tokens ?? 0),
    cachedInputTokens: counts.cache_read_input_tokens ?? 0,
    outputTokens: counts.output_tokens,
  };
}

function isAnthropicUsage(usage: Record<string, unknown>): boolean {
  return (
    'cache_creation_input_tokens' in usage ||
    'cache_read_input_tokens' in usage ||
    (!('total_tokens' in usage) && !('input_tokens_details' in usage) && 'input_tokens' in usage)
  );
}

function anthropicCounts(usage: Record<string, unknown>): AnthropicCounts {
  const counts: AnthropicCounts = {};
  for (const field of [
    'input_tokens',
    'output_tokens',
    'cache_creation_input_tokens',
    'cache_read_input_tokens',
  ] as const) {
    const value = count(usage[field]);
    if (value !== undefined) counts[field] = value;
  }
  return counts;
}

/**
 * The usage a whole JSON answer reports, or undefined when it reports none.
 *
 * @example
 * ```ts
 * usageOfAnswer({ usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } });
 * // { inputTokens: 12, cachedInputTokens: 0, outputTokens: 30 }
 * ```
 */
export function usageOfAnswer(answer: unknown): LlmUsage | undefined {
  if (!isRecord(answer) || !isRecord(answer.usage)) return undefined;
  const { usage } = answer;
  return isAnthropicUsage(usage) ? anthropicUsage(anthropicCounts(usage)) : openAiUsage(usage);
}

/** Reads the usage of a stream's events, one parsed `data:` payload at a time. */
export interface StreamUsage {
  /** One event's parsed data. */
  event(data: unknown): void;
  /** The usage reported so far (the final one once the stream ended). */
  usage(): LlmUsage | undefined;
}

/**
 * Follows an SSE stream of any of the APIs above.
 *
 * @example
 * ```ts
 * const stream = createStreamUsage();
 * for (const data of events) stream.event(data);
 * stream.usage();
 * ```
 */
export function createStreamUsage(): StreamUsage {
  let openAi: LlmUsage | undefined;
  let anthropic: AnthropicCounts | undefined;
  return {
    event(data) {
      if (!isRecord(data)) return;
      const { type } = data;
      if (type === 'message_start' && isRecord(data.message) && isRecord(data.message.usage)) {
        anthropic = { ...anthropic, ...anthropicCounts(data.message.usage) };
      } else if (type === 'message_delta' && isRecord(data.usage)) {
        anthropic = { ...anthropic, ...anthropicCounts(data.usage) };
      } else if (
        (type === 'response.completed' ||
          type === 'response.incomplete' ||
          type === 'response.failed') &&
        isRecord(data.response) &&
        isRecord(data.response.usage)
      ) {
        openAi = openAiUsage(data.response.usage) ?? openAi;
      } else if (isRecord(data.usage)) {
        openAi = openAiUsage(data.usage) ?? openAi;
      }
    },
    usage() {
      return openAi ?? (anthropic === undefined ? undefined : anthropicUsage(anthropic));
    },
  };
}
