import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TollwayErrorCode } from '../../src/errors.js';
import { decodeInvoice } from '../../src/lightning/bolt11.js';
import { createLnbitsBackend, type LnbitsOptions } from '../../src/lightning/lnbits.js';
import { type LnbitsDouble, startLnbitsDouble } from '../doubles/lnbits.js';
import { describeBackendSuite } from './backend-suite.js';
import { codeOf, expectFeeLimit, expectSlowPaymentPaidOnce } from './support.js';

function backendFor(double: LnbitsDouble, overrides: Partial<LnbitsOptions> = {}) {
  return createLnbitsBackend({
    url: double.url,
    invoiceKey: double.invoiceKey,
    adminKey: double.adminKey,
    network: 'regtest',
    pollIntervalMs: 50,
    ...overrides,
  });
}

describeBackendSuite(
  'lnbits',
  async () => {
    const double = await startLnbitsDouble();
    return { ...double, backend: backendFor(double) };
  },
  {
    unsupported: {
      amountless: 'LNbits refuses to pay amountless invoices',
      overpayment: 'LNbits records the invoice amount, not the amount received',
    },
  },
);

describe('LNbits backend specifics', () => {
  let double: LnbitsDouble;
  beforeAll(async () => {
    double = await startLnbitsDouble();
    await double.setBalance(10_000_000n);
  });
  afterAll(() => double.close());

  const lastRequest = () => double.requests[double.requests.length - 1];

  it('creates invoices with out:false, the amount in sats and the invoice key', async () => {
    const ln = backendFor(double);
    const created = await ln.createInvoice({
      amountMsat: 21_000n,
      memo: 'forecast',
      expirySeconds: 600,
    });
    const req = lastRequest();
    expect(req?.headers['x-api-key']).toBe(double.invoiceKey);
    expect(JSON.parse(req?.body ?? '')).toEqual({
      out: false,
      amount: 21,
      unit: 'sat',
      expiry: 600,
      memo: 'forecast',
    });
    expect(decodeInvoice(created.paymentRequest).amountMsat).toBe(21_000n);
    await ln.close();
  });

  it('creates invoices with an admin key alone, which LNbits would take as a payment without out:false', async () => {
    const raw = await fetch(`${double.url}/api/v1/payments`, {
      method: 'POST',
      headers: { 'x-api-key': double.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 5, memo: 'no out' }),
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ detail: 'Missing BOLT11 invoice' });

    const ln = backendFor(double, { invoiceKey: double.adminKey });
    const created = await ln.createInvoice({ amountMsat: 5_000n });
    expect((await ln.lookupInvoice(created.paymentHash)).state).toBe('open');
    await ln.close();
  });

  it('cannot pay with the invoice key', async () => {
    const ext = await double.createExternalInvoice({ amountMsat: 3_000n });
    const noAdmin = createLnbitsBackend({
      url: double.url,
      invoiceKey: double.invoiceKey,
      network: 'regtest',
    });
    expect(noAdmin.capabilities).toEqual({ canReceive: true, canPay: false });
    const before = double.requests.length;
    expect(await codeOf(noAdmin.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'capability_unsupported',
    );
    expect(double.requests.length).toBe(before);

    const misconfigured = backendFor(double, { adminKey: double.invoiceKey });
    expect(await codeOf(misconfigured.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'unauthorized',
    );
    expect(lastRequest()?.body).toContain('"out":true');
    expect(await double.timesPaid(ext.paymentHash)).toBe(0);
    await Promise.all([noAdmin.close(), misconfigured.close()]);
  });

  it('refuses amounts that are not whole sats without asking LNbits', async () => {
    const ln = backendFor(double);
    const before = double.requests.length;
    expect(await codeOf(ln.createInvoice({ amountMsat: 21_500n }))).toBe('invalid_amount');
    expect(double.requests.length).toBe(before);
    await ln.close();
  });

  it('follows a payment LNbits answers as pending until it succeeds', async () => {
    const ln = backendFor(double);
    double.setFundingWait(100);
    double.setPaymentDelay(600);
    try {
      const ext = await double.createExternalInvoice({ amountMsat: 40_000n });
      const paid = await ln.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 5_000 });
      expect(paid).toEqual({
        paymentHash: ext.paymentHash,
        preimage: ext.preimage,
        amountMsat: 40_000n,
        feeMsat: 1_000n,
      });
    } finally {
      double.setFundingWait(5_000);
      double.setPaymentDelay(0);
      await ln.close();
    }
  });

  it('times out on a slow payment, which later succeeds and is never paid again', async () => {
    double.setFundingWait(100);
    try {
      await expectSlowPaymentPaidOnce(backendFor(double), double, { feeMsat: 1_000n });
    } finally {
      double.setFundingWait(5_000);
    }
  });

  it('refuses to pay when the LNbits fee reserve exceeds maxFeeMsat', async () => {
    // LNbits reserves max(2 000 msat, 1%) = 5 000 msat here.
    await expectFeeLimit(backendFor(double), double, 500_000n, 5_000n);
  });

  it('maps LNbits payment errors to codes', async () => {
    const ln = backendFor(double);
    const cases: Array<[Record<string, unknown>, TollwayErrorCode]> = [
      [{ detail: 'Daily withdrawal limit of 1000 sats reached.' }, 'quota_exceeded'],
      [
        { detail: 'Payment failed: unable to find a path to destination', status: 'failed' },
        'no_route',
      ],
      [{ detail: 'Payment failed: invoice expired', status: 'failed' }, 'payment_failed'],
      [{ detail: 'Payment is still pending.', status: 'pending' }, 'payment_timeout'],
      [{ detail: 'Payment already paid.', status: 'success' }, 'already_paid'],
      [{ detail: 'Insufficient balance.', status: 'failed' }, 'insufficient_balance'],
    ];
    for (const [json, code] of cases) {
      const ext = await double.createExternalInvoice({ amountMsat: 2_000n });
      double.respondNext({ status: 200, json: { fee_reserve: 2_000 } });
      double.respondNext({ status: json.status ? 520 : 400, json });
      expect([
        json.detail,
        await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest })),
      ]).toEqual([json.detail, code]);
    }
    await ln.close();
  });

  it('turns wrong shapes into backend_error, never a TypeError', async () => {
    const ln = backendFor(double);
    const bodies: unknown[] = [
      { payment_hash: 'nothex', payment_request: 'lnbcrt1' },
      { payment_hash: 'ab'.repeat(32) },
      { payment_hash: 'ab'.repeat(32), payment_request: 'lnbcrt1garbage' },
      [1, 2, 3],
      null,
    ];
    for (const json of bodies) {
      double.respondNext({ status: 201, json });
      expect(await codeOf(ln.createInvoice({ amountMsat: 1_000n }))).toBe('backend_error');
    }
    double.respondNext({ status: 200, json: { paid: 'yes' } });
    expect(await codeOf(ln.lookupInvoice('ab'.repeat(32)))).toBe('backend_error');
    double.respondNext({ status: 200, json: { name: 'w', balance: '12' } });
    expect(await codeOf(ln.getBalance())).toBe('backend_error');
    await ln.close();
  });

  it('tells incoming from outgoing payments and validates hashes', async () => {
    const ln = backendFor(double);
    const created = await ln.createInvoice({ amountMsat: 2_000n });
    expect(await codeOf(ln.lookupPayment(created.paymentHash))).toBe('invoice_not_found');
    const ext = await double.createExternalInvoice({ amountMsat: 2_000n });
    await ln.payInvoice({ paymentRequest: ext.paymentRequest });
    expect(await codeOf(ln.lookupInvoice(ext.paymentHash))).toBe('invoice_not_found');
    const before = double.requests.length;
    expect(await codeOf(ln.lookupInvoice('../wallet'))).toBe('invalid_hex');
    expect(double.requests.length).toBe(before);
    await ln.close();
  });

  it('reports unauthorized when LNbits hides the details from a wrong key', async () => {
    const ln = backendFor(double);
    const created = await ln.createInvoice({ amountMsat: 2_000n });
    const stranger = backendFor(double, { invoiceKey: 'not-a-key' });
    expect(await codeOf(stranger.lookupInvoice(created.paymentHash))).toBe('unauthorized');
    expect(await codeOf(stranger.getInfo())).toBe('unauthorized');
    await Promise.all([ln.close(), stranger.close()]);
  });

  it.each(['iso', 'naive', 'unix'] as const)(
    'reads settlement times written as %s',
    async (format) => {
      const ln = backendFor(double);
      double.setTimeFormat(format);
      // A zoneless LNbits time is UTC: read it in a zone far from UTC, where misreading shows.
      const zone = process.env.TZ;
      process.env.TZ = 'Asia/Kolkata';
      try {
        const created = await ln.createInvoice({ amountMsat: 3_000n });
        await double.payIncoming(created.paymentRequest);
        const status = await ln.lookupInvoice(created.paymentHash);
        expect(status.state).toBe('settled');
        expect(Math.abs((status.settledAt ?? 0) - Date.now())).toBeLessThan(5_000);
      } finally {
        if (zone === undefined) delete process.env.TZ;
        else process.env.TZ = zone;
        double.setTimeFormat('iso');
        await ln.close();
      }
    },
  );

  it('reports the wallet balance in msat and the configured network', async () => {
    const ln = backendFor(double);
    await double.setBalance(123_456n);
    expect(await ln.getBalance()).toEqual({ msat: 123_456n });
    expect(await ln.getInfo()).toEqual({ network: 'regtest', alias: 'tollway test wallet' });
    await double.setBalance(10_000_000n);
    await ln.close();
  });
});
