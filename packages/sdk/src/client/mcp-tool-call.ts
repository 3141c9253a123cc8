/**
 * x402 over MCP in the paying fetch: a POST of one JSON-RPC `tools/call` answered 200 with a
 * payment-required tool result is paid like a `PAYMENT-REQUIRED` 402, and sent again with the
 * payment in `params._meta["x402/payment"]`; the paid tool result's `_meta` settles the ledger
 * entry. Answers are read from a copy (see `readMcpResponse`) and passed on unchanged.
 *
 * @internal
 */
import { isTollwayError } from '../errors.js';
import { isRecord } from '../internal/is-record.js';
import { readMcpPaymentRequired, readMcpPaymentResponse, X402_MCP_KEYS } from '../x402/mcp.js';
import { type McpToolCallMessage, readMcpResponse } from '../x402/mcp-messages.js';
import { decodeBase64Json } from '../x402/wire.js';
import { offersOfPaymentRequired, type ParsedOffers } from './offers.js';
import type { PayingContext } from './paying-context.js';
import type { PaymentInfo } from './paying-fetch.js';
import { recordSettlement, type X402Settlement, x402Candidate } from './x402-payment.js';

/** The tool result answering `call` in a 200 answer, at most `maxBodyBytes` of it read. */
async function toolResultOf(
  context: PayingContext,
  response: Response,
  call: McpToolCallMessage,
): Promise<unknown> {
  if (response.status !== 200) return undefined;
  return (await readMcpResponse(response, call.id, context.maxBodyBytes))?.result;
}

/**
 * The x402 offers of a payment-required tool result answering `call`, when the x402 wallet would
 * pay one of them; undefined otherwise (the answer is then passed on as is).
 *
 * @internal
 */
export async function mcpOffers(
  context: PayingContext,
  response: Response,
  call: McpToolCallMessage,
): Promise<ParsedOffers | undefined> {
  if (context.x402 === undefined || !context.preferences.includes('x402')) return undefined;
  const required = readMcpPaymentRequired(await toolResultOf(context, response, call));
  if (required === undefined) return undefined;
  const offers = offersOfPaymentRequired(required);
  return (await x402Candidate(context, offers, false)) === undefined
    ? undefined
    : { offers, rejected: [] };
}

/**
 * The body of `call` with the signed payment (the JSON a `PAYMENT-SIGNATURE` value encodes) in
 * its `params._meta`.
 *
 * @internal
 */
export function paidToolCall(call: McpToolCallMessage, signature: string): Uint8Array {
  const { params } = call;
  const meta = isRecord(params._meta) ? params._meta : {};
  const payment = decodeBase64Json(signature, 'PAYMENT-SIGNATURE');
  const message = {
    ...call.message,
    params: { ...params, _meta: { ...meta, [X402_MCP_KEYS.payment]: payment } },
  };
  return new TextEncoder().encode(JSON.stringify(message));
}

/**
 * Records how the server settled an x402 payment sent in `_meta`: the SettleResponse of the tool
 * result, or a failure when the answer asks for payment again.
 *
 * @internal
 */
export async function noteMcpSettlement(
  context: PayingContext,
  payment: PaymentInfo,
  response: Response,
  call: McpToolCallMessage,
): Promise<void> {
  const result = await toolResultOf(context, response, call);
  let settled: X402Settlement | undefined;
  try {
    settled = readMcpPaymentResponse(result);
  } catch (error) {
    if (!isTollwayError(error)) throw error;
  }
  await recordSettlement(
    context,
    payment.ledgerId,
    settled,
    readMcpPaymentRequired(result) !== undefined,
  );
}
