/**
 * Protocol-faithful doubles of the OpenAI chat completions API and the Anthropic messages API over
 * real HTTP, answering JSON or SSE in the shapes and with the usage fields those APIs document
 * (openai-node `CompletionUsage`, `ChatCompletionChunk`; anthropic-sdk-typescript `Usage`,
 * `MessageDeltaUsage` and the streaming event order): an OpenAI stream reports usage only when
 * asked with `stream_options.include_usage`, in one extra chunk with `choices: []` before
 * `data: [DONE]`; an Anthropic stream reports the input side in `message_start` and cumulative
 * output counts in `message_delta`. What each answer says is set by the test (`next`, and for
 * one request of many at once the OpenAI double's `x-test-completion-tokens` header); the doubles
 * record what they received.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, startUpstream, type Upstream } from './support.js';

/** OpenAI's `CompletionUsage`, as sent. */
export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number };
}

/** Anthropic's `Usage`, as sent. */
export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

/** What the next answer says and does. */
export interface Script<U> {
  /** The text, in the pieces a stream sends. */
  pieces: string[];
  usage: U;
  /** Answer with this error status (the API's error body) instead. */
  errorStatus?: number;
  /** A stream waits after its first content piece until this settles. */
  hold?: Promise<void>;
  /** OpenAI: the connection breaks after half the JSON answer, or after a stream's first piece. */
  cut?: boolean;
}

/** A received request. */
export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/** A running double. */
export interface LlmDouble extends Upstream {
  /** What the following answers say (reset to the default by `reset`). */
  next: Script<unknown>;
  received: Received[];
  /** Resolves when a stream has sent its first piece and is holding. */
  holding(): Promise<void>;
  /** True once the client side of a held stream went away. */
  readonly abandoned: boolean;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};
const JSON_HEADERS = { 'content-type': 'application/json' };

function sse(res: ServerResponse, data: unknown, event?: string): void {
  const line = `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
  res.write(event === undefined ? line : `event: ${event}\n${line}`);
}

interface DoubleState {
  next: Script<unknown>;
  received: Received[];
  holding: Array<() => void>;
  abandoned: boolean;
}

async function startDouble(
  defaults: Script<unknown>,
  authorized: (req: IncomingMessage) => boolean,
  answer: (
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
    state: DoubleState,
  ) => Promise<void>,
  unauthorized: (res: ServerResponse) => void,
): Promise<LlmDouble> {
  const state: DoubleState = { next: defaults, received: [], holding: [], abandoned: false };
  const upstream = await startUpstream(async (req, res) => {
    const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<
      string,
      unknown
    >;
    state.received.push({ path: req.url ?? '', headers: req.headers, body });
    if (!authorized(req)) return unauthorized(res);
    await answer(req, res, body, state);
  });
  return {
    ...upstream,
    get next() {
      return state.next;
    },
    set next(script) {
      state.next = script;
    },
    received: state.received,
    holding: () => new Promise((resolve) => state.holding.push(resolve)),
    get abandoned() {
      return state.abandoned;
    },
  };
}

/** Waits for `hold` after the first piece; notes a client gone meanwhile. */
async function holdStream(res: ServerResponse, state: DoubleState): Promise<boolean> {
  const { hold } = state.next;
  if (hold === undefined) return true;
  res.once('close', () => {
    if (!res.writableFinished) state.abandoned = true;
  });
  for (const resolve of state.holding.splice(0)) resolve();
  await hold;
  return !res.destroyed;
}

/** The default OpenAI answer: "Hello!" in three pieces, its usage with cached prompt tokens. */
export const OPENAI_SCRIPT: Script<OpenAiUsage> = {
  pieces: ['Hel', 'lo', '!'],
  usage: {
    prompt_tokens: 1200,
    completion_tokens: 300,
    total_tokens: 1500,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  },
};

/** `script` with `completion_tokens` set by a request's header, when it has one. */
function withCompletionTokens(
  script: Script<OpenAiUsage>,
  header: string | string[] | undefined,
): Script<OpenAiUsage> {
  if (typeof header !== 'string') return script;
  const completion = Number(header);
  const { usage } = script;
  return {
    ...script,
    usage: {
      ...usage,
      completion_tokens: completion,
      total_tokens: usage.prompt_tokens + completion,
    },
  };
}

/**
 * Starts an OpenAI-compatible double: `POST …/chat/completions`, authorised by
 * `Authorization: Bearer <key>` (any request when `key` is undefined, as a local server).
 */
export function startOpenAiDouble(key: string | undefined): Promise<LlmDouble> {
  return startDouble(
    OPENAI_SCRIPT,
    (req) => key === undefined || req.headers.authorization === `Bearer ${key}`,
    async (req, res, body, state) => {
      const script = withCompletionTokens(
        state.next as Script<OpenAiUsage>,
        req.headers['x-test-completion-tokens'],
      );
      if (script.errorStatus !== undefined) {
        res.writeHead(script.errorStatus, JSON_HEADERS);
        res.end(
          JSON.stringify({
            error: {
              message: 'Rate limit reached',
              type: 'requests',
              param: null,
              code: 'rate_limit_exceeded',
            },
          }),
        );
        return;
      }
      const base = {
        id: 'chatcmpl-T1',
        created: 1_767_225_600,
        model: String(body.model),
        system_fingerprint: 'fp_t1',
      };
      if (body.stream !== true) {
        const answer = JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: script.pieces.join(''),
                refusal: null,
                annotations: [],
              },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage: script.usage,
          service_tier: 'default',
        });
        res.writeHead(200, JSON_HEADERS);
        if (script.cut === true) {
          res.write(answer.slice(0, answer.length / 2));
          setTimeout(() => res.destroy(), 20);
          return;
        }
        res.end(answer);
        return;
      }
      const options = body.stream_options as { include_usage?: boolean } | undefined;
      const withUsage = options?.include_usage === true;
      const chunk = (choices: unknown[]) => ({
        ...base,
        object: 'chat.completion.chunk',
        choices,
        ...(withUsage ? { usage: null } : {}),
      });
      res.writeHead(200, SSE_HEADERS);
      sse(
        res,
        chunk([
          {
            index: 0,
            delta: { role: 'assistant', content: '', refusal: null },
            logprobs: null,
            finish_reason: null,
          },
        ]),
      );
      for (const [index, piece] of script.pieces.entries()) {
        sse(res, {
          ...chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]),
          obfuscation: 'x7',
        });
        if (index === 0 && script.cut === true) {
          setTimeout(() => res.destroy(), 20);
          return;
        }
        if (index === 0 && !(await holdStream(res, state))) return;
      }
      sse(res, chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]));
      if (withUsage)
        sse(res, { ...base, object: 'chat.completion.chunk', choices: [], usage: script.usage });
      sse(res, '[DONE]');
      res.end();
    },
    (res) => {
      res.writeHead(401, JSON_HEADERS);
      res.end(
        JSON.stringify({
          error: {
            message: 'Incorrect API key provided',
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_api_key',
          },
        }),
      );
    },
  );
}

/** The default Anthropic answer: "Hello!" in three pieces, with cache writes and reads. */
export const ANTHROPIC_SCRIPT: Script<AnthropicUsage> = {
  pieces: ['Hel', 'lo', '!'],
  usage: {
    input_tokens: 40,
    cache_creation_input_tokens: 500,
    cache_read_input_tokens: 2000,
    output_tokens: 250,
  },
};

/** Starts an Anthropic messages double: `POST …/messages`, `x-api-key` and `anthropic-version` required. */
export function startAnthropicDouble(key: string): Promise<LlmDouble> {
  return startDouble(
    ANTHROPIC_SCRIPT,
    (req) => req.headers['x-api-key'] === key && req.headers['anthropic-version'] === '2023-06-01',
    async (_req, res, body, state) => {
      const script = state.next as Script<AnthropicUsage>;
      if (script.errorStatus !== undefined) {
        res.writeHead(script.errorStatus, JSON_HEADERS);
        res.end(
          JSON.stringify({
            type: 'error',
            error: { type: 'overloaded_error', message: 'Overloaded' },
          }),
        );
        return;
      }
      const message = {
        id: 'msg_01T1',
        type: 'message',
        role: 'assistant',
        model: String(body.model),
        stop_sequence: null,
      };
      const usage = { ...script.usage, service_tier: 'standard' };
      if (body.stream !== true) {
        res.writeHead(200, JSON_HEADERS);
        res.end(
          JSON.stringify({
            ...message,
            content: [{ type: 'text', text: script.pieces.join('') }],
            stop_reason: 'end_turn',
            usage,
          }),
        );
        return;
      }
      res.writeHead(200, SSE_HEADERS);
      sse(
        res,
        {
          type: 'message_start',
          message: {
            ...message,
            content: [],
            stop_reason: null,
            usage: { ...usage, output_tokens: 1 },
          },
        },
        'message_start',
      );
      sse(
        res,
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        'content_block_start',
      );
      sse(res, { type: 'ping' }, 'ping');
      for (const [index, piece] of script.pieces.entries()) {
        sse(
          res,
          { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } },
          'content_block_delta',
        );
        if (index === 0 && !(await holdStream(res, state))) return;
      }
      sse(res, { type: 'content_block_stop', index: 0 }, 'content_block_stop');
      sse(
        res,
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: script.usage.output_tokens },
        },
        'message_delta',
      );
      sse(res, { type: 'message_stop' }, 'message_stop');
      res.end();
    },
    (res) => {
      res.writeHead(401, JSON_HEADERS);
      res.end(
        JSON.stringify({
          type: 'error',
          error: { type: 'authentication_error', message: 'invalid x-api-key' },
        }),
      );
    },
  );
}

/**
 * The YAML lines (under `services:`) of an `llm` service in front of the OpenAI double at
 * `${UPSTREAM}` with its key from `${OPENAI_API_KEY}`, selling a balance of `balanceMsat`, with
 * gpt-4o-mini at 1 msat per input token and 4 per output token.
 */
export function openAiServiceLines(balanceMsat: bigint): string[] {
  return [
    '  - name: llm',
    '    path: /v1',
    '    upstream: ${UPSTREAM}',
    '    stripPrefix: true',
    "    headers: { authorization: 'Bearer ${OPENAI_API_KEY}' }",
    `    balance: ${balanceMsat} msat`,
    '    llm:',
    "      models: { gpt-4o-mini: { input: '1000 sat', output: '4000 sat' } }",
  ];
}
