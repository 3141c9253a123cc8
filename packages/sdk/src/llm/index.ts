/**
 * `@tollway/sdk/llm`: sell LLM access per token. A price table per model, the reservation a
 * request may cost, and a meter that reads the usage OpenAI-compatible and Anthropic answers
 * report (JSON and SSE). Guide: docs/guides/llm.md.
 */
export { type AnswerReader, createAnswerReader } from './answer-reader.js';
export {
  createLlmPricing,
  type LlmPricing,
  type LlmPricingOptions,
  type ModelPrices,
  type UsageReading,
} from './pricing.js';
export { createStreamUsage, type LlmUsage, type StreamUsage, usageOfAnswer } from './usage.js';
