/**
 * A session's streamed answer that runs out of deposit tells the client so with a
 * `payment-need-topup` event and waits (draft-lightning-session, "Streaming"): the paying fetch
 * then tops the session up — asks the resource for a fresh 402 and pays its session offer's deposit
 * within the budget, as for a call the session no longer covers — while the caller reads on. The
 * stream reaches the caller unchanged, events included.
 *
 * @internal
 */
import { sseField } from '../internal/sse.js';
import { parseSessionEventData } from '../mpp/session-event.js';
import type { Tags } from './call-tags.js';
import { type OutgoingRequest, readOffers, responseWithBody, send } from './http-exchange.js';
import type { PayingContext } from './paying-context.js';

/** The call whose answer streams from a session. */
export interface SessionStreamCall {
  url: URL;
  request: OutgoingRequest;
  body: Uint8Array | undefined;
  tags: () => Tags;
  sessionId: string;
}

/** The longest line read for an event; longer ones are not ours. */
const MAX_LINE = 4096;

/**
 * Pays a top-up of the call's session from a fresh 402 of the resource. What pays is loaded here,
 * as for any refusal: a stream that never runs out loads none of it.
 */
async function topUp(context: PayingContext, call: SessionStreamCall): Promise<void> {
  const [{ acquireShared }, { bearerHeader }] = await Promise.all([
    import('./acquire.js'),
    import('./session-payment.js'),
  ]);
  const { url, request, body } = call;
  const answer = await send(request, body, undefined);
  if (answer.status !== 402) {
    await answer.body?.cancel();
    throw new Error(`asked for a fresh session offer, the server answered ${answer.status}`);
  }
  const parsed = await readOffers(answer, context.now());
  await answer.body?.cancel();
  const open = await context.store.listSessions({ origin: url.origin, states: ['open'] });
  const session = open.find((candidate) => candidate.id === call.sessionId);
  if (session === undefined) throw new Error(`session ${call.sessionId} is not open here`);
  const offers = parsed.offers.filter((offer) => offer.protocol === 'mpp-session');
  await acquireShared(context, {
    url,
    method: request.method,
    scope: url.pathname,
    parsed: { ...parsed, offers },
    // The session's own credential: the top-up goes to it.
    refused: bearerHeader(session).value,
    mayUseSaved: false,
    tags: call.tags,
    request,
    body,
    // A top-up in the middle of an answer: the call's spans have ended.
    trace: undefined,
    batch: false,
  });
}

/**
 * `response` with the same body, read for the session's `payment-need-topup` events as it goes;
 * each one (while no top-up is under way) starts a top-up of the session.
 *
 * @internal
 */
export function toppingUpSession(
  context: PayingContext,
  call: SessionStreamCall,
  response: Response,
): Response {
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  if (response.body === null || !type.startsWith('text/event-stream')) return response;
  const decoder = new TextDecoder();
  let line = '';
  let event = '';
  let data = '';
  let toppingUp = false;
  const dispatch = (): void => {
    const told = event === 'payment-need-topup' ? parseSessionEventData(data) : undefined;
    event = '';
    data = '';
    if (told?.sessionId !== call.sessionId || toppingUp) return;
    toppingUp = true;
    const { url, sessionId } = call;
    topUp(context, call)
      .then(
        () => context.emit({ type: 'session-topped-up', url: url.href, sessionId }),
        (error: unknown) =>
          context.emit({ type: 'session-top-up-failed', url: url.href, sessionId, error }),
      )
      .finally(() => {
        toppingUp = false;
      });
  };
  const read = (text: string): void => {
    if (text === '') {
      dispatch();
      return;
    }
    event = sseField(text, 'event')?.trim() ?? event;
    data += sseField(text, 'data') ?? '';
  };
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const lines = (line + decoder.decode(chunk, { stream: true })).split('\n');
        line = lines.pop() ?? '';
        if (line.length > MAX_LINE) line = '';
        for (const text of lines) read(text.endsWith('\r') ? text.slice(0, -1) : text);
        controller.enqueue(chunk);
      },
    }),
  );
  return responseWithBody(response, body);
}
