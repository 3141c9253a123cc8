/**
 * The sample API that `tollway dev` puts behind its gateway: a plain `node:http` server that knows
 * nothing about payments. The gateway prices its routes (see {@link SAMPLE_PRICES}).
 *
 * | route | answer |
 * |---|---|
 * | `GET /free/hello` | a greeting (free) |
 * | `GET /v1/forecast?city=Oslo` | a made-up three-day forecast |
 * | `POST /v1/chat` `{"model": "…", "prompt": "…"}` | a canned chat reply |
 * | `POST /v1/chat/completions` | an OpenAI-compatible chat completion, JSON or `stream: true` |
 * | `GET /v1/stream` | five server-sent events, 100 ms apart |
 *
 * The chat completion counts its usage deterministically, as {@link completionUsage} says, so that
 * the gateway's metered price of a call is known in advance.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Prices the dev gateway puts on the sample routes. The chat price depends on the JSON `model`. */
export const SAMPLE_PRICES = {
  forecast: '10 sat',
  stream: '20 sat',
  chat: { 'tollway-mini': '5 sat', 'tollway-max': '50 sat' },
  /** `POST /v1/chat/completions`: a balance drawn per token, at these prices per million tokens. */
  completions: {
    balance: '100 sat',
    /** Output tokens held for a call that sets no `max_tokens`. */
    defaultMaxTokens: 256,
    models: {
      'tollway-mini': { input: '20000 sat', output: '60000 sat' },
      'tollway-max': { input: '100000 sat', output: '300000 sat' },
    },
  },
} as const;

/** Options of {@link createSampleUpstream}. */
export interface SampleUpstreamOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
}

/** A listening sample API. */
export interface SampleUpstream {
  /** e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Stops listening and cuts open connections (streams included). */
  close(): Promise<void>;
}

const SKIES = ['sunny', 'cloudy', 'rain', 'snow', 'windy', 'fog'] as const;
const DAYS = ['today', 'tomorrow', 'the day after'] as const;
const MAX_BODY_BYTES = 64 * 1024;
const STREAM_EVENTS = 5;
const STREAM_INTERVAL_MS = 100;

/** A made-up forecast, the same for the same city (so a demo reads the same every run). */
function forecast(city: string): Record<string, unknown> {
  const seed = createHash('sha256').update(city.toLowerCase()).digest();
  return {
    city,
    unit: '°C',
    days: DAYS.map((day, i) => ({
      day,
      sky: SKIES[(seed[i] ?? 0) % SKIES.length],
      highC: ((seed[i + 3] ?? 0) % 30) - 5,
    })),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(`${JSON.stringify(body)}\n`);
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(size > MAX_BODY_BYTES ? undefined : JSON.parse(Buffer.concat(chunks).toString()));
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

function chat(body: unknown): { status: number; body: Record<string, unknown> } {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const { model, prompt } = fields;
  if (typeof model !== 'string' || typeof prompt !== 'string') {
    return {
      status: 400,
      body: { error: 'send JSON {"model": "tollway-mini" or "tollway-max", "prompt": "…"}' },
    };
  }
  const words = prompt.trim().split(/\s+/).filter(Boolean).length;
  return {
    status: 200,
    body: { model, reply: `(${model}) You wrote ${words} word${words === 1 ? '' : 's'}. Thanks!` },
  };
}

/** Token counts of a sample chat completion. */
interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

const REPLY_WORDS = (
  'This is the sample API of the tollway dev sandbox: a token for each word it writes, ' +
  'and one for every four characters you send.'
).split(' ');
const DEFAULT_COMPLETION_TOKENS = 64;
const COMPLETION_CHUNK_MS = 10;

/**
 * The usage of a sample completion: a token per four characters of each message's text (rounded
 * up) plus four per message, and a token per reply word, at most `max_tokens`.
 */
function completionUsage(
  messages: ReadonlyArray<{ content: string }>,
  words: number,
): CompletionUsage {
  const prompt = messages.reduce((sum, m) => sum + Math.ceil(m.content.length / 4) + 4, 0);
  return { prompt_tokens: prompt, completion_tokens: words, total_tokens: prompt + words };
}

/** A chat completion request as the sample reads it, or the OpenAI-style error it earns. */
function readCompletion(body: unknown):
  | {
      ok: true;
      model: string;
      messages: Array<{ content: string }>;
      maxTokens: number;
      stream: boolean;
      usageChunk: boolean;
    }
  | { ok: false; message: string } {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const { model, messages, stream } = fields;
  if (typeof model !== 'string')
    return { ok: false, message: 'you must provide a model parameter' };
  if (!Array.isArray(messages) || messages.length === 0) {
    return { ok: false, message: "'messages' must be a non-empty array" };
  }
  const texts = messages.map((message: unknown) => {
    const content = (message as { content?: unknown } | null)?.content;
    return { content: typeof content === 'string' ? content : '' };
  });
  const limit = fields.max_completion_tokens ?? fields.max_tokens;
  const options = fields.stream_options as { include_usage?: unknown } | undefined;
  return {
    ok: true,
    model,
    messages: texts,
    maxTokens:
      typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0
        ? limit
        : DEFAULT_COMPLETION_TOKENS,
    stream: stream === true,
    usageChunk: options?.include_usage === true,
  };
}

/** `POST /v1/chat/completions`, as OpenAI answers it (JSON, or SSE chunks then `[DONE]`). */
function completion(req: http.IncomingMessage, res: http.ServerResponse, body: unknown) {
  const call = readCompletion(body);
  if (!call.ok) {
    return sendJson(res, 400, {
      error: { message: call.message, type: 'invalid_request_error', param: null, code: null },
    });
  }
  const words = REPLY_WORDS.slice(0, call.maxTokens);
  const usage = completionUsage(call.messages, words.length);
  const finish = words.length < REPLY_WORDS.length ? 'length' : 'stop';
  const base = { id: 'chatcmpl-sandbox', created: 1_767_225_600, model: call.model };
  if (!call.stream) {
    return sendJson(res, 200, {
      ...base,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: words.join(' ') },
          finish_reason: finish,
        },
      ],
      usage,
    });
  }
  const chunk = (choices: unknown[]) => ({
    ...base,
    object: 'chat.completion.chunk',
    choices,
    ...(call.usageChunk ? { usage: null } : {}),
  });
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
    ...words.map((word, i) =>
      chunk([{ index: 0, delta: { content: i === 0 ? word : ` ${word}` }, finish_reason: null }]),
    ),
    chunk([{ index: 0, delta: {}, finish_reason: finish }]),
    ...(call.usageChunk ? [{ ...base, object: 'chat.completion.chunk', choices: [], usage }] : []),
  ].map((event) => `data: ${JSON.stringify(event)}\n\n`);
  events.push('data: [DONE]\n\n');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const timer = setInterval(() => {
    const next = events.shift();
    if (next !== undefined) res.write(next);
    if (events.length === 0) {
      clearInterval(timer);
      res.end();
    }
  }, COMPLETION_CHUNK_MS);
  req.on('close', () => clearInterval(timer));
}

function stream(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  const timer = setInterval(() => {
    sent += 1;
    res.write(`data: ${JSON.stringify({ tick: sent, of: STREAM_EVENTS })}\n\n`);
    if (sent === STREAM_EVENTS) {
      clearInterval(timer);
      res.end('event: end\ndata: {}\n\n');
    }
  }, STREAM_INTERVAL_MS);
  req.on('close', () => clearInterval(timer));
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://upstream.invalid');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  if (route === 'GET /free/hello') {
    return sendJson(res, 200, { message: 'Hello from the sample API. This route is free.' });
  }
  if (route === 'GET /v1/forecast') {
    const city = url.searchParams.get('city');
    if (city === null || city.trim() === '') {
      return sendJson(res, 400, { error: 'give a city: /v1/forecast?city=Oslo' });
    }
    return sendJson(res, 200, forecast(city.trim().slice(0, 80)));
  }
  if (route === 'POST /v1/chat') {
    const answer = chat(await readJson(req));
    return sendJson(res, answer.status, answer.body);
  }
  if (route === 'POST /v1/chat/completions') return completion(req, res, await readJson(req));
  if (route === 'GET /v1/stream') return stream(req, res);
  sendJson(res, 404, {
    error: 'no such route',
    routes: [
      'GET /free/hello',
      'GET /v1/forecast?city=',
      'POST /v1/chat',
      'POST /v1/chat/completions',
      'GET /v1/stream',
    ],
  });
}

/**
 * Starts the sample API on loopback.
 *
 * @example
 * ```ts
 * const upstream = await createSampleUpstream();
 * await fetch(`${upstream.url}/v1/forecast?city=Oslo`); // 200, free: the gateway charges, not this
 * await upstream.close();
 * ```
 */
export async function createSampleUpstream(
  options: SampleUpstreamOptions = {},
): Promise<SampleUpstream> {
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'the sample API failed' });
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
