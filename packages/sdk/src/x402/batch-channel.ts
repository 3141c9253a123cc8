/**
 * The EVM side of x402 `batch-settlement` channels that a server needs without a chain round trip:
 * a channel's id from its config, a payer's cumulative voucher checked by its EIP-712 signature,
 * and the receiver authorizer's signatures over claim batches and refunds. On `@x402/evm`'s
 * batch-settlement types and viem; the channel contract is at `@x402/evm`'s canonical address.
 */
import { BATCH_SETTLEMENT_ADDRESS, claimBatchTypes, refundTypes, voucherTypes } from '@x402/evm';
import { computeChannelId } from '@x402/evm/batch-settlement/client';
import { getAddress, type Hex, recoverTypedDataAddress } from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import { TollwayError } from '../errors.js';
import type { X402Network } from './types.js';

/** A channel's immutable parameters; their EIP-712 hash is the channel id. */
export interface BatchChannelConfig {
  payer: `0x${string}`;
  payerAuthorizer: `0x${string}`;
  receiver: `0x${string}`;
  receiverAuthorizer: `0x${string}`;
  token: `0x${string}`;
  /** Seconds. */
  withdrawDelay: number;
  salt: `0x${string}`;
}

/** One row of a claim batch: a payer's voucher and the cumulative amount claimed with it. */
export interface BatchClaim {
  config: BatchChannelConfig;
  /** The voucher's cumulative ceiling. */
  maxClaimableAmount: bigint;
  /** The payer's signature of the voucher. */
  signature: `0x${string}`;
  /** What is claimed in total, at most the ceiling. */
  totalClaimed: bigint;
}

/** Signs claim batches and refunds as a channel's `receiverAuthorizer`. */
export interface ReceiverAuthorizer {
  readonly address: `0x${string}`;
  signClaims(claims: readonly BatchClaim[], network: X402Network): Promise<`0x${string}`>;
  signRefund(
    refund: { channelId: `0x${string}`; nonce: bigint; amount: bigint },
    network: X402Network,
  ): Promise<`0x${string}`>;
}

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

function chainIdOf(network: X402Network): number {
  const match = /^eip155:([0-9]{1,15})$/.exec(network);
  if (match === null) throw new TollwayError('invalid_config', `not an EVM network: ${network}`);
  return Number(match[1]);
}

function domainOf(network: X402Network) {
  return {
    name: 'x402 Batch Settlement',
    version: '1',
    chainId: chainIdOf(network),
    verifyingContract: getAddress(BATCH_SETTLEMENT_ADDRESS),
  } as const;
}

/**
 * The id of the channel `config` names on `network` (lower-case hex).
 *
 * @example
 * ```ts
 * const id = batchChannelId(config, 'eip155:8453');
 * ```
 */
export function batchChannelId(config: BatchChannelConfig, network: X402Network): `0x${string}` {
  return computeChannelId(config, network).toLowerCase() as `0x${string}`;
}

/**
 * True when the channel's payer authorizer signed a voucher for `maxClaimableAmount` on
 * `channelId`: an ECDSA check, no RPC. A channel whose payer authorizer is the zero address signs
 * through its payer's contract (ERC-1271), which only a chain can check: false here.
 */
export async function verifyBatchVoucher(
  voucher: {
    config: BatchChannelConfig;
    channelId: `0x${string}`;
    maxClaimableAmount: bigint;
    signature: `0x${string}`;
  },
  network: X402Network,
): Promise<boolean> {
  if (voucher.config.payerAuthorizer.toLowerCase() === ZERO_ADDRESS) return false;
  try {
    const signer = await recoverTypedDataAddress({
      domain: domainOf(network),
      types: voucherTypes,
      primaryType: 'Voucher',
      message: { channelId: voucher.channelId, maxClaimableAmount: voucher.maxClaimableAmount },
      signature: voucher.signature,
    });
    return signer.toLowerCase() === voucher.config.payerAuthorizer.toLowerCase();
  } catch {
    return false;
  }
}

function toAccount(privateKey: string): PrivateKeyAccount {
  const hex = privateKey.startsWith('0x') ? privateKey : `0x${privateKey}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new TollwayError('invalid_config', 'the receiver authorizer key must be 32 bytes of hex');
  }
  try {
    return privateKeyToAccount(hex as Hex);
  } catch (cause) {
    throw new TollwayError('invalid_config', 'the receiver authorizer key is not a valid key', {
      cause,
    });
  }
}

/** A server's side of batch-settlement channels; see {@link createBatchChannels}. */
export interface BatchChannels {
  /** Signs the claims and refunds of the channels bound to its address. */
  readonly authorizer: ReceiverAuthorizer;
  channelId(config: BatchChannelConfig, network: X402Network): `0x${string}`;
  verifyVoucher(
    voucher: Parameters<typeof verifyBatchVoucher>[0],
    network: X402Network,
  ): Promise<boolean>;
}

/**
 * What the x402 offer's `batch` needs to check vouchers and redeem them, for channels whose
 * receiver authorizer is the key `receiverAuthorizerKey` (32 bytes of hex): channel ids, voucher
 * signatures (no RPC) and the authorizer's signatures. Throws `invalid_config` for a malformed key.
 *
 * @example
 * ```ts
 * const channels = createBatchChannels(process.env.RECEIVER_AUTHORIZER_KEY ?? '');
 * createX402Offer({ ...offer, batch: { store, channels } });
 * ```
 */
export function createBatchChannels(receiverAuthorizerKey: string): BatchChannels {
  return {
    authorizer: createReceiverAuthorizer(receiverAuthorizerKey),
    channelId: batchChannelId,
    verifyVoucher: verifyBatchVoucher,
  };
}

/**
 * The receiver authorizer of a private key: it signs the `ClaimBatch` and `Refund` messages the
 * channel contract checks. Throws `invalid_config` for a malformed key.
 *
 * @example
 * ```ts
 * const authorizer = createReceiverAuthorizer(process.env.RECEIVER_AUTHORIZER_KEY ?? '');
 * const signature = await authorizer.signClaims(claims, 'eip155:8453');
 * ```
 */
export function createReceiverAuthorizer(privateKey: string): ReceiverAuthorizer {
  const account = toAccount(privateKey);
  return {
    address: account.address,
    signClaims(claims, network) {
      return account.signTypedData({
        domain: domainOf(network),
        types: claimBatchTypes,
        primaryType: 'ClaimBatch',
        message: {
          claims: claims.map((claim) => ({
            channelId: batchChannelId(claim.config, network),
            maxClaimableAmount: claim.maxClaimableAmount,
            totalClaimed: claim.totalClaimed,
          })),
        },
      });
    },
    signRefund(refund, network) {
      return account.signTypedData({
        domain: domainOf(network),
        types: refundTypes,
        primaryType: 'Refund',
        message: { channelId: refund.channelId, nonce: refund.nonce, amount: refund.amount },
      });
    },
  };
}
