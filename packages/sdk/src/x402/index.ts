/**
 * `@tollway/sdk/x402`: x402 v2 and v1 on the wire (`PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`,
 * `PAYMENT-RESPONSE`; the v1 body, `X-PAYMENT`, `X-PAYMENT-RESPONSE`) with bigint amounts and
 * CAIP-2 networks; x402 over MCP tool calls (`_meta` payments, payment-required tool results, and
 * the `tools/call` request and its JSON-RPC response in a JSON or SSE answer); the `exact` EVM
 * payload and an EVM wallet that signs it; and facilitators: the interface, a self-hosted one on
 * `@x402/core` + `@x402/evm` + `viem` (optional peer dependencies), a remote client and an HTTP
 * handler.
 */

export {
  type BatchChannelConfig,
  type BatchChannels,
  type BatchClaim,
  createBatchChannels,
  type ReceiverAuthorizer,
} from './batch-channel.js';
export {
  createEvmWallet,
  type EvmWallet,
  type EvmWalletOptions,
  type SignedX402Payment,
} from './evm-wallet.js';
export {
  type ExactEvmAuthorization,
  type ExactEvmPayload,
  parseExactEvmPayload,
} from './exact-evm.js';
export {
  createSelfHostedFacilitator,
  type Facilitator,
  type SelfHostedFacilitator,
  type SelfHostedFacilitatorOptions,
} from './facilitator.js';
export { createFacilitatorClient, type FacilitatorClientOptions } from './facilitator-client.js';
export { createFacilitatorHandler } from './facilitator-http.js';
export { X402_HEADERS } from './headers.js';
export {
  createMcpPaymentRequiredResult,
  type McpToolResult,
  mcpToolUrl,
  readMcpPayment,
  readMcpPaymentRequired,
  readMcpPaymentResponse,
  withMcpPaymentResponse,
  X402_MCP_KEYS,
} from './mcp.js';
export {
  findMcpResponse,
  type JsonRpcId,
  type McpResponseMatch,
  type McpToolCallMessage,
  readMcpToolCall,
} from './mcp-messages.js';
export { formatPaymentRequiredHeader, parsePaymentRequiredHeader } from './payment-required.js';
export { formatPaymentResponseHeader, parsePaymentResponseHeader } from './payment-response.js';
export { formatPaymentSignatureHeader, parsePaymentSignatureHeader } from './payment-signature.js';
export type * from './types.js';
export {
  formatPaymentRequiredV1Body,
  formatXPaymentHeader,
  formatXPaymentResponseHeader,
  parsePaymentRequiredV1Body,
  parseXPaymentHeader,
  parseXPaymentResponseHeader,
} from './v1.js';
export { networkFromV1, networkToV1 } from './v1-networks.js';
export { isX402Network, X402_MAX_BODY_LENGTH, X402_MAX_HEADER_LENGTH } from './wire.js';
