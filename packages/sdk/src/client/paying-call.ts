/**
 * One call of the paying fetch: the request is sent (with a saved credential when one can serve
 * it); a refusal is answered with a credential saved since or with a payment, and the request is
 * sent again. One call pays at most once, and sends at most three times: as it came, with a
 * credential another call saved, with its own payment. A refused saved credential never stops it
 * from paying: after one, it pays.
 *
 * @internal
 */
import type { McpToolCallMessage } from '../x402/mcp-messages.js';
import { acquireShared, type CredentialNeed } from './acquire.js';
import { callTags, type Tags, tagsOf } from './call-tags.js';
import { noteCharge } from './charges.js';
import { acquiredOf, findSavedCredential, keepSingleUse } from './credentials.js';
import {
  bufferedBody,
  type OutgoingRequest,
  outgoingRequest,
  readOffers,
  send,
} from './http-exchange.js';
import { mcpOffers, noteMcpSettlement, paidToolCall, toolCallOf } from './mcp-tool-call.js';
import { assertConsistentPrices, type ParsedOffers } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import type { PayingRequestInit, PaymentInfo } from './paying-fetch.js';
import { ensureResumed } from './recovery.js';
import { noteSessionUse } from './sessions-close.js';
import { noteSettlement } from './x402-payment.js';

/** One call as it goes. */
interface Call {
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
}

const payments = new WeakMap<Response, PaymentInfo>();

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
    if (current !== undefined && !current.reusable && current.body === undefined) {
      await keepSingleUse(context, url, current);
    }
    throw error;
  }
}

/** Records how the server settled the x402 payment the call just sent (paid now, or kept). */
async function noteX402Outcome(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<void> {
  const { current, tool } = call;
  if (current?.protocol !== 'x402') return;
  if (current.payment !== undefined && current.body !== undefined && tool !== undefined) {
    await noteMcpSettlement(context, current.payment, response, tool);
    return;
  }
  const ledgerId =
    current.payment?.ledgerId ??
    (current.account === undefined
      ? undefined
      : (await context.store.list({ account: current.account, kind: 'purchase', limit: 1 }))[0]
          ?.id);
  if (ledgerId !== undefined) await noteSettlement(context, ledgerId, response);
}

/** What the call needs a credential for, after a refusal with `parsed` offers. */
function needOf(call: Call, scope: string, parsed: ParsedOffers): CredentialNeed {
  return {
    url: call.url,
    method: call.request.method,
    scope,
    parsed,
    refused: call.current?.header.value,
    mayUseSaved: call.acquired === 0,
    tags: call.tags,
    request: call.request,
    body: call.body,
  };
}

/** A credential for a 402, or a 401 refusing the call's credential; undefined to give up. */
async function answerRefusal(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<Acquired | undefined> {
  const { url, current } = call;
  const withCredential = current !== undefined;
  context.emit({ type: 'challenge', url: url.href, status: response.status, withCredential });
  const parsed = await readOffers(response, context.now());
  context.emit({ type: 'offers', url: url.href, offers: parsed.offers, rejected: parsed.rejected });
  // A 401 without any offer is not a payment challenge: it is the answer.
  if (response.status === 401 && parsed.offers.length === 0 && parsed.rejected.length === 0) {
    return undefined;
  }
  await response.body?.cancel();
  assertConsistentPrices(parsed);
  const scope = current === undefined ? '/' : url.pathname;
  return acquireShared(context, needOf(call, scope, parsed));
}

/** A credential for a tool call answered 200 with a payment-required tool result, if it is one. */
async function answerToolResult(
  context: PayingContext,
  call: Call,
  tool: McpToolCallMessage,
  response: Response,
): Promise<Acquired | undefined> {
  const offered = await mcpOffers(context, response, tool);
  if (offered === undefined) return undefined;
  const { url, current } = call;
  const withCredential = current !== undefined;
  context.emit({ type: 'challenge', url: url.href, status: response.status, withCredential });
  context.emit({ type: 'offers', url: url.href, offers: offered.offers, rejected: [] });
  await response.body?.cancel();
  const acquired = await acquireShared(context, needOf(call, url.pathname, offered));
  const signature = acquired.header.name.toLowerCase() === 'payment-signature';
  return signature ? { ...acquired, body: paidToolCall(tool, acquired.header.value) } : acquired;
}

/** The credential to send the call again with, or undefined when `response` is the answer. */
function nextCredential(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<Acquired | undefined> | undefined {
  // One payment per call: whatever answers it is the answer.
  if (call.payment !== undefined) return undefined;
  const refused =
    response.status === 402 || (call.current !== undefined && response.status === 401);
  if (refused) return answerRefusal(context, call, response);
  // x402 over MCP: a tools/call answered 200 with a payment-required tool result.
  return call.tool === undefined ? undefined : answerToolResult(context, call, call.tool, response);
}

/**
 * Runs one call of the paying fetch; see `createPayingFetch`.
 *
 * @internal
 */
export async function payingCall(
  context: PayingContext,
  input: string | URL | Request,
  init?: PayingRequestInit,
): Promise<Response> {
  const request = outgoingRequest(input, init);
  const body = await bufferedBody(context, request);
  const { url } = request;
  const tool = toolCallOf(request.method, body);
  await ensureResumed(context);
  await context.flights.settled(url.origin, url.pathname);
  const current = await cachedCredential(context, request);
  const tags = callTags(context, tagsOf(init), body);
  const call: Call = { request, body, url, tool, current, payment: undefined, acquired: 0, tags };
  for (;;) {
    const response = await sendCurrent(context, call);
    if (call.acquired > 0) context.emit({ type: 'retry', url: url.href, status: response.status });
    await noteX402Outcome(context, call, response);
    const next = await nextCredential(context, call, response);
    if (next === undefined) {
      const answer =
        call.current === undefined
          ? response
          : await noteCharge(context, { url, credential: call.current, tags }, response);
      if (call.current?.protocol === 'mpp-session' && call.current.account !== undefined) {
        noteSessionUse(context, call.current.account);
      }
      if (call.payment !== undefined) payments.set(answer, call.payment);
      return answer;
    }
    call.acquired += 1;
    call.current = next;
    call.payment = next.payment;
  }
}
