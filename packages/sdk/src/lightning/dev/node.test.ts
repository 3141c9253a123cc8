import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTollwayError } from '../../errors.js';
import { createPreimage, decodeInvoice, encodeInvoice } from '../bolt11.js';
import {
  createDevNetwork,
  DEFAULT_DEV_BALANCE_MSAT,
  DEV_NODE_ALIAS,
  type DevNetwork,
} from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-node-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const freshPath = (): string => join(dir, `net-${++fileNo}`, 'dev-lightning.sqlite');
const sha256Hex = (hex: string): string =>
  createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isTollwayError(error) ? error.code : `not_tollway: ${String(error)}`;
  }
}

describe('dev network', () => {
  let path: string;
  let network: DevNetwork;
  beforeEach(() => {
    path = freshPath();
    network = createDevNetwork({ path });
  });
  afterEach(() => network.close());

  it('funds a new wallet with play money and labels itself a sandbox', async () => {
    const shop = network.openWallet('shop');
    expect(shop.balanceMsat).toBe(DEFAULT_DEV_BALANCE_MSAT);
    expect(shop.token).toMatch(/^[0-9a-f]{64}$/);
    expect(network.openWallet('rich', { balanceMsat: 5n }).balanceMsat).toBe(5n);
    expect(network.openWallet('shop', { balanceMsat: 5n })).toEqual(shop);
    const info = await network.backend('shop').getInfo();
    expect(info).toEqual({ pubkey: network.pubkey, network: 'regtest', alias: DEV_NODE_ALIAS });
    expect(info.alias).toMatch(/SANDBOX/);
    expect(() => network.openWallet('no spaces')).toThrow(/wallet name/);
    expect(() => network.backend('nobody')).toThrow(/no dev wallet/);
  });

  it('issues real signed lnbcrt invoices and settles them atomically with the real preimage', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent', { balanceMsat: 100_000n });
    const shop = network.backend('shop');
    const agent = network.backend('agent');
    const created = await shop.createInvoice({ amountMsat: 21_000n, memo: 'forecast' });
    expect(created.paymentRequest).toMatch(/^lnbcrt210n1/);
    const decoded = decodeInvoice(created.paymentRequest, { network: 'regtest' });
    expect(decoded.payeePubkey).toBe(network.pubkey);
    expect(decoded.paymentHash).toBe(created.paymentHash);
    expect(decoded.paymentSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(decoded.description).toBe('forecast');

    const waiting = shop.waitForSettlement(created.paymentHash, { timeoutMs: 5_000 });
    const paid = await agent.payInvoice({ paymentRequest: created.paymentRequest });
    expect(sha256Hex(paid.preimage)).toBe(created.paymentHash);
    expect(paid).toMatchObject({ amountMsat: 21_000n, feeMsat: 0n });
    const settled = await waiting;
    expect(settled).toMatchObject({
      state: 'settled',
      amountPaidMsat: 21_000n,
      preimage: paid.preimage,
    });
    expect((await shop.getBalance()).msat).toBe(21_000n);
    expect((await agent.getBalance()).msat).toBe(79_000n);
    expect(await agent.lookupPayment(created.paymentHash)).toEqual({
      paymentHash: created.paymentHash,
      state: 'succeeded',
      preimage: paid.preimage,
      amountMsat: 21_000n,
      feeMsat: 0n,
    });
    // Each wallet sees only its own side.
    expect(await codeOf(shop.lookupPayment(created.paymentHash))).toBe('invoice_not_found');
    expect(await codeOf(agent.lookupInvoice(created.paymentHash))).toBe('invoice_not_found');
  });

  it('never settles an invoice twice and never moves money twice', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent', { balanceMsat: 100_000n });
    network.openWallet('other', { balanceMsat: 100_000n });
    const created = await network.backend('shop').createInvoice({ amountMsat: 1_000n });
    const agent = network.backend('agent');
    await agent.payInvoice({ paymentRequest: created.paymentRequest });
    expect(await codeOf(agent.payInvoice({ paymentRequest: created.paymentRequest }))).toBe(
      'already_paid',
    );
    expect(
      await codeOf(network.backend('other').payInvoice({ paymentRequest: created.paymentRequest })),
    ).toBe('payment_failed');
    expect((await agent.getBalance()).msat).toBe(99_000n);
    expect((await network.backend('other').getBalance()).msat).toBe(100_000n);
    expect((await network.backend('shop').getBalance()).msat).toBe(1_000n);
  });

  it('keeps the node key, wallets, invoices, payments and balances across a restart', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    const agentWallet = network.openWallet('agent', { balanceMsat: 50_000n });
    const paidInvoice = await network.backend('shop').createInvoice({ amountMsat: 2_000n });
    const openInvoice = await network.backend('shop').createInvoice({ amountMsat: 3_000n });
    const paid = await network
      .backend('agent')
      .payInvoice({ paymentRequest: paidInvoice.paymentRequest });
    const { pubkey, adminToken } = network;
    await network.close();

    network = createDevNetwork({ path });
    expect(network.pubkey).toBe(pubkey);
    expect(network.adminToken).toBe(adminToken);
    expect(network.getWallet('agent')).toEqual({ ...agentWallet, balanceMsat: 48_000n });
    expect(network.getWallet('shop')?.balanceMsat).toBe(2_000n);
    const shop = network.backend('shop');
    expect((await shop.lookupInvoice(paidInvoice.paymentHash)).state).toBe('settled');
    expect((await network.backend('agent').lookupPayment(paidInvoice.paymentHash)).preimage).toBe(
      paid.preimage,
    );
    // The open invoice survived with its preimage and can still be paid after the restart.
    const reopened = await shop.lookupInvoice(openInvoice.paymentHash);
    expect(reopened.state).toBe('open');
    const later = await network
      .backend('agent')
      .payInvoice({ paymentRequest: openInvoice.paymentRequest });
    expect(later.preimage).toBe(reopened.preimage);
  });

  it('refuses expired invoices and ends waits on expiry', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent');
    const shop = network.backend('shop');
    const created = await shop.createInvoice({ amountMsat: 1_000n, expirySeconds: 1 });
    const waited = await shop.waitForSettlement(created.paymentHash, { timeoutMs: 5_000 });
    expect(waited.state).toBe('expired');
    expect(Date.now()).toBeGreaterThanOrEqual(created.expiresAt);
    expect(
      await codeOf(network.backend('agent').payInvoice({ paymentRequest: created.paymentRequest })),
    ).toBe('invoice_expired');
    expect((await shop.getBalance()).msat).toBe(0n);
  });

  it('times out, and honours an abort signal, while an invoice stays open', async () => {
    network.openWallet('shop');
    const shop = network.backend('shop');
    const created = await shop.createInvoice({ amountMsat: 1_000n });
    expect(await codeOf(shop.waitForSettlement(created.paymentHash, { timeoutMs: 50 }))).toBe(
      'payment_timeout',
    );
    const controller = new AbortController();
    const waiting = codeOf(
      shop.waitForSettlement(created.paymentHash, { signal: controller.signal }),
    );
    controller.abort();
    expect(await waiting).toBe('payment_timeout');
  });

  it('pays amountless invoices with any positive amount, fixed ones with up to twice theirs', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent', { balanceMsat: 100_000n });
    const shop = network.backend('shop');
    const agent = network.backend('agent');
    const open = await shop.createInvoice({ amountMsat: 0n });
    expect(decodeInvoice(open.paymentRequest).amountMsat).toBeUndefined();
    expect(await codeOf(agent.payInvoice({ paymentRequest: open.paymentRequest }))).toBe(
      'amount_required',
    );
    expect(
      await codeOf(agent.payInvoice({ paymentRequest: open.paymentRequest, amountMsat: 0n })),
    ).toBe('invalid_amount');
    await agent.payInvoice({ paymentRequest: open.paymentRequest, amountMsat: 7_000n });
    expect((await shop.lookupInvoice(open.paymentHash)).amountPaidMsat).toBe(7_000n);

    const fixed = await shop.createInvoice({ amountMsat: 1_000n });
    for (const amountMsat of [999n, 2_001n]) {
      expect(
        await codeOf(agent.payInvoice({ paymentRequest: fixed.paymentRequest, amountMsat })),
      ).toBe('amount_mismatch');
    }
    await agent.payInvoice({ paymentRequest: fixed.paymentRequest, amountMsat: 1_500n });
    expect((await shop.lookupInvoice(fixed.paymentHash)).amountPaidMsat).toBe(1_500n);
    expect((await agent.getBalance()).msat).toBe(100_000n - 7_000n - 1_500n);
  });

  it('finds no route to foreign nodes and refuses self-payment', async () => {
    network.openWallet('agent');
    const agent = network.backend('agent');
    const foreign = encodeInvoice({
      network: 'regtest',
      amountMsat: 1_000n,
      paymentHash: createPreimage().paymentHash,
      description: 'elsewhere',
      privateKey: '11'.repeat(32),
    });
    expect(await codeOf(agent.payInvoice({ paymentRequest: foreign }))).toBe('no_route');
    const own = await agent.createInvoice({ amountMsat: 1_000n });
    expect(await codeOf(agent.payInvoice({ paymentRequest: own.paymentRequest }))).toBe(
      'payment_failed',
    );
    const mainnet = encodeInvoice({
      network: 'mainnet',
      amountMsat: 1_000n,
      paymentHash: createPreimage().paymentHash,
      privateKey: '11'.repeat(32),
    });
    expect(await codeOf(agent.payInvoice({ paymentRequest: mainnet }))).toBe('wrong_network');
    expect(await codeOf(agent.payInvoice({ paymentRequest: 'lnbcrt1nonsense' }))).toBe(
      'invalid_invoice',
    );
    expect((await agent.getBalance()).msat).toBe(DEFAULT_DEV_BALANCE_MSAT);
  });

  it('lets exactly 10 of 50 concurrent payments through a balance that covers 10', async () => {
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent', { balanceMsat: 10_000n });
    const shop = network.backend('shop');
    const agent = network.backend('agent');
    const invoices = await Promise.all(
      Array.from({ length: 50 }, () => shop.createInvoice({ amountMsat: 1_000n })),
    );
    const results = await Promise.allSettled(
      invoices.map((invoice) => agent.payInvoice({ paymentRequest: invoice.paymentRequest })),
    );
    const failures = results.flatMap((r) =>
      r.status === 'rejected' && isTollwayError(r.reason) ? [r.reason.code] : [],
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(failures).toEqual(Array(40).fill('insufficient_balance'));
    expect((await agent.getBalance()).msat).toBe(0n);
    expect((await shop.getBalance()).msat).toBe(10_000n);
  });

  it('validates its input with typed errors', async () => {
    network.openWallet('shop');
    const shop = network.backend('shop');
    expect(await codeOf(shop.createInvoice({ amountMsat: -1n }))).toBe('invalid_amount');
    expect(await codeOf(shop.createInvoice({ amountMsat: 1n, expirySeconds: 0 }))).toBe(
      'invalid_invoice',
    );
    expect(await codeOf(shop.createInvoice({ amountMsat: 1n, descriptionHash: 'zz' }))).toBe(
      'invalid_hex',
    );
    expect(await codeOf(shop.createInvoice({ amountMsat: 1n, memo: 'x'.repeat(640) }))).toBe(
      'invalid_invoice',
    );
    expect(await codeOf(shop.lookupInvoice('nothex'))).toBe('invalid_hex');
    expect(await codeOf(shop.lookupInvoice(createPreimage().paymentHash))).toBe(
      'invoice_not_found',
    );
    expect(() => network.setBalance('shop', -1n)).toThrow(/balanceMsat/);
  });

  it('fails calls after close with backend_unavailable, pending waits included', async () => {
    network.openWallet('shop');
    const shop = network.backend('shop');
    const created = await shop.createInvoice({ amountMsat: 1_000n });
    const waiting = codeOf(shop.waitForSettlement(created.paymentHash, { timeoutMs: 5_000 }));
    await network.close();
    expect(await waiting).toBe('backend_unavailable');
    expect(await codeOf(shop.getBalance())).toBe('backend_unavailable');
  });
});

describe('dev network ledger (property)', () => {
  it('conserves money and never goes negative, whatever the sequence of payments', async () => {
    const network = createDevNetwork({ path: ':memory:' });
    const names = ['a', 'b', 'c'];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              payer: fc.constantFrom(...names),
              payee: fc.constantFrom(...names),
              amount: fc.bigInt({ min: 1n, max: 3_000n }),
              payTwice: fc.boolean(),
            }),
            { maxLength: 15 },
          ),
          async (steps) => {
            for (const name of names) network.openWallet(name);
            for (const name of names) network.setBalance(name, 5_000n);
            for (const step of steps) {
              const invoice = await network
                .backend(step.payee)
                .createInvoice({ amountMsat: step.amount });
              const attempts = step.payTwice ? 2 : 1;
              for (let i = 0; i < attempts; i++) {
                await network
                  .backend(step.payer)
                  .payInvoice({ paymentRequest: invoice.paymentRequest })
                  .catch((error: unknown) => {
                    if (!isTollwayError(error)) throw error;
                  });
              }
            }
            const balances = names.map((name) => network.getWallet(name)?.balanceMsat ?? -1n);
            expect(balances.every((b) => b >= 0n)).toBe(true);
            expect(balances.reduce((sum, b) => sum + b, 0n)).toBe(15_000n);
          },
        ),
        { numRuns: 30 },
      );
    } finally {
      await network.close();
    }
  });
});
