import { toClientEvmSigner } from '@x402/evm';
import {
  BatchSettlementEvmScheme,
  type ClientChannelStorage,
  computeChannelId,
  InMemoryClientChannelStorage,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { parseEventLogs } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/server/store.js';
import type { X402OfferKind } from '../../src/server/x402-offer.js';
import { createPostgresStore } from '../../src/stores/postgres.js';
import { X402_CONTRACTS } from '../../src/x402/evm-contracts.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { readLocalChainArtifacts } from '../../src/x402/local-chain.js';
import { parsePaymentRequiredHeader } from '../../src/x402/payment-required.js';
import { formatPaymentSignatureHeader } from '../../src/x402/payment-signature.js';
import type { X402PaymentRequirements } from '../../src/x402/types.js';
import { serveBatchSearch } from '../support/batch-search.js';
import { startTestChain } from '../support/chain.js';
import { startTestPostgres } from '../support/postgres.js';

const chain = await startTestChain();
const postgres = await startTestPostgres();
afterAll(async () => {
  await chain?.close();
  await postgres?.stop();
});

const PRICE = 1_000n; // $0.001 in USDC base units
const DEPOSIT = 5_000n;
const batchAbi = readLocalChainArtifacts().contracts.BatchSettlement.abi;

describe.skipIf(chain === undefined || postgres === undefined)(
  'x402 batch-settlement on a real chain, two instances on one PostgreSQL',
  () => {
    const c = chain!;
    const authorizerKey = generatePrivateKey();
    const instances: Array<{ url: string; offer: X402OfferKind; store: Store }> = [];
    const closers: Array<() => Promise<void>> = [];
    let handlerRuns = 0;

    async function instance(url: string): Promise<void> {
      const store: Store = createPostgresStore({ connectionString: url });
      await store.init();
      const facilitator = await createSelfHostedFacilitator({
        rpcUrl: c.rpcUrl,
        privateKey: c.accounts.facilitator.privateKey,
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
      instances.push({ url: served.url, offer: served.offer, store });
      closers.push(served.close);
    }

    /**
     * The official client with the official batch-settlement scheme, a deposit of 5 calls; its
     * record of the channel in `storage`, its channel's salt `salt` when given. It reads the
     * chain (to check a corrective 402) through `reader` when given.
     */
    function batchFetch(
      options: { storage?: ClientChannelStorage; salt?: `0x${string}`; reader?: boolean } = {},
    ): typeof fetch {
      const { reader, ...scheme } = options;
      const account = privateKeyToAccount(c.accounts.payer.privateKey);
      const client = new x402Client();
      client.register(
        'eip155:*',
        new BatchSettlementEvmScheme(reader ? toClientEvmSigner(account, c.client) : account, {
          depositPolicy: { depositMultiplier: 5 },
          ...scheme,
        }),
      );
      client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
      return wrapFetchWithPayment(fetch, client);
    }

    let requirements: X402PaymentRequirements;

    /** A voucher payment for `max` on the payer's channel, signed by hand. */
    async function voucher(max: bigint): Promise<string> {
      const config = {
        payer: c.accounts.payer.address,
        payerAuthorizer: c.accounts.payer.address,
        receiver: c.accounts.payTo.address,
        receiverAuthorizer: privateKeyToAccount(authorizerKey).address,
        token: c.token,
        withdrawDelay: 900,
        salt: `0x${'0'.repeat(64)}` as const,
      };
      const channelId = computeChannelId(config, c.network);
      const fields = await signVoucher(
        privateKeyToAccount(c.accounts.payer.privateKey),
        channelId,
        max.toString(),
        c.network,
      );
      return formatPaymentSignatureHeader({
        x402Version: 2,
        accepted: requirements,
        payload: { type: 'voucher', channelConfig: config, voucher: fields },
      });
    }

    /** The payer's signature of a voucher for `max` on its channel. */
    async function signatureOf(max: bigint): Promise<string> {
      const account = privateKeyToAccount(c.accounts.payer.privateKey);
      const channelId = await voucherChannel();
      return (await signVoucher(account, channelId, max.toString(), c.network)).signature;
    }

    /**
     * What a corrective 402 tells (checked to be one, in x402's wire form: no PAYMENT-RESPONSE,
     * the mismatch as its `error`, the route's requirements again, the channel's state in the
     * batch-settlement ones): the charged amount, the highest voucher and its signature.
     */
    async function corrective(answer: Response): Promise<Record<string, unknown>> {
      expect(answer.status).toBe(402);
      expect(((await answer.json()) as { code: string }).code).toBe('x402_voucher_mismatch');
      expect(answer.headers.get('payment-response')).toBeNull();
      const required = parsePaymentRequiredHeader(answer.headers.get('payment-required') ?? '');
      expect(required.error).toBe('invalid_batch_settlement_evm_cumulative_amount_mismatch');
      expect(required.accepts.map((offered) => offered.scheme)).toEqual([
        'batch-settlement',
        'exact',
      ]);
      const { channelState, voucherState, ...extra } = required.accepts[0]!.extra as Record<
        string,
        Record<string, unknown>
      >;
      expect(extra).toEqual(requirements.extra);
      expect(channelState).toMatchObject({
        channelId: (await voucherChannel()).toLowerCase(),
        balance: String(DEPOSIT),
        totalClaimed: '0',
        withdrawRequestedAt: 0,
      });
      return {
        chargedCumulativeAmount: channelState?.chargedCumulativeAmount,
        signedMaxClaimable: voucherState?.signedMaxClaimable,
        signature: voucherState?.signature,
      };
    }

    const pay = (at: number, header: string) =>
      fetch(instances[at % 2]!.url, { headers: { 'payment-signature': header } });

    beforeAll(async () => {
      const url = await postgres!.createDatabase();
      await instance(url);
      await instance(url);
      const answer = await fetch(instances[0]!.url);
      const required = parsePaymentRequiredHeader(answer.headers.get('payment-required') ?? '');
      requirements = required.accepts.find((offered) => offered.scheme === 'batch-settlement')!;
    });
    afterAll(async () => {
      for (const close of closers) await close();
    });

    it('offers batch-settlement for the request price, bound to our receiver authorizer', () => {
      expect(requirements).toMatchObject({
        amount: PRICE,
        extra: {
          receiverAuthorizer: privateKeyToAccount(authorizerKey).address,
          withdrawDelay: 900,
        },
      });
    });

    it('a deposit, then vouchers on either instance; replays and reorders refused', async () => {
      const payerBefore = await c.balanceOf(c.accounts.payer.address);
      const paying = batchFetch();
      const first = await paying(instances[0]!.url);
      expect(first.status).toBe(200);
      // The deposit moved to the channel contract; nothing reached the receiver yet.
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - DEPOSIT);
      const second = await paying(instances[1]!.url);
      expect(second.status).toBe(200);
      expect(second.headers.get('tollway-charged')).toContain(`${PRICE} `);
      // The chain saw the deposit only: vouchers are checked without it.
      const blocks = await c.client.getBlockNumber();
      const third = await pay(0, await voucher(3n * PRICE));
      expect(third.status).toBe(200);
      expect(await c.client.getBlockNumber()).toBe(blocks);

      // A voucher used again, or one older than the last used, gets x402's corrective 402: what
      // the channel drew and the highest voucher held, for the payer to sign again from.
      const replayed = await pay(1, await voucher(3n * PRICE));
      expect(await corrective(replayed)).toEqual({
        chargedCumulativeAmount: String(3n * PRICE),
        signedMaxClaimable: String(3n * PRICE),
        signature: await signatureOf(3n * PRICE),
      });
      const later = await voucher(5n * PRICE);
      const earlier = await voucher(4n * PRICE);
      expect((await pay(0, later)).status).toBe(200);
      const reordered = await pay(1, earlier);
      expect(await corrective(reordered)).toEqual({
        chargedCumulativeAmount: String(4n * PRICE),
        signedMaxClaimable: String(5n * PRICE),
        signature: await signatureOf(5n * PRICE),
      });
      const beyond = await pay(0, await voucher(6n * PRICE));
      expect(beyond.status).toBe(402);
      expect(handlerRuns).toBe(4);
    });

    it('redeems what the channel drew in one claim, swept to payTo, with the events on chain', async () => {
      const payToBefore = await c.balanceOf(c.accounts.payTo.address);
      const redeemed = await instances[1]!.offer.redeemBatch();
      expect(redeemed).toMatchObject({ claimed: 1, amount: 4n * PRICE });
      const receipt = await c.client.getTransactionReceipt({
        hash: redeemed.claimTransaction as `0x${string}`,
      });
      const claims = parseEventLogs({ abi: batchAbi, eventName: 'Claimed', logs: receipt.logs });
      expect(claims.map((log) => (log.args as { claimAmount: bigint }).claimAmount)).toEqual([
        4n * PRICE,
      ]);
      expect(receipt.to?.toLowerCase()).toBe(X402_CONTRACTS.batchSettlement.toLowerCase());
      expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 4n * PRICE);
      expect(await instances[0]!.offer.redeemBatch()).toMatchObject({ claimed: 0, amount: 0n });
      const revenue = await instances[0]!.store.listSettlements({ service: 'x402-batch' });
      expect(revenue.map((row) => row.amount)).toEqual([4n * PRICE]);
    });

    it('two instances racing on one channel never draw past its deposit', async () => {
      // One call left in the deposit (4 of 5 drawn): eight vouchers for all of it, at once.
      const header = await voucher(DEPOSIT);
      const runs = handlerRuns;
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => pay(i, header)));
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
      expect(answers.filter((answer) => answer.status === 402)).toHaveLength(7);
      expect(handlerRuns).toBe(runs + 1);
      // Both instances redeem at once: one claims, the other finds the store's lease taken.
      const both = await Promise.all(instances.map((each) => each.offer.redeemBatch()));
      expect(both.map((redeemed) => redeemed.amount).sort()).toEqual([0n, PRICE]);
      const [, claimed] = (await c.client.readContract({
        address: X402_CONTRACTS.batchSettlement,
        abi: batchAbi,
        functionName: 'channels',
        args: [(await voucherChannel()).toLowerCase()],
      })) as readonly [bigint, bigint];
      expect(claimed).toBe(DEPOSIT);
    });

    it("x402's own client, its record of the channel behind, is corrected and pays", async () => {
      // A channel of its own (another salt): a deposit, then a voucher from a second client on
      // the same record; a third client holds the record as it was before that voucher.
      const salt = `0x${'1'.repeat(64)}` as const;
      const storage = new InMemoryClientChannelStorage();
      const ahead = batchFetch({ storage, salt });
      expect((await ahead(instances[0]!.url)).status).toBe(200);
      const channelId = (await voucherChannel(salt)).toLowerCase();
      const behind = new InMemoryClientChannelStorage();
      await behind.set(channelId, { ...(await storage.get(channelId))! });
      expect((await ahead(instances[1]!.url)).status).toBe(200);
      const payerBefore = await c.balanceOf(c.accounts.payer.address);
      const runs = handlerRuns;

      // It checks the corrective 402 against the chain: its signer reads the channel contract.
      const answer = await batchFetch({ storage: behind, salt, reader: true })(instances[0]!.url);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('tollway-charged')).toContain(`${PRICE} `);
      expect(handlerRuns).toBe(runs + 1);
      // Corrected from the 402, then paid by a voucher on top of what the channel drew.
      expect(await behind.get(channelId)).toMatchObject({
        chargedCumulativeAmount: String(3n * PRICE),
      });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore);
      const channel = await instances[1]!.store.getChannel(channelId);
      expect(channel).toMatchObject({ deposit: DEPOSIT, voucherMax: 3n * PRICE });

      // A record behind that also thinks the channel spent: a top-up deposit with a stale
      // voucher. Corrected before the deposit is settled, then paid by a voucher.
      const spent = new InMemoryClientChannelStorage();
      const old = (await behind.get(channelId))!;
      await spent.set(channelId, {
        ...old,
        chargedCumulativeAmount: String(PRICE),
        balance: String(PRICE),
      });
      const again = await batchFetch({ storage: spent, salt, reader: true })(instances[1]!.url);
      expect(again.status).toBe(200);
      expect(handlerRuns).toBe(runs + 2);
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore);
      expect(await spent.get(channelId)).toMatchObject({
        chargedCumulativeAmount: String(4n * PRICE),
        balance: String(DEPOSIT),
      });
      expect(await instances[0]!.store.getChannel(channelId)).toMatchObject({
        deposit: DEPOSIT,
        voucherMax: 4n * PRICE,
      });
    });

    it('two top-ups racing on two instances: the one its draw no longer covers is corrected before it settles', async () => {
      // A channel of its own: a deposit and a call, then two clients whose records say it is
      // spent top it up at once, each with a voucher for the call drawn and its own.
      const salt = `0x${'2'.repeat(64)}` as const;
      const storage = new InMemoryClientChannelStorage();
      expect((await batchFetch({ storage, salt })(instances[0]!.url)).status).toBe(200);
      const channelId = (await voucherChannel(salt)).toLowerCase();
      const spent = { ...(await storage.get(channelId))!, balance: String(PRICE) };
      const records = [new InMemoryClientChannelStorage(), new InMemoryClientChannelStorage()];
      for (const record of records) await record.set(channelId, { ...spent });
      const payerBefore = await c.balanceOf(c.accounts.payer.address);
      const runs = handlerRuns;

      const answers = await Promise.all(
        records.map((record, at) =>
          batchFetch({ storage: record, salt, reader: true })(instances[at]!.url),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      expect(handlerRuns).toBe(runs + 2);
      // One top-up reached the chain: the other was refused while the first one's draw was
      // held, and its payer, corrected, paid with a voucher on the deposit the first made.
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - DEPOSIT);
      const [balance] = (await c.client.readContract({
        address: X402_CONTRACTS.batchSettlement,
        abi: batchAbi,
        functionName: 'channels',
        args: [channelId as `0x${string}`],
      })) as readonly [bigint, bigint];
      expect(balance).toBe(2n * DEPOSIT);
      expect(await instances[1]!.store.getChannel(channelId)).toMatchObject({
        deposit: 2n * DEPOSIT,
        voucherMax: 3n * PRICE,
      });
    });

    async function voucherChannel(
      salt: `0x${string}` = `0x${'0'.repeat(64)}`,
    ): Promise<`0x${string}`> {
      return computeChannelId(
        {
          payer: c.accounts.payer.address,
          payerAuthorizer: c.accounts.payer.address,
          receiver: c.accounts.payTo.address,
          receiverAuthorizer: privateKeyToAccount(authorizerKey).address,
          token: c.token,
          withdrawDelay: 900,
          salt,
        },
        c.network,
      );
    }
  },
);
