/**
 * One behavioural suite for every Lightning backend. Each backend's test file runs it against that
 * backend's protocol-faithful double (or, for the dev node, the real thing), wrapped in the shared
 * safety layer exactly as `connectLightning` wraps it in production.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';
import { createPreimage, decodeInvoice, encodeInvoice } from '../../src/lightning/bolt11.js';
import { wrapBackend } from '../../src/lightning/safe-backend.js';
import type { LightningBackend } from '../../src/lightning/types.js';

/** What a backend's test provides: the raw backend connected to its double, and the double's levers. */
export interface BackendHarness {
  /** The raw backend under test, connected to the double; the suite wraps it. */
  backend: LightningBackend;
  /** An outside payer pays our invoice (an amount above the invoice's is an overpayment). */
  payIncoming(paymentRequest: string, amountMsat?: bigint): Promise<void>;
  /** An outside node issues an invoice for us to pay; `amountMsat` undefined = amountless. */
  createExternalInvoice(p: { amountMsat?: bigint; expirySeconds?: number }): Promise<{
    paymentRequest: string;
    paymentHash: string;
    preimage: string;
  }>;
  /** How many times the outside node was paid for this hash. */
  timesPaid(paymentHash: string): Promise<number>;
  /** Sets the spendable balance of the backend's wallet. */
  setBalance(msat: bigint): Promise<void>;
  /** Makes the double misbehave on subsequent calls; `undefined` clears it. */
  fault(mode?: FaultMode): void;
  close(): Promise<void>;
}

/** Ways a double can misbehave. */
export type FaultMode = 'unauthorized' | 'unavailable' | 'garbage' | 'drop' | 'wrong_preimage';

/** Suite items a backend's API cannot support, with the reason (shown in the test name). */
export interface SuiteOptions {
  unsupported?: Partial<Record<'descriptionHash' | 'amountless' | 'overpayment', string>>;
}

const sha256Hex = (hex: string) =>
  createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

async function codeOf(
  promise: Promise<unknown>,
): Promise<TollwayErrorCode | 'resolved' | 'not_tollway'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

/**
 * Registers the shared behaviour tests for one backend.
 *
 * @example
 * ```ts
 * describeBackendSuite('lnd', async () => startLndHarness());
 * ```
 */
export function describeBackendSuite(
  name: string,
  makeHarness: () => Promise<BackendHarness>,
  options: SuiteOptions = {},
): void {
  describe(`Lightning backend behaviour: ${name}`, () => {
    let h: BackendHarness;
    let ln: LightningBackend;

    beforeAll(async () => {
      h = await makeHarness();
      ln = wrapBackend(h.backend, { pollIntervalMs: 50 });
    });
    afterAll(async () => {
      await ln?.close();
      await h?.close();
    });

    it('reports regtest node info', async () => {
      const info = await ln.getInfo();
      expect(info.network).toBe('regtest');
      if (info.pubkey !== undefined) expect(info.pubkey).toMatch(/^0[23][0-9a-f]{64}$/);
    });

    it('creates a real, decodable invoice with the requested fields', async () => {
      const created = await ln.createInvoice({
        amountMsat: 21_000n,
        memo: 'tollway suite',
        expirySeconds: 600,
      });
      const decoded = decodeInvoice(created.paymentRequest);
      expect(decoded.network).toBe('regtest');
      expect(decoded.amountMsat).toBe(21_000n);
      expect(decoded.paymentHash).toBe(created.paymentHash);
      expect(decoded.description).toBe('tollway suite');
      expect(decoded.expirySeconds).toBe(600);
      expect(created.amountMsat).toBe(21_000n);
      expect(Math.abs(created.expiresAt - decoded.expiresAt)).toBeLessThan(2_000);
      const status = await ln.lookupInvoice(created.paymentHash);
      expect(status.state).toBe('open');
      expect(status.amountMsat).toBe(21_000n);
    });

    it.skipIf(options.unsupported?.descriptionHash !== undefined)(
      `creates description-hash invoices${options.unsupported?.descriptionHash ? ` (unsupported: ${options.unsupported.descriptionHash})` : ''}`,
      async () => {
        const descriptionHash = sha256Hex(Buffer.from('{"service":"forecast"}').toString('hex'));
        const created = await ln.createInvoice({ amountMsat: 5_000n, descriptionHash });
        expect(decodeInvoice(created.paymentRequest).descriptionHash).toBe(descriptionHash);
      },
    );

    it('moves an invoice from open to settled when paid, with a valid preimage', async () => {
      const created = await ln.createInvoice({ amountMsat: 10_000n, memo: 'settle me' });
      const waiting = ln.waitForSettlement(created.paymentHash, { timeoutMs: 10_000 });
      await h.payIncoming(created.paymentRequest);
      const settled = await waiting;
      expect(settled.state).toBe('settled');
      expect(settled.amountPaidMsat).toBe(10_000n);
      expect(settled.preimage).toBeDefined();
      expect(sha256Hex(settled.preimage as string)).toBe(created.paymentHash);
      expect(settled.settledAt).toBeGreaterThan(Date.now() - 60_000);
      const looked = await ln.lookupInvoice(created.paymentHash);
      expect(looked.state).toBe('settled');
    });

    it.skipIf(options.unsupported?.overpayment !== undefined)(
      'records an overpayment as received',
      async () => {
        const created = await ln.createInvoice({ amountMsat: 10_000n });
        await h.payIncoming(created.paymentRequest, 12_000n);
        const status = await ln.waitForSettlement(created.paymentHash, { timeoutMs: 10_000 });
        expect(status.state).toBe('settled');
        expect(status.amountPaidMsat).toBe(12_000n);
      },
    );

    it('expires an unpaid invoice', async () => {
      const created = await ln.createInvoice({ amountMsat: 1_000n, expirySeconds: 1 });
      await new Promise((r) => setTimeout(r, 2_100));
      expect((await ln.lookupInvoice(created.paymentHash)).state).toBe('expired');
    });

    it('answers invoice_not_found for an unknown payment hash', async () => {
      expect(await codeOf(ln.lookupInvoice(createPreimage().paymentHash))).toBe(
        'invoice_not_found',
      );
    });

    it('times out waiting for an invoice nobody pays', async () => {
      const created = await ln.createInvoice({ amountMsat: 1_000n });
      expect(await codeOf(ln.waitForSettlement(created.paymentHash, { timeoutMs: 300 }))).toBe(
        'payment_timeout',
      );
    });

    it('pays an invoice once, with a verified preimage and a bounded fee', async () => {
      await h.setBalance(1_000_000n);
      const ext = await h.createExternalInvoice({ amountMsat: 50_000n });
      const paid = await ln.payInvoice({ paymentRequest: ext.paymentRequest, maxFeeMsat: 5_000n });
      expect(paid.preimage).toBe(ext.preimage);
      expect(paid.paymentHash).toBe(ext.paymentHash);
      expect(paid.feeMsat).toBeLessThanOrEqual(5_000n);
      expect(await h.timesPaid(ext.paymentHash)).toBe(1);
      const status = await ln.lookupPayment(ext.paymentHash);
      expect(status.state).toBe('succeeded');
      expect(status.preimage).toBe(ext.preimage);
    });

    it('never pays the same invoice twice, sequentially or concurrently', async () => {
      await h.setBalance(1_000_000n);
      const first = await h.createExternalInvoice({ amountMsat: 7_000n });
      const a = await ln.payInvoice({ paymentRequest: first.paymentRequest });
      const b = await ln.payInvoice({ paymentRequest: first.paymentRequest });
      expect(b.preimage).toBe(a.preimage);
      expect(await h.timesPaid(first.paymentHash)).toBe(1);

      const second = await h.createExternalInvoice({ amountMsat: 8_000n });
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => ln.payInvoice({ paymentRequest: second.paymentRequest })),
      );
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      expect(await h.timesPaid(second.paymentHash)).toBe(1);
      // A second wrapper (a restarted process) still finds the first payment instead of paying again.
      const restarted = wrapBackend(h.backend, { pollIntervalMs: 50 });
      const again = await restarted.payInvoice({ paymentRequest: second.paymentRequest });
      expect(again.preimage).toBe(second.preimage);
      expect(await h.timesPaid(second.paymentHash)).toBe(1);
    });

    it('refuses to pay beyond the balance', async () => {
      await h.setBalance(1_000n);
      const ext = await h.createExternalInvoice({ amountMsat: 900_000n });
      expect(await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
        'insufficient_balance',
      );
      expect(await h.timesPaid(ext.paymentHash)).toBe(0);
      await h.setBalance(1_000_000n);
    });

    it.skipIf(options.unsupported?.amountless !== undefined)(
      'pays an amountless invoice only with an explicit amount',
      async () => {
        await h.setBalance(1_000_000n);
        const ext = await h.createExternalInvoice({});
        expect(await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
          'amount_required',
        );
        const paid = await ln.payInvoice({
          paymentRequest: ext.paymentRequest,
          amountMsat: 3_000n,
        });
        expect(paid.preimage).toBe(ext.preimage);
        expect(await h.timesPaid(ext.paymentHash)).toBe(1);
      },
    );

    it('refuses an amount that contradicts the invoice', async () => {
      const ext = await h.createExternalInvoice({ amountMsat: 4_000n });
      expect(
        await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest, amountMsat: 5_000n })),
      ).toBe('amount_mismatch');
      expect(await h.timesPaid(ext.paymentHash)).toBe(0);
    });

    it('refuses expired, wrong-network and malformed invoices before paying', async () => {
      const ext = await h.createExternalInvoice({ amountMsat: 2_000n, expirySeconds: 1 });
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
        'invoice_expired',
      );
      expect(await h.timesPaid(ext.paymentHash)).toBe(0);

      const { paymentHash } = createPreimage();
      const mainnet = encodeInvoice({
        network: 'mainnet',
        amountMsat: 2_000n,
        paymentHash,
        description: 'elsewhere',
        privateKey: '11'.repeat(32),
      });
      expect(await codeOf(ln.payInvoice({ paymentRequest: mainnet }))).toBe('wrong_network');
      expect(await codeOf(ln.payInvoice({ paymentRequest: 'lnbcrt1garbage' }))).toBe(
        'invalid_invoice',
      );
    });

    it('maps backend faults to typed errors', async () => {
      const faults: Array<[FaultMode, TollwayErrorCode]> = [
        ['unauthorized', 'unauthorized'],
        ['unavailable', 'backend_unavailable'],
        ['garbage', 'backend_error'],
        ['drop', 'backend_unavailable'],
      ];
      for (const [mode, code] of faults) {
        h.fault(mode);
        try {
          expect([mode, await codeOf(ln.createInvoice({ amountMsat: 1_000n }))]).toEqual([
            mode,
            code,
          ]);
        } finally {
          h.fault(undefined);
        }
      }
    });

    it('rejects a payment whose reported preimage does not match', async () => {
      await h.setBalance(1_000_000n);
      const ext = await h.createExternalInvoice({ amountMsat: 1_500n });
      h.fault('wrong_preimage');
      try {
        expect(await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
          'preimage_mismatch',
        );
      } finally {
        h.fault(undefined);
      }
    });
  });
}
