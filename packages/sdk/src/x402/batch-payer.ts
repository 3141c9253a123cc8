/**
 * The paying side of x402 `batch-settlement` channels, on `@x402/evm`'s own client scheme: it
 * signs a deposit (with the first voucher) or a voucher for each call, reads the server's answer
 * to keep its record of the channel (or corrects it from a corrective 402), and asks for the
 * cooperative refund of what is left. The record lives where the caller keeps it
 * ({@link BatchChannelStorage}), and the deposit is sized by the caller ({@link BatchDepositAsk}).
 * It reads the channel contract through `rpcUrl`: a payer without its record (another process,
 * a lost file) rebuilds it from the chain.
 */
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from '@x402/core/http';
import type { PaymentRequirements } from '@x402/core/types';
import { toClientEvmSigner } from '@x402/evm';
import {
  type BatchSettlementDepositStrategyContext,
  BatchSettlementEvmScheme,
  computeChannelId,
  readChannelBalanceAndTotalClaimed,
} from '@x402/evm/batch-settlement/client';
import { createPublicClient, http } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { TollwayError } from '../errors.js';
import { X402_HEADERS } from './headers.js';
import { encodeBase64Json } from './wire.js';

/** Where a payer keeps its record of each channel (x402's client fields, decimal strings). */
export interface BatchChannelStorage {
  get(channelId: string): Promise<Record<string, string> | undefined>;
  set(channelId: string, record: Record<string, string>): Promise<void>;
  /** The channel was refunded in full: no record until its next deposit. */
  delete(channelId: string): Promise<void>;
}

/** What sizing a deposit is told; token base units. */
export interface BatchDepositAsk {
  channelId: `0x${string}`;
  /** The price of the call. */
  price: bigint;
  /** The least that lets this call's voucher through. */
  minimum: bigint;
  /** x402's own choice: the server's `minDeposit`, else five calls. */
  suggested: bigint;
}

/** A signed batch-settlement payment. */
export interface BatchPaymentSigned {
  header: { name: string; value: string };
  channelId: `0x${string}`;
  /** Deposited with this payment, token base units; undefined for a voucher alone. */
  deposit?: bigint;
  /** The payment as sent, for {@link BatchPayer.answered}. */
  payment: Record<string, unknown>;
}

/** What the server said of a batch-settlement payment. */
export interface BatchAnswer {
  /** The server corrected the payer's record (a corrective 402): sign again. */
  recovered: boolean;
  /** `PAYMENT-RESPONSE`, when the answer carries one. */
  settled?: { success: boolean; transaction: string; charged?: bigint };
}

/** Pays batch-settlement offers; see the module comment. */
export interface BatchPayer {
  /** The id of the payer's channel with the receiver of `requirement` (lower-case hex). */
  channelId(requirement: Readonly<Record<string, unknown>>): `0x${string}`;
  /** Signs a payment of `requirement`: a deposit of what `deposit` says, or a voucher. */
  sign(
    requirement: Readonly<Record<string, unknown>>,
    storage: BatchChannelStorage,
    deposit: (ask: BatchDepositAsk) => Promise<bigint>,
  ): Promise<BatchPaymentSigned>;
  /** Reads the answer to a payment: keeps the record, or corrects it from a corrective 402. */
  answered(
    signed: BatchPaymentSigned,
    storage: BatchChannelStorage,
    answer: { status: number; header(name: string): string | null },
  ): Promise<BatchAnswer>;
  /**
   * Asks the server at `url` (any route the channel pays) to refund what is left of the channel
   * of `requirement`: what went back and the transaction. Throws `x402_refund_refused` when the
   * server refuses (its reason in the message).
   */
  refund(
    url: string,
    storage: BatchChannelStorage,
  ): Promise<{ amount: bigint | undefined; transaction: string }>;
  /** What channel `channelId` holds in the contract, read on chain, and what was claimed of it. */
  onChain(channelId: `0x${string}`): Promise<{ balance: bigint; totalClaimed: bigint }>;
}

/** `account`, reading the chain at `rpcUrl`. */
function signerOf(account: PrivateKeyAccount, rpcUrl: string) {
  return toClientEvmSigner(account, createPublicClient({ transport: http(rpcUrl) }));
}

/** The scheme of `account` over `storage`, its deposits sized by `deposit`. */
function schemeOf(
  account: PrivateKeyAccount,
  rpcUrl: string,
  storage: BatchChannelStorage,
  deposit?: (ask: BatchDepositAsk) => Promise<bigint>,
): BatchSettlementEvmScheme {
  const strategy =
    deposit === undefined
      ? undefined
      : async (asked: BatchSettlementDepositStrategyContext) =>
          deposit({
            channelId: asked.channelId.toLowerCase() as `0x${string}`,
            price: BigInt(asked.requestAmount),
            minimum: BigInt(asked.minimumDepositAmount),
            suggested: BigInt(asked.depositAmount),
          });
  return new BatchSettlementEvmScheme(signerOf(account, rpcUrl), {
    storage,
    ...(strategy === undefined ? {} : { depositStrategy: strategy }),
  });
}

/** The requirement as x402's client takes it (the wire form, amounts as decimal strings). */
function requirementsOf(requirement: Readonly<Record<string, unknown>>): PaymentRequirements {
  return requirement as unknown as PaymentRequirements;
}

function bigintOf(value: unknown): bigint | undefined {
  return typeof value === 'string' && /^[0-9]{1,78}$/.test(value) ? BigInt(value) : undefined;
}

/**
 * A batch-settlement payer for `account`, reading the chain at `rpcUrl`.
 *
 * @example
 * ```ts
 * const payer = createBatchPayer(account, 'http://127.0.0.1:8545');
 * const signed = await payer.sign(requirement, storage, async (ask) => ask.suggested);
 * ```
 */
export function createBatchPayer(account: PrivateKeyAccount, rpcUrl: string): BatchPayer {
  return {
    channelId(requirement) {
      const scheme = schemeOf(account, rpcUrl, {
        get: async () => undefined,
        set: async () => {},
        delete: async () => {},
      });
      const wire = requirementsOf(requirement);
      const config = scheme.buildChannelConfig(wire);
      return computeChannelId(config, wire.network).toLowerCase() as `0x${string}`;
    },

    async sign(requirement, storage, deposit) {
      const wire = requirementsOf(requirement);
      const scheme = schemeOf(account, rpcUrl, storage, deposit);
      const made = await scheme.createPaymentPayload(2, wire);
      const payment = { x402Version: 2, accepted: requirement, payload: made.payload };
      const depositOf = (made.payload as { deposit?: { amount?: unknown } }).deposit?.amount;
      const amount = bigintOf(depositOf);
      const channelId = computeChannelId(scheme.buildChannelConfig(wire), wire.network);
      return {
        header: {
          name: X402_HEADERS.paymentSignature,
          value: encodeBase64Json(payment, X402_HEADERS.paymentSignature),
        },
        channelId: channelId.toLowerCase() as `0x${string}`,
        ...(amount === undefined ? {} : { deposit: amount }),
        payment,
      };
    },

    async answered(signed, storage, answer) {
      const scheme = schemeOf(account, rpcUrl, storage);
      const payment = signed.payment as unknown as Parameters<
        NonNullable<BatchSettlementEvmScheme['schemeHooks']['onPaymentResponse']>
      >[0]['paymentPayload'];
      const responseHeader = answer.header(X402_HEADERS.paymentResponse);
      const requiredHeader = answer.header(X402_HEADERS.paymentRequired);
      let settleResponse: ReturnType<typeof decodePaymentResponseHeader> | undefined;
      let paymentRequired: ReturnType<typeof decodePaymentRequiredHeader> | undefined;
      try {
        if (responseHeader !== null) settleResponse = decodePaymentResponseHeader(responseHeader);
        else if (answer.status === 402 && requiredHeader !== null) {
          paymentRequired = decodePaymentRequiredHeader(requiredHeader);
        }
      } catch {
        // A malformed header says nothing.
      }
      const outcome = await scheme.schemeHooks.onPaymentResponse?.({
        paymentPayload: payment,
        requirements: payment.accepted,
        ...(settleResponse === undefined ? {} : { settleResponse }),
        ...(paymentRequired === undefined ? {} : { paymentRequired }),
      });
      const charged = bigintOf(settleResponse?.extra?.chargedAmount);
      return {
        recovered: outcome?.recovered === true,
        ...(settleResponse === undefined
          ? {}
          : {
              settled: {
                success: settleResponse.success,
                transaction: settleResponse.transaction,
                ...(charged === undefined ? {} : { charged }),
              },
            }),
      };
    },

    async refund(url, storage) {
      const scheme = schemeOf(account, rpcUrl, storage);
      let settled: Awaited<ReturnType<BatchSettlementEvmScheme['refund']>>;
      try {
        settled = await scheme.refund(url);
      } catch (cause) {
        const message = cause instanceof Error ? cause.message : String(cause);
        throw new TollwayError('x402_refund_refused', message, { cause });
      }
      return { amount: bigintOf(settled.amount), transaction: settled.transaction };
    },

    async onChain(channelId) {
      const [balance, totalClaimed] = await readChannelBalanceAndTotalClaimed(
        signerOf(account, rpcUrl),
        channelId,
      );
      return { balance, totalClaimed };
    },
  };
}
