/**
 * The JSON-RPC messages of an MCP tool call over Streamable HTTP, read the same way by the paying
 * client and by the gateway: the `tools/call` request a POST body holds, and the response to it in
 * the server's answer, `application/json` (one message or a batch) or `text/event-stream` (the
 * `data` of the event that carries it). The client reads a live answer only up to that event (the
 * stream may stay open after it); the gateway reads a buffered answer and puts a new response in
 * place of the old one, every other byte as it was sent.
 */
import { isRecord } from '../internal/is-record.js';
import { sseField } from '../internal/sse.js';
import { readLimited } from '../internal/streams.js';

/** A JSON-RPC id. */
export type JsonRpcId = string | number;

/** A `tools/call` request: its id, its `params`, and the whole message as parsed. */
export interface McpToolCallMessage {
  id: JsonRpcId;
  params: Record<string, unknown>;
  message: Record<string, unknown>;
}

/** Where the response to a call sits in an answer, and the answer's text with another in its place. */
export interface McpResponseMatch {
  /** The JSON-RPC response message. */
  message: Record<string, unknown>;
  /** The answer's text with `replacement` as the response message. */
  replace(replacement: Record<string, unknown>): string;
}

/** Events of a `text/event-stream` end at a blank line. */
const SSE_EVENT_END = /\r\n\r\n|\n\n|\r\r/;
const SSE_EVENT_END_KEPT = /(\r\n\r\n|\n\n|\r\r)/;

/**
 * The `tools/call` request `message` is (a parsed POST body), or undefined for anything else: a
 * batch, a notification, another method, `params` that are not an object.
 *
 * @example
 * ```ts
 * readMcpToolCall({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_forecast' } });
 * // { id: 1, params: { name: 'get_forecast' }, message: { … } }
 * ```
 */
export function readMcpToolCall(message: unknown): McpToolCallMessage | undefined {
  if (!isRecord(message) || message.method !== 'tools/call' || !isRecord(message.params)) {
    return undefined;
  }
  const { id } = message;
  if (typeof id !== 'string' && typeof id !== 'number') return undefined;
  return { id, params: message.params, message };
}

/**
 * The `tools/call` a request holds: a POST whose body is one JSON-RPC `tools/call`; else undefined.
 *
 * @internal
 */
export function toolCallOf(
  method: string,
  body: Uint8Array | undefined,
): McpToolCallMessage | undefined {
  if (method !== 'POST' || body === undefined) return undefined;
  const text = new TextDecoder().decode(body);
  if (!text.includes('tools/call')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  return readMcpToolCall(message);
}

/** The value of JSON text, or `undefined` when the text is not JSON. */
function readJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isResponseTo(value: unknown, id: JsonRpcId): value is Record<string, unknown> {
  return isRecord(value) && value.id === id && (Object.hasOwn(value, 'result') || 'error' in value);
}

/** The kind of an answer by its `Content-Type`: JSON, SSE, or neither. */
function answerType(contentType: string | null | undefined): 'json' | 'sse' | undefined {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'text/event-stream') return 'sse';
  return undefined;
}

/** The response in JSON text: one message, or a member of a batch. */
function findInJson(text: string, id: JsonRpcId): McpResponseMatch | undefined {
  const parsed = readJson(text);
  if (isResponseTo(parsed, id)) {
    return { message: parsed, replace: (replacement) => JSON.stringify(replacement) };
  }
  if (!Array.isArray(parsed)) return undefined;
  const index = parsed.findIndex((item) => isResponseTo(item, id));
  if (index < 0) return undefined;
  return {
    message: parsed[index] as Record<string, unknown>,
    replace(replacement) {
      const batch = [...parsed];
      batch[index] = replacement;
      return JSON.stringify(batch);
    },
  };
}

/** The lines of one SSE event, and its `data` (the `data:` lines joined by newlines). */
function sseEvent(text: string): { lines: string[]; data: string } {
  const lines = text.split(/\r\n|\n|\r/);
  const data = lines
    .map((line) => sseField(line, 'data'))
    .filter((value) => value !== undefined)
    .join('\n');
  return { lines, data };
}

/** The response in SSE text: in the `data` of one event (the other events kept byte for byte). */
function findInSse(text: string, id: JsonRpcId): McpResponseMatch | undefined {
  // The separators are kept so that the text rebuilds exactly.
  const parts = text.split(SSE_EVENT_END_KEPT);
  for (let index = 0; index < parts.length; index += 2) {
    const { lines, data } = sseEvent(parts[index] ?? '');
    const found = findInJson(data, id);
    if (found === undefined) continue;
    return {
      message: found.message,
      replace(replacement) {
        const kept = lines.filter((line) => !line.startsWith('data:'));
        const event = [...kept, `data: ${found.replace(replacement)}`].join('\n');
        return [...parts.slice(0, index), event, ...parts.slice(index + 1)].join('');
      },
    };
  }
  return undefined;
}

/**
 * The JSON-RPC response to `id` in an answer of type `contentType` (`application/json` or
 * `text/event-stream`) whose body is `text`, or undefined when there is none (another type, no
 * such message).
 *
 * @example
 * ```ts
 * const found = findMcpResponse('text/event-stream', 'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n', 1);
 * found?.message.result; // {}
 * found?.replace({ jsonrpc: '2.0', id: 1, result: { paid: true } }); // the same event, new data
 * ```
 */
export function findMcpResponse(
  contentType: string | undefined,
  text: string,
  id: JsonRpcId,
): McpResponseMatch | undefined {
  const type = answerType(contentType);
  if (type === 'json') return findInJson(text, id);
  if (type === 'sse') return findInSse(text, id);
  return undefined;
}

/** Reads SSE text as it arrives, up to the event that holds the response to `id`. */
async function readSseResponse(
  body: ReadableStream<Uint8Array>,
  id: JsonRpcId,
  limit: number,
): Promise<Record<string, unknown> | undefined> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  let seen = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return undefined;
      seen += value.length;
      if (seen > limit) return undefined;
      text += value;
      // Complete events end at a blank line; a later event may still be arriving.
      const events = text.split(SSE_EVENT_END);
      text = events.pop() ?? '';
      for (const event of events) {
        const found = findInJson(sseEvent(event).data, id);
        if (found !== undefined) return found.message;
      }
    }
  } finally {
    await reader.cancel();
  }
}

/**
 * The JSON-RPC response to `id` in a live answer of an MCP server (JSON read whole, SSE read until
 * that event), at most `limit` bytes of it; undefined when there is none. Reads a copy of the
 * body: `response` can still be read or passed on.
 *
 * @example
 * ```ts
 * const message = await readMcpResponse(await fetch(mcpUrl, { method: 'POST', body }), 1, 1 << 20);
 * message?.result; // the tool result
 * ```
 */
export async function readMcpResponse(
  response: Response,
  id: JsonRpcId,
  limit: number,
): Promise<Record<string, unknown> | undefined> {
  const type = answerType(response.headers.get('content-type'));
  if (type === undefined) return undefined;
  const copy = response.clone().body;
  if (copy === null) return undefined;
  if (type === 'sse') return readSseResponse(copy, id, limit);
  const bytes = await readLimited(copy, limit);
  return bytes === undefined ? undefined : findInJson(new TextDecoder().decode(bytes), id)?.message;
}
