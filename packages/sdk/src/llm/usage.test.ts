import { describe, expect, it } from 'vitest';
import { createStreamUsage, usageOfAnswer } from './usage.js';

// Answers in the shapes each API documents (openai-node and anthropic-sdk-typescript types).
const chatCompletion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
  usage: {
    prompt_tokens: 1200,
    completion_tokens: 300,
    total_tokens: 1500,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 100 },
  },
};

const response = {
  id: 'resp_1',
  object: 'response',
  status: 'completed',
  usage: {
    input_tokens: 500,
    input_tokens_details: { cached_tokens: 100 },
    output_tokens: 80,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 580,
  },
};

const message = {
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  content: [{ type: 'text', text: 'Hi' }],
  usage: {
    input_tokens: 20,
    cache_creation_input_tokens: 100,
    cache_read_input_tokens: 2000,
    output_tokens: 50,
  },
};

describe('usageOfAnswer', () => {
  it('reads chat completions (cached prompt tokens apart), completions and embeddings', () => {
    expect(usageOfAnswer(chatCompletion)).toEqual({
      inputTokens: 176,
      cachedInputTokens: 1024,
      outputTokens: 300,
    });
    expect(
      usageOfAnswer({
        object: 'text_completion',
        usage: { prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 },
      }),
    ).toEqual({ inputTokens: 7, cachedInputTokens: 0, outputTokens: 9 });
    expect(usageOfAnswer({ object: 'list', usage: { prompt_tokens: 8, total_tokens: 8 } })).toEqual(
      { inputTokens: 8, cachedInputTokens: 0, outputTokens: 0 },
    );
  });

  it('reads the responses API and Anthropic messages (cache writes as input, reads as cached)', () => {
    expect(usageOfAnswer(response)).toEqual({
      inputTokens: 400,
      cachedInputTokens: 100,
      outputTokens: 80,
    });
    expect(usageOfAnswer(message)).toEqual({
      inputTokens: 120,
      cachedInputTokens: 2000,
      outputTokens: 50,
    });
  });

  it('reports nothing for answers without usage, or with malformed counts', () => {
    for (const answer of [
      {},
      null,
      'text',
      { usage: null },
      { usage: { prompt_tokens: -1 } },
      { usage: { prompt_tokens: 1.5, completion_tokens: 2 } },
      { usage: { input_tokens: 3 } },
    ]) {
      const usage = usageOfAnswer(answer);
      expect(usage === undefined || Number.isSafeInteger(usage.inputTokens)).toBe(true);
    }
    expect(usageOfAnswer({ usage: { input_tokens: 3 } })).toBeUndefined();
  });
});

describe('createStreamUsage', () => {
  it('takes the final chat chunk (choices: []), ignoring usage: null on the others', () => {
    const stream = createStreamUsage();
    stream.event({
      object: 'chat.completion.chunk',
      choices: [{ delta: { content: 'H' } }],
      usage: null,
    });
    expect(stream.usage()).toBeUndefined();
    stream.event({
      object: 'chat.completion.chunk',
      choices: [],
      usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
    });
    expect(stream.usage()).toEqual({ inputTokens: 10, cachedInputTokens: 0, outputTokens: 4 });
  });

  it('takes response.usage of the responses terminal events', () => {
    for (const type of ['response.completed', 'response.incomplete', 'response.failed']) {
      const stream = createStreamUsage();
      stream.event({ type: 'response.output_text.delta', delta: 'x', sequence_number: 3 });
      stream.event({ type, sequence_number: 9, response });
      expect(stream.usage()).toEqual({
        inputTokens: 400,
        cachedInputTokens: 100,
        outputTokens: 80,
      });
    }
  });

  it('merges Anthropic message_start with the last, cumulative message_delta', () => {
    const stream = createStreamUsage();
    stream.event({
      type: 'message_start',
      message: { ...message, usage: { ...message.usage, output_tokens: 1 } },
    });
    stream.event({
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: 'Hi' },
    });
    stream.event({
      type: 'message_delta',
      delta: { stop_reason: null },
      usage: { output_tokens: 20 },
    });
    stream.event({ type: 'ping' });
    stream.event({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn' },
      usage: { output_tokens: 50 },
    });
    stream.event({ type: 'message_stop' });
    expect(stream.usage()).toEqual({ inputTokens: 120, cachedInputTokens: 2000, outputTokens: 50 });
  });
});
