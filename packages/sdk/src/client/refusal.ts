/**
 * What the paying fetch does with a refusal: the offers of a 402 (or of a 401 refusing the call's
 * credential, or of an MCP tool result asking for payment) are read and answered with a saved or
 * paid credential; and how the server settled an x402 payment the call sent is recorded. Loaded by
 * `paying-call.ts` with the first refusal, so that calls answered with a saved credential load no
 * offer parser, no payment code and no wire codec.
 *
 * @internal
 */

import type { McpToolCallMessage } from '../x402/mcp-messages.js';
import { acquireShared, type CredentialNeed } from './acquire.js';
import { readOffers } from './http-exchange.js';
import { mcpOffers, noteMcpSettlement, paidToolCall } from './mcp-tool-call.js';
import { assertConsistentPrices, type ParsedOffers } from './offers.js';
import type { Call } from './paying-call.js';
import type { Acquired, PayingContext } from './paying-context.js';
import { closeRefusedSession } from './sessions-close.js';
import { noteSettlement } from './x402-payment.js';

/**
 * Records how the server settled the x402 payment the call just sent (paid now, or kept). True
 * when the server refused it before it moved any money (a batch-settlement deposit answered with
 * a corrective 402): the call has made no payment, and may sign again.
 *
 * @internal
 */
export async function noteX402Outcome(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<boolean> {
  const { current, tool } = call;
  if (current?.protocol !== 'x402') return false;
  if (current.batch !== undefined) {
    const { noteBatchAnswer } = await import('./batch-payment.js');
    return noteBatchAnswer(
      context,
      { url: call.url, credential: current, tags: call.tags },
      response,
    );
  }
  if (current.payment !== undefined && current.body !== undefined && tool !== undefined) {
    await noteMcpSettlement(context, current.payment, response, tool);
    return false;
  }
  const ledgerId =
    current.payment?.ledgerId ??
    (current.account === undefined
      ? undefined
      : (await context.store.list({ account: current.account, kind: 'purchase', limit: 1 }))[0]
          ?.id);
  if (ledgerId !== undefined) await noteSettlement(context, ledgerId, response);
  return false;
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
    trace: call.trace,
    batch: call.tool === undefined,
  };
}

/**
 * A credential for a 402, or a 401 refusing the call's credential; undefined to give up.
 *
 * @internal
 */
export async function answerRefusal(
  context: PayingContext,
  call: Call,
  response: Response,
): Promise<Acquired | undefined> {
  const { url, current } = call;
  const withCredential = current !== undefined;
  context.emit({ type: 'challenge', url: url.href, status: response.status, withCredential });
  const { trace } = call;
  const parsed = await (trace === undefined
    ? readOffers(response, context.now())
    : trace.step('tollway.offers', async (span) => {
        const read = await readOffers(response, context.now());
        span.setAttributes({
          'tollway.offers': read.offers.map((offer) => offer.protocol),
          'tollway.offers.rejected': read.rejected.length,
        });
        return read;
      }));
  context.emit({ type: 'offers', url: url.href, offers: parsed.offers, rejected: parsed.rejected });
  // A 401 without any offer is not a payment challenge: it is the answer.
  if (response.status === 401 && parsed.offers.length === 0 && parsed.rejected.length === 0) {
    return undefined;
  }
  if (current?.protocol === 'mpp-session') {
    await closeRefusedSession(context, url.origin, current.header.value, response);
  }
  await response.body?.cancel();
  assertConsistentPrices(parsed);
  const scope = current === undefined ? '/' : url.pathname;
  return acquireShared(context, needOf(call, scope, parsed));
}

/**
 * A credential for a tool call answered 200 with a payment-required tool result, if it is one.
 *
 * @internal
 */
export async function answerToolResult(
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
