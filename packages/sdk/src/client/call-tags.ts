/**
 * The attribution of one call, written on what it pays and what it is charged: the budget's tags,
 * the paying fetch's (`tags`), the request's own (`init.tags`), and the model an LLM request names
 * in its JSON body (`model`, unless the request's tags name one). Read only when the call pays or
 * is charged, so a call that is neither never parses its body.
 *
 * @internal
 */
import type { PayingContext } from './paying-context.js';
import type { PayingRequestInit } from './paying-fetch.js';

/** Tags: attribution by key (`agent`, `task`, `model`, …). */
export type Tags = Readonly<Record<string, string>>;

/** The longest model name taken from a body. */
const MAX_MODEL_CHARS = 200;
const OPEN_BRACE = 0x7b;

/** The first byte of `body` that is not JSON whitespace. */
function firstByte(body: Uint8Array): number | undefined {
  for (const byte of body) {
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return byte;
  }
  return undefined;
}

/** The `model` a JSON object body names, if it names one. */
function modelOf(body: Uint8Array | undefined): string | undefined {
  if (body === undefined || firstByte(body) !== OPEN_BRACE) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
  const model = (json as { model?: unknown }).model;
  return typeof model === 'string' && model !== '' && model.length <= MAX_MODEL_CHARS
    ? model
    : undefined;
}

/**
 * The request's own tags (`init.tags`), when it has any.
 *
 * @internal
 */
export function tagsOf(init: PayingRequestInit | undefined): Tags | undefined {
  return init?.tags;
}

/**
 * The tags of a call, worked out once, when first asked.
 *
 * @internal
 * @example
 * ```ts
 * const tags = callTags(context, init?.tags, body);
 * tags(); // { agent: 'researcher', task: 'report', model: 'gpt-4o-mini' }
 * ```
 */
export function callTags(
  context: PayingContext,
  requestTags: Tags | undefined,
  body: Uint8Array | undefined,
): () => Tags {
  let tags: Tags | undefined;
  return () => {
    if (tags !== undefined) return tags;
    const model = requestTags?.model === undefined ? modelOf(body) : undefined;
    tags = {
      ...context.budget?.tags,
      ...context.tags,
      ...(model === undefined ? {} : { model }),
      ...requestTags,
    };
    return tags;
  };
}
