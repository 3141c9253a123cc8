import { BatchSettlementEvmScheme } from '@x402/evm/batch-settlement/client';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { type Hex, parseEventLogs } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../test/support/chain.js';
import {
  type BatchChannelConfig,
  batchChannelId,
  createReceiverAuthorizer,
  verifyBatchVoucher,
} from './batch-channel.js';
import { X402_CONTRACTS } from './evm-contracts.js';
import { createSelfHostedFacilitator, type SelfHostedFacilitator } from './facilitator.js';
import { readLocalChainArtifacts } from './local-chain.js';
import type { X402PaymentPayload, X402PaymentRequirements } from './types.js';
import { requirementsToWire } from './wire.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const batchAbi = readLocalChainArtifacts().contracts.BatchSettlement.abi;

describe.skipIf(chain === undefined)('upto and batch-settlement on the real contracts', () => {
  const c = chain!;
  let facilitator: SelfHostedFacilitator;

  beforeAll(async () => {
    facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    await c.approvePermit2(c.accounts.payer.privateKey);
  });

  it('lists the three schemes, upto naming the facilitator as the one that settles', async () => {
    const supported = await facilitator.supported();
    const kinds = supported.kinds.map((kind) => kind.scheme).sort();
    expect(kinds).toEqual(['batch-settlement', 'exact', 'upto']);
    const upto = supported.kinds.find((kind) => kind.scheme === 'upto');
    expect(upto?.extra?.facilitatorAddress).toBe(facilitator.address);
  });

  it('upto: authorises a maximum, settles less, once; the rest never moves', async () => {
    const requirements: X402PaymentRequirements = {
      scheme: 'upto',
      network: c.network,
      asset: c.token,
      amount: 50_000n,
      payTo: c.accounts.payTo.address,
      maxTimeoutSeconds: 60,
      extra: {
        ...c.tokenDomain,
        assetTransferMethod: 'permit2',
        facilitatorAddress: facilitator.address,
      },
    };
    const scheme = new UptoEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey));
    const created = await scheme.createPaymentPayload(2, requirementsToWire(requirements));
    const payment: X402PaymentPayload = { ...created, accepted: requirements };
    const v = await facilitator.verify(payment, requirements);
    expect(v).toMatchObject({ isValid: true });
    const before = await c.balanceOf(c.accounts.payer.address);
    const settled = await facilitator.settle(payment, { ...requirements, amount: 12_345n });
    expect(settled).toMatchObject({ success: true, amount: 12_345n });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - 12_345n);
    const again = await facilitator.settle(payment, { ...requirements, amount: 1n });
    expect(again.success).toBe(false);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - 12_345n);
  });

  it('batch-settlement: deposit, claim, sweep and refund move exactly what they say', async () => {
    const authorizerKey = generatePrivateKey();
    const authorizer = createReceiverAuthorizer(authorizerKey);
    const requirements: X402PaymentRequirements = {
      scheme: 'batch-settlement',
      network: c.network,
      asset: c.token,
      amount: 1_000n,
      payTo: c.accounts.payTo.address,
      maxTimeoutSeconds: 60,
      extra: { ...c.tokenDomain, receiverAuthorizer: authorizer.address, withdrawDelay: 900 },
    };
    const scheme = new BatchSettlementEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey), {
      depositPolicy: { depositMultiplier: 10 },
    });
    const created = await scheme.createPaymentPayload(2, requirementsToWire(requirements));
    const deposit = created.payload as {
      type: string;
      channelConfig: BatchChannelConfig;
      voucher: { channelId: Hex; maxClaimableAmount: string; signature: Hex };
      deposit: { amount: string };
    };
    expect(deposit.type).toBe('deposit');
    expect(deposit.deposit.amount).toBe('10000');
    const channelId = batchChannelId(deposit.channelConfig, c.network);
    expect(channelId).toBe(deposit.voucher.channelId.toLowerCase());
    expect(
      await verifyBatchVoucher(
        {
          config: deposit.channelConfig,
          channelId,
          maxClaimableAmount: 1_000n,
          signature: deposit.voucher.signature,
        },
        c.network,
      ),
    ).toBe(true);
    const payment: X402PaymentPayload = { ...created, accepted: requirements };
    expect((await facilitator.verify(payment, requirements)).isValid).toBe(true);
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    const deposited = await facilitator.settle(payment, requirements);
    expect(deposited).toMatchObject({ success: true, amount: 10_000n });
    expect(await c.balanceOf(X402_CONTRACTS.batchSettlement)).toBeGreaterThanOrEqual(10_000n);
    const readChannel = async () =>
      (await c.client.readContract({
        address: X402_CONTRACTS.batchSettlement,
        abi: batchAbi,
        functionName: 'channels',
        args: [channelId],
      })) as readonly [bigint, bigint];
    expect(await readChannel()).toEqual([10_000n, 0n]);

    const claims = [
      {
        config: deposit.channelConfig,
        maxClaimableAmount: 1_000n,
        signature: deposit.voucher.signature,
        totalClaimed: 700n,
      },
    ];
    const operation = (payload: Record<string, unknown>): X402PaymentPayload => ({
      x402Version: 2,
      accepted: { ...requirements, amount: 0n },
      payload,
    });
    const claimed = await facilitator.settle(
      operation({
        type: 'claim',
        claims: claims.map((claim) => ({
          voucher: { channel: claim.config, maxClaimableAmount: '1000' },
          signature: claim.signature,
          totalClaimed: '700',
        })),
        claimAuthorizerSignature: await authorizer.signClaims(claims, c.network),
      }),
      { ...requirements, amount: 0n },
    );
    expect(claimed.success).toBe(true);
    const claimLogs = parseEventLogs({
      abi: batchAbi,
      eventName: 'Claimed',
      logs: (await c.client.getTransactionReceipt({ hash: claimed.transaction as Hex })).logs,
    });
    expect(claimLogs.map((log) => (log.args as { claimAmount: bigint }).claimAmount)).toEqual([
      700n,
    ]);
    expect(await readChannel()).toEqual([10_000n, 700n]);

    const payToBefore = await c.balanceOf(c.accounts.payTo.address);
    const swept = await facilitator.settle(
      operation({ type: 'settle', receiver: c.accounts.payTo.address, token: c.token }),
      { ...requirements, amount: 0n },
    );
    expect(swept).toMatchObject({ success: true, amount: 700n });
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 700n);

    const refundVoucher = await scheme.createPaymentPayload(2, requirementsToWire(requirements));
    const voucher = (refundVoucher.payload as { voucher: { signature: Hex } }).voucher;
    const refunded = await facilitator.settle(
      operation({
        type: 'refund',
        channelConfig: deposit.channelConfig,
        voucher: { channelId, maxClaimableAmount: '700', signature: voucher.signature },
        amount: '9300',
        refundNonce: '0',
        claims: [],
        refundAuthorizerSignature: await authorizer.signRefund(
          { channelId, nonce: 0n, amount: 9_300n },
          c.network,
        ),
      }),
      { ...requirements, amount: 0n },
    );
    expect(refunded).toMatchObject({ success: true, amount: 9_300n });
    expect(await readChannel()).toEqual([700n, 700n]);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 700n);
  });
});
