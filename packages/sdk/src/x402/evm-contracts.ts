/**
 * Where the contracts of x402's EVM schemes live: the same address on every chain (CREATE2
 * deployments), as `@x402/evm` has them built in.
 */
export const X402_CONTRACTS = {
  /** Uniswap's Permit2. */
  permit2: '0x000000000022D473030F116dDEE9F6B43aC78BA3',
  /** The x402 upto proxy: the spender of an `upto` Permit2 authorisation. */
  uptoProxy: '0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002',
  /** The x402 batch-settlement contract (payment channels). */
  batchSettlement: '0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003',
  /** Its deposit collector for EIP-3009 tokens. */
  erc3009DepositCollector: '0x4020806089470a89826cB9fB1f4059150b550004',
} as const satisfies Record<string, `0x${string}`>;
