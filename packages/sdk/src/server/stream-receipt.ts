/**
 * The receipt of a metered event stream, written at its end. A metered answer is charged once its
 * body has ended, after its head left, so what it cost — and how an x402 `upto` payment settled
 * (`PAYMENT-RESPONSE`) — cannot go in a header. An event stream (`text/event-stream`) ends with
 * them as SSE comment lines instead, one per receipt header (`: payment-response eyJ…`,
 * `: tollway-charged 2100 msat`), then a blank line: event-stream parsers skip comments, and the
 * paying fetch reads them as the stream passes. Written only where the stream ended an event, so
 * no comment joins a line cut short. The adapters and the gateway write it alike; a proxy of its
 * own that meters event streams can too ({@link streamTail}, {@link formatReceiptComment}).
 */

type Receipt = ReadonlyArray<readonly [name: string, value: string]>;

/** The last bytes of a stream kept to tell whether it ended an event: enough for `\r\n\r\n`. */
const TAIL = 4;

/**
 * Whether `type` (a `Content-Type` value) is an event stream.
 *
 * @internal
 */
export function isEventStream(type: string | null | undefined): boolean {
  return (type ?? '').trimStart().toLowerCase().startsWith('text/event-stream');
}

/**
 * The last bytes of a stream after `chunk` was written, `tail` the last bytes before it (start
 * with an empty array): what {@link formatReceiptComment} needs to see whether the stream ended an
 * event.
 *
 * @example
 * ```ts
 * let tail = new Uint8Array(0);
 * for (const chunk of chunks) tail = streamTail(tail, chunk);
 * ```
 */
export function streamTail(tail: Uint8Array, chunk: Uint8Array): Uint8Array {
  if (chunk.length >= TAIL) return chunk.subarray(chunk.length - TAIL);
  const joined = new Uint8Array(tail.length + chunk.length);
  joined.set(tail);
  joined.set(chunk, tail.length);
  return joined.subarray(Math.max(0, joined.length - TAIL));
}

/**
 * The comment lines that end an event stream whose last bytes are `tail` with `receipt`, or
 * undefined when there is nothing to write or the stream did not end an event.
 *
 * @example
 * ```ts
 * formatReceiptComment([['Tollway-Charged', '2100 msat']], new TextEncoder().encode('data: x\n\n'));
 * // ': tollway-charged 2100 msat\n\n'
 * ```
 */
export function formatReceiptComment(receipt: Receipt, tail: Uint8Array): string | undefined {
  if (receipt.length === 0) return undefined;
  const end = new TextDecoder('latin1').decode(tail);
  if (!end.endsWith('\n\n') && !end.endsWith('\r\n\r\n')) return undefined;
  return `${receipt.map(([name, value]) => `: ${name.toLowerCase()} ${value}\n`).join('')}\n`;
}
