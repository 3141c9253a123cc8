/**
 * One call of the paying fetch: the request is sent (with a saved credential when one can serve
 * it); a refusal is answered with a credential saved since or with a payment, and the request is
 * sent again. One call pays at most once, and sends at most three times: as it came, with a
 * credential another call saved, with its own payment. A refused saved credential never stops it
 * from paying: after one, it pays. On an x402 channel, a voucher refused because another payer
 * on the same record drew first is signed again, up to four vouchers in all.
 *
 * @internal
 */
import type { Tracing } from '../internal/tracing.js';
import { type McpToolCallMessage, toolCallOf } from '../x402/mcp-messages.js';
import { callTags, type Tags, tagsOf } from './call-tags.js';
import { type CallTrace, startCallTrace, tracingOf } from './call-trace.js';
import { noteCharge } from './charges.js';
import { acquiredOf, findSavedCredential, keepSingleUse } from './credentials.js';
import { bufferedBody, type OutgoingRequest, outgoingRequest, send } from './http-exchange.js';
import type { Acquired, PayingContext } from './paying-context.js';
import type { PayingRequestInit, PaymentInfo } from './paying-fetch.js';
import { ensureResumed } from './recovery.js';
import { toppingUpSession } from './session-stream.js';
import { noteSessionUse } from './sessions-close.js';

/**
 * One call as it goes.
 *
 * @internal
 */
export interface Call {
  request: OutgoingRequest;
  /** The request body, buffered to be sent again. */
  body: Uint8Array | undefined;
  url: URL;
  /** The JSON-RPC `tools/call` the body holds (x402 over MCP), if any. */
  tool: McpToolCallMessage | undefined;
  /** The credential of the latest send. */
  current: Acquired | undefined;
  /** The payment this call made. */
  payment: PaymentInfo | undefined;
  /** Credentials this call got for refusals (saved by another call, or paid). */
  acquired: number;
  tags: () => Tags;
  /** The call's spans, when tracing is on. */
  trace: CallTrace | undefined;
}

const payments = new WeakMap<Response, PaymentInfo>();

/** How many vouchers one call may sign on an x402 channel, refused ones included. */
const VOUCHER_SIGNINGS = 4;

/**
 * The payment the paying fetch made for `response`, or `undefined` when none was made by that call
 * (free resource, cached credential, or a payment shared with a concurrent call).
 *
 * @example
 * ```ts
 * const response = await fetch402('https://api.example.com/forecast');
 * const paid = getPayment(response);
 * if (paid) console.log(`paid ${paid.amountMsat} msat + ${paid.feeMsat} msat fee`);
 * ```
 */
export function getPayment(response: Response): PaymentInfo | undefined {
  return payments.get(response);
}

/** The credential saved for the request's path that can serve it, for the first send. */
async function cachedCredential(
  context: PayingContext,
  request: OutgoingRequest,
): Promise<Acquired | undefined> {
  const { url } = request;
  const target = { path: url.pathname, method: request.method };
  const cached = await findSavedCredential(context, url.origin, target);
  if (cached === undefined) return undefined;
  context.emit({ type: 'cached', url: url.href, protocol: cached.protocol });
  return acquiredOf(cached);
}

/**
 * Sends the request with the call's current credential (x402 over MCP: the paid body). A
 * single-use credential read from the store is deleted once sent; one that could not be sent is
 * kept for the next request to the path.
 */
async function sendCurrent(context: PayingContext, call: Call): Promise<Response> {
  const { current, url } = call;
  const { stored } = current ?? {};
  if (stored?.singleUse === true) await context.store.deleteCredential(stored.origin, stored.scope);
  try {
    return current?.body === undefined
      ? await send(call.request, call.body, current?.header)
      : await send(call.request, current.body, undefined);
  } catch (error) {
    // A voucher that could not be sent is signed again by the next call on its channel.
    current?.batch?.release();
    if (current !== undefined && !current.reusable && current.body === undefined) {
      if (current.batch === undefined) await keepSingleUse(context, url, current);
    }
    throw error;
  }
}

/**
 * The credential to send the call again with, or undefined when `response` is the answer. What
 * answers a refusal (offers, choice, payment) is loaded with the first one: a call answered with a
 * saved credential loads none of it.
 */
async function nextCredential(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<Acquired | undefined> {
  // One payment per call: whatever answers it is the answer. A refused x402 voucher is signed
  // again from the corrected record (the corrective 402's), a few times: each refusal means
  // another payer on the same channel record drew first, so of n payers at once the last signs n
  // times. A voucher is not a payment: one refused is charged nothing. Nor is a deposit refused
  // with a corrective 402, which comes before the server settles it.
  if (call.payment !== undefined) return undefined;
  if (call.current?.batch !== undefined && call.acquired >= VOUCHER_SIGNINGS) return undefined;
  const refused =
    response.status === 402 || (call.current !== undefined && response.status === 401);
  if (refused) return (await import('./refusal.js')).answerRefusal(context, call, response);
  // x402 over MCP: a tools/call answered 200 with a payment-required tool result.
  if (call.tool === undefined) return undefined;
  const { answerToolResult } = await import('./refusal.js');
  return answerToolResult(context, call, call.tool, response);
}

/**
 * Runs one call of the paying fetch; see `createPayingFetch`.
 *
 * @internal
 */
export function payingCall(
  context: PayingContext,
  input: string | URL | Request,
  init?: PayingRequestInit,
): Promise<Response> {
  const tracing = tracingOf(context);
  if (tracing === undefined) return runCall(context, input, init, undefined);
  return tracing.then((loaded) => runCall(context, input, init, loaded));
}

/** Sends the request with the call's current credential, in a span when traced. */
function sendTraced(context: PayingContext, call: Call): Promise<Response> {
  const { trace } = call;
  if (trace === undefined) return sendCurrent(context, call);
  return trace.step(call.acquired === 0 ? 'tollway.send' : 'tollway.retry', async (span) => {
    const response = await sendCurrent(context, call);
    span.setAttribute('http.response.status_code', response.status);
    return response;
  });
}

/** How a call got its answer: with its own payment, a credential saved before, or none. */
function outcomeOf(call: Call): 'paid' | 'reused' | 'none' {
  if (call.payment !== undefined) return 'paid';
  return call.current === undefined ? 'none' : 'reused';
}

/** {@link payingCall}, in its spans when `tracing` is given. */
async function runCall(
  context: PayingContext,
  input: string | URL | Request,
  init: PayingRequestInit | undefined,
  tracing: Tracing | undefined,
): Promise<Response> {
  const request = outgoingRequest(input, init);
  const trace = tracing === undefined ? undefined : startCallTrace(tracing, request);
  try {
    const body = await bufferedBody(context, request);
    const { url } = request;
    const tool = toolCallOf(request.method, body);
    await ensureResumed(context);
    await context.flights.settled(url.origin, url.pathname);
    const current = await cachedCredential(context, request);
    const tags = callTags(context, tagsOf(init), body);
    const call: Call = {
      request,
      body,
      url,
      tool,
      current,
      payment: undefined,
      acquired: 0,
      tags,
      trace,
    };
    for (;;) {
      const response = await sendTraced(context, call);
      if (call.acquired > 0) {
        context.emit({ type: 'retry', url: url.href, status: response.status });
      }
      if (call.current?.protocol === 'x402') {
        const { noteX402Outcome } = await import('./refusal.js');
        if (await noteX402Outcome(context, call, response)) call.payment = undefined;
      }
      const next = await nextCredential(context, call, response);
      if (next === undefined) {
        // A voucher's draw is written with its answer (batch-payment.ts).
        let answer =
          call.current === undefined || call.current.batch !== undefined
            ? response
            : await noteCharge(context, { url, credential: call.current, tags }, response);
        if (call.current?.protocol === 'mpp-session' && call.current.account !== undefined) {
          const sessionId = call.current.account;
          noteSessionUse(context, sessionId);
          const stream = { url, request, body, tags, sessionId };
          answer = toppingUpSession(context, stream, answer);
        }
        if (call.payment !== undefined) payments.set(answer, call.payment);
        trace?.end(answer, outcomeOf(call));
        return answer;
      }
      call.acquired += 1;
      call.current = next;
      call.payment = next.payment;
    }
  } catch (error) {
    trace?.fail(error);
    throw error;
  }
}
