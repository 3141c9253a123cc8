/**
 * A response body bounded for a model's context: text up to a limit (cut with a note), a small
 * binary body as base64, a larger one left out with a note. The rest of the body is not read.
 */

/** A response body as the `fetch` tool returns it. */
export interface BoundedBody {
  /** The body as text; only its start when `truncated`. */
  text?: string;
  /** A binary body, whole, as standard base64. */
  base64?: string;
  /** Bytes included (`text` before decoding, or `base64` before encoding). */
  bytes: number;
  /** True when the body goes on past what is included. */
  truncated: boolean;
  /** Why the body is cut or left out, for the model. */
  note?: string;
}

/** Limits of {@link readBoundedBody}, in bytes. */
export interface BodyLimits {
  /** Most bytes of a text body included. */
  text: number;
  /** Largest binary body included (as base64); must not exceed `text`. */
  binary: number;
}

const TEXT_TYPE =
  /^text\/|[/+](json|xml)\b|javascript|ecmascript|yaml|csv|x-www-form-urlencoded|graphql|ndjson/i;

/** Reads at most `limit + 1` bytes: `limit` to keep, one to know whether the body goes on. */
async function readPrefix(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  const reader = stream.getReader();
  const kept = new Uint8Array(limit);
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = limit - size;
    kept.set(value.subarray(0, room), size);
    size += Math.min(room, value.byteLength);
    if (value.byteLength > room) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  return { bytes: kept.subarray(0, size), truncated };
}

/** `bytes` decoded in the charset the content type names, else UTF-8; `cut` keeps a split character out. */
function decodeText(bytes: Uint8Array, contentType: string, cut: boolean): string {
  const charset = /;\s*charset="?([\w.:-]+)"?/i.exec(contentType)?.[1] ?? 'utf-8';
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset);
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.decode(bytes, { stream: cut });
}

/** Valid UTF-8 without NUL characters (a cut multi-byte character at the end is allowed). */
function looksLikeText(bytes: Uint8Array): boolean {
  try {
    return !new TextDecoder('utf-8', { fatal: true })
      .decode(bytes, { stream: true })
      .includes('\0');
  } catch {
    return false;
  }
}

/**
 * Reads the start of `response`'s body within `limits`. A body is text when its content type says
 * so (`text/*`, JSON, XML, …) or, without such a type, when it is valid UTF-8.
 *
 * @example
 * ```ts
 * const body = await readBoundedBody(response, { text: 65_536, binary: 49_152 });
 * if (body.truncated) console.log(body.note);
 * ```
 */
export async function readBoundedBody(
  response: Response,
  limits: BodyLimits,
): Promise<BoundedBody> {
  if (response.body === null) return { text: '', bytes: 0, truncated: false };
  const contentType = response.headers.get('content-type') ?? '';
  const { bytes, truncated } = await readPrefix(response.body, limits.text);
  if (TEXT_TYPE.test(contentType) || looksLikeText(bytes)) {
    const text = decodeText(bytes, contentType, truncated);
    if (!truncated) return { text, bytes: bytes.byteLength, truncated };
    return {
      text,
      bytes: bytes.byteLength,
      truncated,
      note: `the body was cut after ${bytes.byteLength} bytes: only its start is shown`,
    };
  }
  if (!truncated && bytes.byteLength <= limits.binary) {
    return {
      base64: Buffer.from(bytes).toString('base64'),
      bytes: bytes.byteLength,
      truncated,
      note: `binary body (${contentType || 'no content type'}) as base64`,
    };
  }
  return {
    bytes: 0,
    truncated: true,
    note: `binary body (${contentType || 'no content type'}) left out: it is larger than ${limits.binary} bytes`,
  };
}
