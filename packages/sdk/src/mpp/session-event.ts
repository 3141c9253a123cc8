/**
 * The server-sent events of a session's streamed answer (draft-lightning-session, "Streaming"):
 * `payment-need-topup` when the session cannot pay for what comes next — the stream waits for a
 * top-up — and `session-timeout` when none came in time and the stream ends. Both carry
 * `{"sessionId","balanceSpent","balanceRequired"}` in sats: what the session has spent (and holds)
 * of its deposits, and what the next part of the answer needs.
 */
import { isJsonObject, parseJson, stringifyJson } from './json.js';

/** The name of a session's streamed event. */
export type SessionEventName = 'payment-need-topup' | 'session-timeout';

/** What a session's streamed event says. */
export interface SessionEvent {
  sessionId: string;
  /** Sats the session has spent or holds of its deposits. */
  balanceSpent: bigint;
  /** Sats the next part of the answer needs beyond that. */
  balanceRequired: bigint;
}

/**
 * The SSE event `name` with `event` as its data, a blank line included.
 *
 * @example
 * ```ts
 * formatSessionEvent('payment-need-topup', { sessionId, balanceSpent: 50n, balanceRequired: 5n });
 * // 'event: payment-need-topup\ndata: {"sessionId":"…","balanceSpent":50,"balanceRequired":5}\n\n'
 * ```
 */
export function formatSessionEvent(name: SessionEventName, event: SessionEvent): string {
  const data = stringifyJson({
    sessionId: event.sessionId,
    balanceSpent: event.balanceSpent,
    balanceRequired: event.balanceRequired,
  });
  return `event: ${name}\ndata: ${data}\n\n`;
}

/**
 * Reads the data of a session event (its `data:` line's text); undefined when it is not one.
 *
 * @example
 * ```ts
 * parseSessionEventData('{"sessionId":"aa11bb22","balanceSpent":4860,"balanceRequired":3}');
 * // { sessionId: 'aa11bb22', balanceSpent: 4860n, balanceRequired: 3n }
 * ```
 */
export function parseSessionEventData(data: string): SessionEvent | undefined {
  let value: ReturnType<typeof parseJson>;
  try {
    value = parseJson(data, { bigints: true });
  } catch {
    return undefined;
  }
  if (!isJsonObject(value)) return undefined;
  const { sessionId, balanceSpent, balanceRequired } = value;
  if (typeof sessionId !== 'string' || typeof balanceSpent !== 'bigint') return undefined;
  if (typeof balanceRequired !== 'bigint') return undefined;
  return { sessionId, balanceSpent, balanceRequired };
}
