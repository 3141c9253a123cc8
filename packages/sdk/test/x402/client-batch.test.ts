/**
 * Tollway's paying fetch pays x402 `batch-settlement` on a real chain (anvil with TestUSDC and the
 * batch-settlement contracts) to Tollway's batch-settlement server (the node adapter on loopback,
 * its state on SQLite): one deposit, a voucher per call with no chain round trip, and on close the
 * cooperative refund of the rest. The agent's ledger is checked against the chain's balances and
 * events; a second paying fetch on the same SQLite file draws on the same channel; the budget
 * sizes the deposit and refuses one it cannot hold.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Hex, parseEventLogs, type TransactionReceipt } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBudget } from '../../src/client/budget.js';
import { parseOffers, type X402Offer } from '../../src/client/offers.js';
import { createPayingFetch, type PayingFetch } from '../../src/client/paying-fetch.js';
import { createSqliteClientStore } from '../../src/client/sqlite-store.js';
import type { Budget, ClientStore } from '../../src/client/types.js';
import { TollwayError } from '../../src/errors.js';
import type { Store } from '../../src/server/store.js';
import type { X402OfferKind } from '../../src/server/x402-offer.js';
import { createSqliteStore } from '../../src/stores/sqlite.js';
import { X402_CONTRACTS } from '../../src/x402/evm-contracts.js';
import { createEvmWallet } from '../../src/x402/evm-wallet.js';
import { createSelfHostedFacilitator, type Facilitator } from '../../src/x402/facilitator.js';
import { readLocalChainArtifacts } from '../../src/x402/local-chain.js';
import { serveBatchSearch } from '../support/batch-search.js';
import { startTestChain } from '../support/chain.js';
import { chainPayerX402 } from '../support/chain-paying-fetch.js';

const chain = await startTestChain();
afterAll(async () => {
  await chain?.close();
});

const PRICE = 1_000n; // $0.001 in USDC base units; at $100 000 a bitcoin, 1 sat
const batchAbi = readLocalChainArtifacts().contracts.BatchSettlement.abi;

describe.skipIf(chain === undefined)('the paying fetch pays x402 batch-settlement', () => {
  const c = chain!;
  const directory = mkdtempSync(join(tmpdir(), 'tollway-client-batch-'));
  const agentDb = join(directory, 'agent.sqlite');
  const closers: Array<() => Promise<void>> = [];
  const servers: Array<{ url: string; offer: X402OfferKind }> = [];
  let handlerRuns = 0;

  beforeAll(async () => {
    const store = createSqliteStore({ path: join(directory, 'tollway.db') });
    await store.init();
    const facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    // Two receivers (their own authorizer keys): the payer has one channel with each.
    for (let i = 0; i < 2; i++) {
      const served = await serveBatchSearch({
        chain: c,
        store,
        facilitator,
        authorizerKey: generatePrivateKey(),
        onServe: () => {
          handlerRuns += 1;
        },
      });
      servers.push(served);
      closers.push(served.close);
    }
  });
  afterAll(async () => {
    for (const close of closers) await close();
    rmSync(directory, { recursive: true, force: true });
  });

  /**
   * A paying fetch of the chain's payer, on `store`, preferring x402, expecting `calls` calls;
   * under a budget without limits unless one is given.
   */
  function agent(
    store: ClientStore,
    calls: number,
    budget: Budget = createBudget({ store, path: 'unlimited' }),
    idleCloseMs?: number,
  ): PayingFetch & { store: ClientStore } {
    const fetch402 = createPayingFetch({
      wallets: [],
      store,
      budget,
      preferences: ['x402'],
      sessions: { expectedCalls: calls, ...(idleCloseMs === undefined ? {} : { idleCloseMs }) },
      x402: chainPayerX402(c, { batch: true }),
    });
    return Object.assign(fetch402, { store });
  }

  function events(receipt: TransactionReceipt, eventName: string): Array<Record<string, unknown>> {
    return parseEventLogs({ abi: batchAbi, eventName, logs: receipt.logs }).map(
      (log) => log.args as Record<string, unknown>,
    );
  }

  async function onChain(id: string): Promise<{ balance: bigint; totalClaimed: bigint }> {
    const [balance, totalClaimed] = (await c.client.readContract({
      address: X402_CONTRACTS.batchSettlement,
      abi: batchAbi,
      functionName: 'channels',
      args: [id as Hex],
    })) as readonly [bigint, bigint];
    return { balance, totalClaimed };
  }

  /** The ledger of one channel, in token base units, by kind. */
  async function ledgerOf(store: ClientStore, id: string) {
    const entries = await store.list({ account: id });
    const of = (kind: string) =>
      entries.filter((entry) => entry.kind === kind && entry.status === 'succeeded');
    const sum = (kind: string) => of(kind).reduce((total, entry) => total + entry.amount, 0n);
    return {
      deposits: of('purchase').map((entry) => entry.amount),
      draws: of('draw').map((entry) => entry.amount),
      refunds: of('refund').map((entry) => entry.amount),
      net: sum('purchase') - sum('refund'),
      pending: entries.filter((entry) => entry.status !== 'succeeded').length,
    };
  }

  it('one deposit, a voucher per call, close refunds the rest: the ledger says what the chain says', async () => {
    const { url } = servers[0]!;
    const store = createSqliteClientStore({ path: agentDb });
    const budget = createBudget({ store, limits: { day: '100 sat' } });
    const fetch402 = agent(store, 10, budget);
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    const payToBefore = await c.balanceOf(c.accounts.payTo.address);

    const first = await fetch402(url);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ hits: 3 });
    // A deposit of the ten calls the agent expects moved into the channel contract.
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 10n * PRICE);
    const [channel] = await store.listChannels();
    expect(channel).toMatchObject({ origin: new URL(url).origin, url, state: 'open' });
    const id = channel!.id;
    expect(await onChain(id)).toEqual({ balance: 10n * PRICE, totalClaimed: 0n });
    // Vouchers: no transaction, no new deposit.
    const blocks = await c.client.getBlockNumber();
    for (let call = 0; call < 4; call++) expect((await fetch402(url)).status).toBe(200);
    expect(await c.client.getBlockNumber()).toBe(blocks);
    expect(handlerRuns).toBe(5);
    expect(await ledgerOf(store, id)).toMatchObject({
      deposits: [10n * PRICE],
      draws: [PRICE, PRICE, PRICE, PRICE, PRICE],
      refunds: [],
      pending: 0,
    });

    const closed = await fetch402.close();
    expect(closed).toEqual([
      {
        id,
        origin: new URL(url).origin,
        refundMsat: 5_000n,
        refundStatus: 'succeeded',
        refund: { amount: 5n * PRICE, unit: `${c.network}/erc20:${c.token.toLowerCase()}` },
      },
    ]);
    // The chain: the payer paid the five calls, the receiver got them, the rest went back.
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 5n * PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + 5n * PRICE);
    expect(await onChain(id)).toEqual({ balance: 5n * PRICE, totalClaimed: 5n * PRICE });
    const [refund] = (await store.list({ account: id, kind: 'refund' })).map((entry) => entry);
    const receipt = await c.client.getTransactionReceipt({ hash: refund!.proof as Hex });
    expect(events(receipt, 'Claimed')).toMatchObject([{ claimAmount: 5n * PRICE }]);
    expect(events(receipt, 'Refunded')).toMatchObject([{ amount: 5n * PRICE }]);
    // The ledger: deposit less refund is what the calls drew and the chain claimed.
    const ledger = await ledgerOf(store, id);
    expect(ledger).toMatchObject({ refunds: [5n * PRICE], net: 5n * PRICE, pending: 0 });
    expect(ledger.draws.reduce((sum, draw) => sum + draw, 0n)).toBe(ledger.net);
    const [summary] = await store.summary({ account: id }, 'account');
    expect(summary).toMatchObject({
      purchases: { amountMsat: 10_000n },
      draws: { count: 5, amountMsat: 5_000n },
      refunds: { amountMsat: 5_000n },
    });
    // The budget counts what the channel cost, not what it held.
    const day = (await budget.status()).find((window) => window.window === 'day');
    expect(day?.spentMsat).toBe(5_000n);
    expect((await store.getChannel(id))?.state).toBe('closed');
    await store.close();
  });

  it('a second paying fetch on the same SQLite file draws on the same channel; its refund corrects a record left behind', async () => {
    const { url } = servers[0]!;
    const first = agent(createSqliteClientStore({ path: agentDb }), 10);
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    // The channel closed above opens again with a new deposit.
    expect((await first(url)).status).toBe(200);
    expect((await first(url)).status).toBe(200);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 10n * PRICE);
    await first.store.close();

    // Another process of the agent, on the same file.
    const second = agent(createSqliteClientStore({ path: agentDb }), 10);
    const [channel] = await second.store.listChannels({ states: ['open'] });
    const id = channel!.id;
    const blocks = await c.client.getBlockNumber();
    // Calls at once: their vouchers are signed one after the other, each covering the last.
    const answers = await Promise.all([second(url), second(url), second(url)]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(await c.client.getBlockNumber()).toBe(blocks);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 10n * PRICE);
    const ledger = await ledgerOf(second.store, id);
    expect(ledger.deposits).toEqual([10n * PRICE, 10n * PRICE]);
    expect(ledger.draws).toHaveLength(5 + 5);

    // A process that crashed after its last voucher was taken, before it wrote the record: the
    // record says one call less than the server charged. The refund is corrected, and made.
    const record = (await second.store.getChannel(id))?.record ?? {};
    const charged = BigInt(record.chargedCumulativeAmount ?? '0');
    await second.store.updateChannel(id, {
      record: { ...record, chargedCumulativeAmount: String(charged - PRICE) },
    });
    const [closed] = await second.close();
    // Ten calls drawn in all of twenty deposited; five were refunded before.
    expect(closed).toMatchObject({ id, refund: { amount: 5n * PRICE } });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 5n * PRICE);
    expect(await onChain(id)).toEqual({ balance: 10n * PRICE, totalClaimed: 10n * PRICE });
    const after = await ledgerOf(second.store, id);
    expect(after).toMatchObject({ refunds: [5n * PRICE, 5n * PRICE], net: 10n * PRICE });
    expect(after.draws.reduce((sum, draw) => sum + draw, 0n)).toBe(after.net);
    await second.store.close();
  });

  it('sizes the deposit within the budget, and refuses one the budget cannot hold', async () => {
    const { url } = servers[1]!;
    const store = createSqliteClientStore({ path: agentDb });
    // Three sats a day: ten calls' deposit does not fit, one call's does, three times.
    const budget = createBudget({ store, path: 'frugal', limits: { day: '3 sat' } });
    const fetch402 = agent(store, 10, budget);
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    const runs = handlerRuns;
    for (let call = 0; call < 3; call++) expect((await fetch402(url)).status).toBe(200);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 3n * PRICE);
    await expect(fetch402(url)).rejects.toMatchObject({ code: 'budget_exceeded' });
    expect(handlerRuns).toBe(runs + 3);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 3n * PRICE);
    const id = (await store.listChannels({ origin: new URL(url).origin, states: ['open'] })).find(
      (channel) => channel.url === url,
    )?.id;
    expect(await ledgerOf(store, id ?? '')).toMatchObject({
      deposits: [PRICE, PRICE, PRICE],
      draws: [PRICE, PRICE, PRICE],
      pending: 0,
    });
    // Nothing left to refund: closed without asking.
    expect(await fetch402.close({ origin: new URL(url).origin })).toMatchObject([
      { id, refundStatus: 'skipped', refund: { amount: 0n } },
    ]);
    await store.close();
  });

  it('closes a channel left idle, and refunds exactly what it did not draw', async () => {
    const { url } = servers[1]!;
    const store = createSqliteClientStore({ path: agentDb });
    const closed: unknown[] = [];
    const fetch402 = createPayingFetch({
      wallets: [],
      store,
      preferences: ['x402'],
      sessions: { expectedCalls: 4, idleCloseMs: 200 },
      onEvent: (event) => {
        if (event.type === 'session-closed') closed.push(event.session);
      },
      x402: chainPayerX402(c, { batch: true }),
    });
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    expect((await fetch402(url)).status).toBe(200);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 4n * PRICE);
    await vi.waitFor(() => expect(closed).toHaveLength(1), { timeout: 5_000, interval: 50 });
    expect(closed[0]).toMatchObject({ refundStatus: 'succeeded', refund: { amount: 3n * PRICE } });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - PRICE);
    await store.close();
  });

  /**
   * A receiver of its own (a fresh channel), on SQLite file `name`.db, counting its answers;
   * `onServe` runs in each answer after it is counted. Its facilitator is the chain's, unless
   * `facilitator` is given; it serves with its store as `serving` makes it (as it is by default).
   */
  async function freshReceiver(
    name: string,
    onServe?: () => Promise<void>,
    facilitator?: Facilitator,
    serving: (store: Store) => Store = (store) => store,
  ) {
    let runs = 0;
    const store = createSqliteStore({ path: join(directory, `${name}.db`) });
    await store.init();
    const served = await serveBatchSearch({
      chain: c,
      store: serving(store),
      facilitator:
        facilitator ??
        (await createSelfHostedFacilitator({
          rpcUrl: c.rpcUrl,
          privateKey: c.accounts.facilitator.privateKey,
        })),
      authorizerKey: generatePrivateKey(),
      onServe: async () => {
        runs += 1;
        await onServe?.();
      },
    });
    closers.push(served.close);
    return { url: served.url, store, runs: () => runs };
  }

  /**
   * Processes of one agent on the SQLite file `name`.sqlite, each a paying fetch expecting
   * `expectedCalls` calls; `stores` collects their stores, to close. `onCorrected` runs when a
   * call's credential is answered with a corrective 402 (`corrected()` counts them).
   */
  function agentProcesses(name: string, expectedCalls: number, onCorrected?: () => void) {
    const db = join(directory, `${name}.sqlite`);
    const stores: ClientStore[] = [];
    let corrected = 0;
    const start = () => {
      const agentStore = createSqliteClientStore({ path: db });
      stores.push(agentStore);
      return createPayingFetch({
        wallets: [],
        store: agentStore,
        preferences: ['x402'],
        sessions: { expectedCalls },
        x402: chainPayerX402(c, { batch: true }),
        onEvent: (event) => {
          if (event.type === 'challenge' && event.withCredential) {
            corrected += 1;
            onCorrected?.();
          }
        },
      });
    };
    return { db, stores, start, corrected: () => corrected };
  }

  // Each refusal means another process drew first: with n at once, the last signs up to n times.
  it.each([2, 3])(
    '%i processes on one channel record, at once: all paid, each call charged once, the stale vouchers corrected',
    async (processes) => {
      // A receiver of its own, whose first answer waits until a voucher was refused.
      let refused: () => void = () => {};
      const stale = new Promise<void>((resolve) => {
        refused = resolve;
      });
      let held = false;
      const { url, store, runs } = await freshReceiver(`racing-${processes}`, async () => {
        if (held) return;
        held = true;
        // Bounded, so that a voucher never refused fails the checks below instead of hanging.
        await Promise.race([stale, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      });
      const agent = agentProcesses(`racing-agent-${processes}`, 10, refused);
      const opening = agent.start();
      held = true;
      expect((await opening(url)).status).toBe(200);
      await opening.close({ keepSessions: true });
      held = false;
      const payerBefore = await c.balanceOf(c.accounts.payer.address);
      const blocks = await c.client.getBlockNumber();

      // Processes of the agent on the same file sign from the same record at once.
      const agents = Array.from({ length: processes }, () => agent.start());
      const answers = await Promise.all(agents.map((each) => each(url)));
      expect(answers.map((answer) => answer.status)).toEqual(agents.map(() => 200));
      const calls = BigInt(processes + 1);
      expect(runs()).toBe(processes + 1);
      expect(agent.corrected()).toBeGreaterThanOrEqual(processes - 1);
      // Vouchers only: no deposit, no transaction.
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore);
      expect(await c.client.getBlockNumber()).toBe(blocks);
      const ledger = createSqliteClientStore({ path: agent.db });
      const [channel] = await ledger.listChannels({ states: ['open'] });
      const id = channel!.id;
      expect(await ledgerOf(ledger, id)).toMatchObject({
        deposits: [10n * PRICE],
        draws: Array.from({ length: processes + 1 }, () => PRICE),
        pending: 0,
      });
      expect(channel?.record).toMatchObject({ chargedCumulativeAmount: String(calls * PRICE) });
      expect(await store.getChannel(id)).toMatchObject({ voucherMax: calls * PRICE });

      // Nothing lost: closing refunds the deposit less the calls, which the receiver gets.
      const payToBefore = await c.balanceOf(c.accounts.payTo.address);
      const [closed] = await agents[0]!.close();
      for (const each of agents.slice(1)) await each.close();
      const refund = 10n * PRICE - calls * PRICE;
      expect(closed).toMatchObject({ id, refund: { amount: refund } });
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore + refund);
      expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payToBefore + calls * PRICE);
      expect(await onChain(id)).toEqual({ balance: calls * PRICE, totalClaimed: calls * PRICE });
      for (const each of [ledger, ...agent.stores]) await each.close();
    },
  );

  /**
   * The agent's one open channel on its SQLite file `db`, after the payer had `payerBefore`: its
   * ledger (a store to close), its balance on chain, what the payer paid into it since, its book.
   */
  async function channelAfter(db: string, payerBefore: bigint) {
    const ledger = createSqliteClientStore({ path: db });
    const [channel] = await ledger.listChannels({ states: ['open'] });
    const id = channel!.id;
    const { balance } = await onChain(id);
    const paidIn = payerBefore - (await c.balanceOf(c.accounts.payer.address));
    return { ledger, id, balance, paidIn, book: await ledgerOf(ledger, id) };
  }

  it('processes topping up one spent channel at once: all paid, every deposit in the ledger as on chain', async () => {
    const { url, store, runs } = await freshReceiver('topping');
    // A deposit covers two calls: the opening process spends its channel in two, and both
    // processes after it top it up at once.
    const agent = agentProcesses('topping-agent', 2);
    const opening = agent.start();
    expect((await opening(url)).status).toBe(200);
    expect((await opening(url)).status).toBe(200);
    await opening.close({ keepSessions: true });
    const payerBefore = await c.balanceOf(c.accounts.payer.address);

    const agents = [agent.start(), agent.start()];
    const answers = await Promise.all(agents.map((each) => each(url)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(runs()).toBe(4);
    // The deposit signed on the record the other process had just spent was refused, before it
    // was settled, and signed again.
    expect(agent.corrected()).toBeGreaterThanOrEqual(1);
    const { ledger, id, balance, paidIn, book } = await channelAfter(agent.db, payerBefore);
    // Every deposit the chain took is a succeeded deposit in the ledger, and only those; the
    // server's record counts them all.
    expect(book.net).toBe(balance);
    expect(book.deposits.slice(1).reduce((sum, each) => sum + each, 0n)).toBe(paidIn);
    expect(book.draws).toEqual([PRICE, PRICE, PRICE, PRICE]);
    expect(await store.getChannel(id)).toMatchObject({ deposit: balance });

    // Closing refunds exactly what the four calls did not draw.
    const [closed] = await agents[0]!.close();
    await agents[1]!.close();
    const refund = balance - 4n * PRICE;
    expect(closed).toMatchObject({ id, refund: { amount: refund } });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - paidIn + refund);
    for (const each of [ledger, ...agent.stores]) await each.close();
  });

  it('processes opening one channel at once, with no record yet: all paid, every deposit in the ledger as on chain', async () => {
    const { url, store, runs } = await freshReceiver('opening');
    // Each expects four calls: the first deposit covers the three processes' calls.
    const agent = agentProcesses('opening-agent', 4);
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    // Three processes of the agent, on one fresh file, call the receiver at once: each signs a
    // deposit into the same channel (its id depends on the payer and receiver only).
    const agents = [agent.start(), agent.start(), agent.start()];
    const answers = await Promise.all(agents.map((each) => each(url)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(runs()).toBe(3);
    const { ledger, id, balance, paidIn, book } = await channelAfter(agent.db, payerBefore);
    // The deposits refused while the first one's draw was held moved nothing: failed in the
    // ledger, and their calls signed again. The chain took one deposit, the ledger's only
    // succeeded one, and the server's record says the same.
    const refused = (await ledger.list({ account: id })).filter((e) => e.status !== 'succeeded');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(refused.every((e) => e.kind === 'purchase' && e.status === 'failed')).toBe(true);
    expect(book.deposits).toEqual([4n * PRICE]);
    expect(book.net).toBe(balance);
    expect(paidIn).toBe(balance);
    expect(book.draws).toEqual([PRICE, PRICE, PRICE]);
    expect(await store.getChannel(id)).toMatchObject({ deposit: balance });
    const [closed] = await agents[0]!.close();
    for (const each of agents.slice(1)) await each.close();
    expect(closed).toMatchObject({ id, refund: { amount: balance - 3n * PRICE } });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 3n * PRICE);
    for (const each of [ledger, ...agent.stores]) await each.close();
  });

  it('a deposit whose settlement fails releases its draw and moves nothing: 503 while the facilitator is down, 402 when it refuses', async () => {
    const real = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    // The facilitator checks deposits as ever; settling fails as `settling` says.
    let settling: 'down' | 'refused' | 'works' = 'down';
    const facilitator: Facilitator = {
      verify: (payload, requirements) => real.verify(payload, requirements),
      supported: () => real.supported(),
      async settle(payload, requirements) {
        if (settling === 'down') throw new Error('the RPC does not answer');
        if (settling === 'refused') {
          return {
            success: false,
            errorReason: 'transaction_failed',
            transaction: '',
            network: c.network,
          };
        }
        return real.settle(payload, requirements);
      },
    };
    const { url, store, runs } = await freshReceiver('unsettled', undefined, facilitator);
    const agent = agentProcesses('unsettled-agent', 2);
    const fetch402 = agent.start();
    const payerBefore = await c.balanceOf(c.accounts.payer.address);
    const blocks = await c.client.getBlockNumber();

    const down = await fetch402(url);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(((await down.json()) as { code: string }).code).toBe('facilitator_unavailable');
    settling = 'refused';
    const refused = await fetch402(url);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { code: string }).code).toBe('x402_payment_invalid');
    // Nothing ran and nothing moved.
    expect(runs()).toBe(0);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore);
    expect(await c.client.getBlockNumber()).toBe(blocks);

    settling = 'works';
    expect((await fetch402(url)).status).toBe(200);
    expect(runs()).toBe(1);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payerBefore - 2n * PRICE);
    // The failed deposits held nothing that stayed: the channel drew the one call answered.
    const [channel] = await agent.stores[0]!.listChannels({ states: ['open'] });
    const id = channel!.id;
    expect(await store.getChannel(id)).toMatchObject({ deposit: 2n * PRICE });
    expect(await store.getUsage(`x402-batch:${id}`)).toMatchObject({
      spentMsat: PRICE,
      heldMsat: 0n,
    });
    const entries = await agent.stores[0]!.list({ account: id, kind: 'purchase' });
    expect(entries.map((entry) => entry.status).sort()).toEqual(['failed', 'pending', 'succeeded']);
    await fetch402.close();
    for (const each of agent.stores) await each.close();
  });

  it('a deposit the chain took is recorded through a store outage, and counted once however often its record is tried', async () => {
    // The store fails the deposit's record twice: once after writing it (the connection dropped
    // before the answer came), then once before.
    const failures = ['after', 'before'];
    const failing = (store: Store): Store => ({
      ...store,
      async creditChannel(channel, amount, reference) {
        const failure = failures.shift();
        if (failure === 'before') throw new TollwayError('store_error', 'connection refused');
        await store.creditChannel(channel, amount, reference);
        if (failure === 'after') throw new TollwayError('store_error', 'connection lost');
      },
    });
    const { url, store, runs } = await freshReceiver('outage', undefined, undefined, failing);
    const agent = agentProcesses('outage-agent', 2);
    const fetch402 = agent.start();
    const payerBefore = await c.balanceOf(c.accounts.payer.address);

    expect((await fetch402(url)).status).toBe(200);
    expect(failures).toEqual([]);
    expect(runs()).toBe(1);
    const deposited = payerBefore - (await c.balanceOf(c.accounts.payer.address));
    expect(deposited).toBe(2n * PRICE);
    // The record holds what the chain took, once; the call drew its price from it.
    const [channel] = await agent.stores[0]!.listChannels({ states: ['open'] });
    const id = channel!.id;
    expect(await store.getChannel(id)).toMatchObject({ deposit: deposited });
    expect(await store.getUsage(`x402-batch:${id}`)).toMatchObject({
      spentMsat: PRICE,
      heldMsat: 0n,
    });
    const entries = await agent.stores[0]!.list({ account: id, kind: 'purchase' });
    expect(entries.map((entry) => entry.status)).toEqual(['succeeded']);
    await fetch402.close();
    for (const each of agent.stores) await each.close();
  });

  it('the wallet pays batch-settlement only with an rpcUrl, and only to a named receiver authorizer', async () => {
    const answer = await fetch(servers[0]!.url);
    const { offers } = parseOffers({ headers: answer.headers, body: await answer.text() });
    const batch = offers.find(
      (offer): offer is X402Offer =>
        offer.protocol === 'x402' && offer.scheme === 'batch-settlement',
    )!;
    const wallet = (rpcUrl?: string) =>
      createEvmWallet({
        privateKey: generatePrivateKey(),
        allowedAssets: [{ network: c.network, address: c.token }],
        ...(rpcUrl === undefined ? {} : { rpcUrl }),
      });
    expect(wallet().refusal(batch)).toContain('rpcUrl');
    expect(wallet(c.rpcUrl).refusal(batch)).toBeUndefined();
    const { receiverAuthorizer: _named, ...extra } = batch.requirement.extra as Record<
      string,
      never
    >;
    const unnamed = { ...batch, requirement: { ...batch.requirement, extra } };
    expect(wallet(c.rpcUrl).refusal(unnamed)).toContain('receiver authorizer');
  });
});
