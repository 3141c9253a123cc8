/**
 * Getting an x402 `batch-settlement` deposit back, on a real chain (anvil with TestUSDC and the
 * batch-settlement contracts), from a paywall on SQLite behind the node adapter on loopback HTTP
 * (its facilitator reached through the facilitator's HTTP API), paid by the official `@x402/fetch`
 * with the official batch-settlement client scheme: its
 * cooperative `refund()`, and the payer's own withdrawal through the contract (initiate, wait the
 * channel's delay, finalize). Balances and events are read on chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toClientEvmSigner } from '@x402/evm';
import {
  BatchSettlementEvmScheme,
  computeChannelId,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import {
  createTestClient,
  createWalletClient,
  type Hex,
  http,
  parseEventLogs,
  type TransactionReceipt,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/server/store.js';
import type { X402OfferKind } from '../../src/server/x402-offer.js';
import { createSqliteStore } from '../../src/stores/sqlite.js';
import { X402_CONTRACTS } from '../../src/x402/evm-contracts.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { createFacilitatorClient } from '../../src/x402/facilitator-client.js';
import { createFacilitatorHandler } from '../../src/x402/facilitator-http.js';
import { readLocalChainArtifacts } from '../../src/x402/local-chain.js';
import { parsePaymentRequiredHeader } from '../../src/x402/payment-required.js';
import { parsePaymentResponseHeader } from '../../src/x402/payment-response.js';
import { formatPaymentSignatureHeader } from '../../src/x402/payment-signature.js';
import type { X402PaymentRequirements } from '../../src/x402/types.js';
import { serveBatchSearch } from '../support/batch-search.js';
import { startTestChain } from '../support/chain.js';

const chain = await startTestChain();
afterAll(async () => {
  await chain?.close();
});

const PRICE = 1_000n; // $0.001 in USDC base units
const DEPOSIT = 5_000n; // the client's deposit: five calls
const WITHDRAW_DELAY = 900;
const batchAbi = readLocalChainArtifacts().contracts.BatchSettlement.abi;

describe.skipIf(chain === undefined)('x402 batch-settlement refunds on a real chain', () => {
  const c = chain!;
  const authorizerKey = generatePrivateKey();
  const directory = mkdtempSync(join(tmpdir(), 'tollway-batch-refund-'));
  const payer = privateKeyToAccount(c.accounts.payer.privateKey);
  const anvil = createTestClient({ mode: 'anvil', chain: c.chain, transport: http(c.rpcUrl) });
  const payerWallet = createWalletClient({
    account: payer,
    chain: c.chain,
    transport: http(c.rpcUrl),
  });
  let url: string;
  let offer: X402OfferKind;
  let store: Store;
  let requirements: X402PaymentRequirements;
  let handlerRuns = 0;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    store = createSqliteStore({ path: join(directory, 'tollway.db') });
    await store.init();
    // The facilitator as `tollway facilitator` serves it, reached over its HTTP API.
    const handle = createFacilitatorHandler(
      await createSelfHostedFacilitator({
        rpcUrl: c.rpcUrl,
        privateKey: c.accounts.facilitator.privateKey,
      }),
    );
    const facilitator = createFacilitatorClient({
      url: 'http://facilitator.test',
      fetch: (input, init) => handle(new Request(input, init)),
    });
    const served = await serveBatchSearch({
      chain: c,
      store,
      facilitator,
      authorizerKey,
      onServe: () => {
        handlerRuns += 1;
      },
    });
    ({ url, offer } = served);
    closers.push(served.close);
    const required = parsePaymentRequiredHeader(
      (await fetch(url)).headers.get('payment-required') ?? '',
    );
    requirements = required.accepts.find((offered) => offered.scheme === 'batch-settlement')!;
    // The payer sends its own withdrawal transactions: it needs gas.
    await anvil.setBalance({ address: payer.address, value: 10n ** 18n });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** The official client with the official batch-settlement scheme, on the channel of `salt`. */
  function officialClient(salt: Hex) {
    const scheme = new BatchSettlementEvmScheme(toClientEvmSigner(payer, c.client), {
      depositPolicy: { depositMultiplier: 5 },
      salt,
    });
    const client = new x402Client();
    client.register('eip155:*', scheme);
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    return { scheme, fetch: wrapFetchWithPayment(fetch, client) };
  }

  /** The channel config the official client builds for `salt`. */
  function configOf(salt: Hex) {
    return {
      payer: payer.address,
      payerAuthorizer: payer.address,
      receiver: c.accounts.payTo.address,
      receiverAuthorizer: privateKeyToAccount(authorizerKey).address,
      token: c.token,
      withdrawDelay: WITHDRAW_DELAY,
      salt,
    };
  }

  /** A voucher payment for `max` on the channel of `salt`, signed by hand. */
  async function voucher(salt: Hex, max: bigint): Promise<string> {
    const config = configOf(salt);
    const fields = await signVoucher(
      payer,
      computeChannelId(config, c.network),
      max.toString(),
      c.network,
    );
    return formatPaymentSignatureHeader({
      x402Version: 2,
      accepted: requirements,
      payload: { type: 'voucher', channelConfig: config, voucher: fields },
    });
  }

  /** A refund payment on the channel of `salt`, its voucher signed by hand for `max`. */
  async function refundHeader(salt: Hex, max: bigint): Promise<string> {
    const config = configOf(salt);
    const fields = await signVoucher(
      payer,
      computeChannelId(config, c.network),
      max.toString(),
      c.network,
    );
    return formatPaymentSignatureHeader({
      x402Version: 2,
      accepted: requirements,
      payload: { type: 'refund', channelConfig: config, voucher: fields },
    });
  }

  async function onChain(salt: Hex): Promise<{ balance: bigint; totalClaimed: bigint }> {
    const [balance, totalClaimed] = (await c.client.readContract({
      address: X402_CONTRACTS.batchSettlement,
      abi: batchAbi,
      functionName: 'channels',
      args: [computeChannelId(configOf(salt), c.network)],
    })) as readonly [bigint, bigint];
    return { balance, totalClaimed };
  }

  function events(receipt: TransactionReceipt, eventName: string): Array<Record<string, unknown>> {
    return parseEventLogs({ abi: batchAbi, eventName, logs: receipt.logs }).map(
      (log) => log.args as Record<string, unknown>,
    );
  }

  it('refund(): the payer gets exactly its deposit less what it spent; the receiver what it spent', async () => {
    const salt = `0x${'01'.repeat(32)}` as const;
    const payerBefore = await c.balanceOf(payer.address);
    const payToBefore = await c.balanceOf(c.accounts.payTo.address);
    const official = officialClient(salt);
    for (let call = 0; call < 3; call++) expect((await official.fetch(url)).status).toBe(200);
    // Three calls claimed and swept, one more drawn and still pending when the refund comes.
    expect(await offer.redeemBatch()).toMatchObject({ claimed: 1, amount: 3n * PRICE });
    expect((await official.fetch(url)).status).toBe(200);
    const sent: Headers[] = [];
    const recording: typeof fetch = (input, init) => {
      sent.push(new Headers(init?.headers));
      return fetch(input, init);
    };
    const runs = handlerRuns;
    const settled = await official.scheme.refund(url, { fetch: recording });
    expect(settled).toMatchObject({ success: true, amount: String(DEPOSIT - 4n * PRICE) });
    expect(handlerRuns).toBe(runs);

    expect(await c.balanceOf(payer.address)).toBe(payerBefore - 4n * PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 4n * PRICE);
    expect(await onChain(salt)).toEqual({ balance: 4n * PRICE, totalClaimed: 4n * PRICE });
    const receipt = await c.client.getTransactionReceipt({
      hash: settled.transaction as Hex,
    });
    expect(events(receipt, 'Claimed')).toMatchObject([
      { claimAmount: PRICE, newTotalClaimed: 4n * PRICE },
    ]);
    expect(events(receipt, 'Refunded')).toMatchObject([{ amount: DEPOSIT - 4n * PRICE }]);
    const revenue = await store.listSettlements({ service: 'x402-batch' });
    expect(revenue.map((row) => row.amount).sort()).toEqual([PRICE, 3n * PRICE]);

    // The same refund again: nothing is left, nothing moves.
    const refund = sent.at(-1)?.get('payment-signature') ?? '';
    expect(refund).not.toBe('');
    const again = await fetch(url, { headers: { 'payment-signature': refund } });
    expect(again.status).toBe(402);
    expect(((await again.json()) as { code: string }).code).toBe('x402_refund_refused');
    expect(parsePaymentResponseHeader(again.headers.get('payment-response') ?? '')).toMatchObject({
      success: false,
      errorReason: 'invalid_batch_settlement_evm_refund_no_balance',
    });
    // A voucher signed before the refund, for more than was claimed, draws nothing.
    const stale = await fetch(url, {
      headers: { 'payment-signature': await voucher(salt, 5n * PRICE) },
    });
    expect(stale.status).toBe(402);
    expect(handlerRuns).toBe(runs);
    expect(await c.balanceOf(payer.address)).toBe(payerBefore - 4n * PRICE);

    // The channel takes a new deposit after its refund, and draws only from that.
    expect((await official.fetch(url)).status).toBe(200);
    expect(handlerRuns).toBe(runs + 1);
    expect(await onChain(salt)).toEqual({
      balance: 4n * PRICE + DEPOSIT,
      totalClaimed: 4n * PRICE,
    });
    const second = await official.scheme.refund(url);
    expect(second).toMatchObject({ success: true, amount: String(DEPOSIT - PRICE) });
    expect(await c.balanceOf(payer.address)).toBe(payerBefore - 5n * PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 5n * PRICE);
  });

  it('a refund voucher below what the channel drew gets a corrective 402, which the official client recovers from', async () => {
    const salt = `0x${'02'.repeat(32)}` as const;
    const official = officialClient(salt);
    expect((await official.fetch(url)).status).toBe(200);
    expect((await official.fetch(url)).status).toBe(200);
    const refused = await fetch(url, {
      headers: { 'payment-signature': await refundHeader(salt, PRICE) },
    });
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { code: string }).code).toBe('x402_voucher_mismatch');
    // As the official server answers: no settlement, the channel's state and highest voucher instead.
    expect(refused.headers.get('payment-response')).toBeNull();
    const corrective = parsePaymentRequiredHeader(refused.headers.get('payment-required') ?? '');
    expect(corrective.error).toBe('invalid_batch_settlement_evm_cumulative_amount_mismatch');
    const accept = corrective.accepts.find((offered) => offered.scheme === 'batch-settlement');
    expect(accept?.extra).toMatchObject({
      channelState: { chargedCumulativeAmount: String(2n * PRICE), balance: String(DEPOSIT) },
      voucherState: { signedMaxClaimable: String(2n * PRICE) },
    });
    expect(await onChain(salt)).toEqual({ balance: DEPOSIT, totalClaimed: 0n });
    // A client that knows nothing of the channel (another process) signs for what the chain
    // claimed (nothing), is corrected, and refunds: a partial refund leaves the rest drawable.
    const fresh = officialClient(salt);
    const partial = await fresh.scheme.refund(url, { amount: String(PRICE) });
    expect(partial).toMatchObject({ success: true, amount: String(PRICE) });
    expect(await onChain(salt)).toEqual({ balance: DEPOSIT - PRICE, totalClaimed: 2n * PRICE });
    expect((await official.fetch(url)).status).toBe(200);
    expect(await offer.redeemBatch()).toMatchObject({ claimed: 1, amount: PRICE });
    expect(await onChain(salt)).toEqual({ balance: DEPOSIT - PRICE, totalClaimed: 3n * PRICE });
  });

  it('a refund racing draws on the channel: what is drawn and what is refunded add up to the deposit', async () => {
    const salt = `0x${'04'.repeat(32)}` as const;
    const payerBefore = await c.balanceOf(payer.address);
    const payToBefore = await c.balanceOf(c.accounts.payTo.address);
    const official = officialClient(salt);
    expect((await official.fetch(url)).status).toBe(200);
    const runs = handlerRuns;
    // Vouchers for the four calls left, sent at once with a refund whose voucher covers them all.
    const headers = await Promise.all([2n, 3n, 4n, 5n].map((n) => voucher(salt, n * PRICE)));
    const refund = await refundHeader(salt, DEPOSIT);
    const [answer, ...calls] = await Promise.all(
      [refund, ...headers].map((header) =>
        fetch(url, { headers: { 'payment-signature': header } }),
      ),
    );
    expect(answer?.status).toBe(200);
    const refunded = parsePaymentResponseHeader(answer?.headers.get('payment-response') ?? '');
    const served = BigInt(handlerRuns - runs);
    expect(calls.filter((call) => call.status === 200)).toHaveLength(Number(served));
    await offer.redeemBatch();
    const spent = (1n + served) * PRICE;
    expect(refunded).toMatchObject({ success: true, amount: DEPOSIT - spent });
    expect(await c.balanceOf(payer.address)).toBe(payerBefore - spent);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + spent);
    expect(await onChain(salt)).toEqual({ balance: spent, totalClaimed: spent });
  });

  it('a payer withdraws without the server: what it drew is claimed first, its vouchers refused', async () => {
    const salt = `0x${'03'.repeat(32)}` as const;
    const config = configOf(salt);
    const payerBefore = await c.balanceOf(payer.address);
    const payToBefore = await c.balanceOf(c.accounts.payTo.address);
    const official = officialClient(salt);
    expect((await official.fetch(url)).status).toBe(200);
    expect((await official.fetch(url)).status).toBe(200);

    const initiated = await c.client.waitForTransactionReceipt({
      hash: await payerWallet.writeContract({
        address: X402_CONTRACTS.batchSettlement,
        abi: batchAbi,
        functionName: 'initiateWithdraw',
        args: [config, DEPOSIT],
      }),
    });
    expect(events(initiated, 'WithdrawInitiated')).toMatchObject([{ amount: DEPOSIT }]);
    // The server has not read the chain since: one more call is served, and claimed below.
    expect((await official.fetch(url)).status).toBe(200);
    expect(await offer.redeemBatch()).toMatchObject({ claimed: 1, amount: 3n * PRICE });
    const runs = handlerRuns;
    expect((await official.fetch(url)).status).toBe(402);
    expect(
      (await fetch(url, { headers: { 'payment-signature': await voucher(salt, 4n * PRICE) } }))
        .status,
    ).toBe(402);
    expect(handlerRuns).toBe(runs);

    const finalize = {
      address: X402_CONTRACTS.batchSettlement,
      abi: batchAbi,
      functionName: 'finalizeWithdraw',
      args: [config],
    } as const;
    await expect(payerWallet.writeContract(finalize)).rejects.toThrow(/WithdrawDelayNotElapsed/);
    await anvil.increaseTime({ seconds: WITHDRAW_DELAY });
    await anvil.mine({ blocks: 1 });
    const finalized = await c.client.waitForTransactionReceipt({
      hash: await payerWallet.writeContract(finalize),
    });
    expect(events(finalized, 'WithdrawFinalized')).toMatchObject([
      { amount: DEPOSIT - 3n * PRICE },
    ]);
    expect(await c.balanceOf(payer.address)).toBe(payerBefore - 3n * PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 3n * PRICE);
    expect(await onChain(salt)).toEqual({ balance: 3n * PRICE, totalClaimed: 3n * PRICE });
  });
});
