import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TollwayErrorCode } from '../../src/errors.js';
import { createPreimage, decodeInvoice } from '../../src/lightning/bolt11.js';
import { createPhoenixdBackend, type PhoenixdOptions } from '../../src/lightning/phoenixd.js';
import { type PhoenixdDouble, startPhoenixdDouble } from '../doubles/phoenixd.js';
import { describeBackendSuite } from './backend-suite.js';
import { codeOf, expectFeeLimit, expectSlowPaymentPaidOnce } from './support.js';

function backendFor(double: PhoenixdDouble, overrides: Partial<PhoenixdOptions> = {}) {
  return createPhoenixdBackend({
    url: double.url,
    password: double.password,
    pollIntervalMs: 50,
    ...overrides,
  });
}

describeBackendSuite('phoenixd', async () => {
  const double = await startPhoenixdDouble();
  return { ...double, backend: backendFor(double) };
});

describe('phoenixd backend specifics', () => {
  let double: PhoenixdDouble;
  beforeAll(async () => {
    double = await startPhoenixdDouble();
    await double.setBalance(10_000_000n);
  });
  afterAll(() => double.close());

  const lastRequest = (path?: string) =>
    double.requests.filter((r) => path === undefined || r.path === path).at(-1);

  it('sends form bodies with HTTP Basic auth on the password', async () => {
    const ln = backendFor(double);
    const created = await ln.createInvoice({
      amountMsat: 21_000n,
      memo: 'forecast',
      expirySeconds: 600,
    });
    const req = lastRequest();
    expect(req?.headers.authorization).toBe(
      `Basic ${Buffer.from(`:${double.password}`).toString('base64')}`,
    );
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(req?.body))).toEqual({
      amountSat: '21',
      expirySeconds: '600',
      description: 'forecast',
    });
    expect(decodeInvoice(created.paymentRequest).amountMsat).toBe(21_000n);

    // A JSON body carries no parameters for phoenixd.
    const raw = await fetch(`${double.url}/createinvoice`, {
      method: 'POST',
      headers: {
        authorization: req?.headers.authorization ?? '',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amountSat: 21, description: 'json' }),
    });
    expect(raw.status).toBe(400);
    await ln.close();
  });

  it('maps a wrong password to unauthorized, and the limited password can receive but not pay', async () => {
    const wrong = backendFor(double, { password: 'nope' });
    expect(await codeOf(wrong.getInfo())).toBe('unauthorized');
    const limited = backendFor(double, { password: double.limitedPassword });
    await limited.createInvoice({ amountMsat: 1_000n });
    const ext = await double.createExternalInvoice({ amountMsat: 2_000n });
    expect(await codeOf(limited.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'unauthorized',
    );
    expect(await double.timesPaid(ext.paymentHash)).toBe(0);
    await Promise.all([wrong.close(), limited.close()]);
  });

  it.each([404, 204] as const)(
    'answers invoice_not_found when phoenixd answers %i for an unknown payment',
    async (status) => {
      const ln = backendFor(double);
      double.setUnknownPaymentStatus(status);
      try {
        const { paymentHash } = createPreimage();
        expect(await codeOf(ln.lookupInvoice(paymentHash))).toBe('invoice_not_found');
        expect(await codeOf(ln.lookupPayment(paymentHash))).toBe('invoice_not_found');
      } finally {
        double.setUnknownPaymentStatus(404);
        await ln.close();
      }
    },
  );

  it('does not mistake a missing endpoint (old phoenixd) for an unknown payment', async () => {
    const ln = backendFor(double);
    double.setLegacy(true);
    try {
      expect(await codeOf(ln.lookupPayment(createPreimage().paymentHash))).toBe(
        'capability_unsupported',
      );
    } finally {
      double.setLegacy(false);
      await ln.close();
    }
  });

  it('refuses amounts that are not whole sats, and pays invoices with an amount to the msat', async () => {
    const ln = backendFor(double);
    const before = double.requests.length;
    expect(await codeOf(ln.createInvoice({ amountMsat: 21_500n }))).toBe('invalid_amount');
    const amountless = await double.createExternalInvoice({});
    expect(
      await codeOf(
        ln.payInvoice({ paymentRequest: amountless.paymentRequest, amountMsat: 3_500n }),
      ),
    ).toBe('invalid_amount');
    expect(double.requests.length).toBe(before);

    const precise = await double.createExternalInvoice({ amountMsat: 3_500n });
    const paid = await ln.payInvoice({ paymentRequest: precise.paymentRequest });
    expect(new URLSearchParams(lastRequest('/payinvoice')?.body).has('amountSat')).toBe(false);
    expect(paid).toEqual({
      paymentHash: precise.paymentHash,
      preimage: precise.preimage,
      amountMsat: 3_500n,
      feeMsat: 4_014n,
    });
    expect(await ln.lookupPayment(precise.paymentHash)).toMatchObject({
      amountMsat: 3_500n,
      feeMsat: 4_014n,
    });
    await ln.close();
  });

  it('reports the exact msat fee and recipient amount of an amountless payment', async () => {
    const ln = backendFor(double);
    const ext = await double.createExternalInvoice({});
    const paid = await ln.payInvoice({ paymentRequest: ext.paymentRequest, amountMsat: 250_000n });
    expect(Object.fromEntries(new URLSearchParams(lastRequest('/payinvoice')?.body))).toEqual({
      invoice: ext.paymentRequest,
      amountSat: '250',
    });
    expect(paid.feeMsat).toBe(5_000n);
    expect(await ln.lookupPayment(ext.paymentHash)).toMatchObject({
      state: 'succeeded',
      amountMsat: 250_000n,
      feeMsat: 5_000n,
    });
    await ln.close();
  });

  it('times out on a slow payment, which later succeeds and is never paid again', () =>
    expectSlowPaymentPaidOnce(backendFor(double), double));

  it('refuses a fee limit below phoenixd fee of 4 sat + 0.4%', async () => {
    const paid = await expectFeeLimit(backendFor(double), double, 100_000n, 4_400n);
    expect(paid.feeMsat).toBe(4_400n);
  });

  it('maps phoenixd failure reasons to codes', async () => {
    const ln = backendFor(double);
    const unknown = await double.createExternalInvoice({ amountMsat: 2_000n });
    const reasons: Array<[string, TollwayErrorCode]> = [
      [
        'the recipient was offline or did not have enough liquidity to receive the payment',
        'no_route',
      ],
      ['not enough funds in wallet to afford payment', 'insufficient_balance'],
      ['this invoice has already been paid', 'already_paid'],
      ['another payment is in progress for that invoice', 'payment_timeout'],
      [
        'channel closing is in progress, please retry when a new channel has been created',
        'payment_failed',
      ],
      ['NotEnoughFees', 'no_route'],
      ['the recipient rejected the payment', 'payment_failed'],
    ];
    for (const [reason, code] of reasons) {
      double.respondNext({ status: 200, json: { paymentHash: unknown.paymentHash, reason } });
      expect([
        reason,
        await codeOf(ln.payInvoice({ paymentRequest: unknown.paymentRequest })),
      ]).toEqual([reason, code]);
    }
    double.respondNext({
      status: 400,
      text: "Request parameter invoice couldn't be parsed/converted to bolt11invoice",
    });
    expect(await codeOf(ln.payInvoice({ paymentRequest: unknown.paymentRequest }))).toBe(
      'invalid_invoice',
    );
    await ln.close();
  });

  it('refuses the second payment of a paid invoice itself, even without the safety layer', async () => {
    const ln = backendFor(double);
    const ext = await double.createExternalInvoice({ amountMsat: 9_000n });
    await ln.payInvoice({ paymentRequest: ext.paymentRequest });
    expect(await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'already_paid',
    );
    expect(await double.timesPaid(ext.paymentHash)).toBe(1);
    await ln.close();
  });

  it('refuses descriptions phoenixd would reject, before asking', async () => {
    const ln = backendFor(double);
    const before = double.requests.length;
    expect(await codeOf(ln.createInvoice({ amountMsat: 1_000n, memo: 'x'.repeat(129) }))).toBe(
      'capability_unsupported',
    );
    expect(double.requests.length).toBe(before);
    await ln.close();
  });

  it('turns wrong shapes and plain-text errors into backend_error', async () => {
    const ln = backendFor(double);
    const replies = [
      { status: 200, json: { amountSat: 1, paymentHash: 'zz', serialized: 'lnbcrt1' } },
      {
        status: 200,
        json: { amountSat: 1, paymentHash: 'ab'.repeat(32), serialized: 'lnbcrt1garbage' },
      },
      { status: 200, json: 'lnbcrt1' },
      { status: 400, text: 'Must provide either a description or descriptionHash' },
    ];
    for (const reply of replies) {
      double.respondNext(reply);
      expect(await codeOf(ln.createInvoice({ amountMsat: 1_000n }))).toBe('backend_error');
    }
    double.respondNext({ status: 200, json: { isPaid: 'true' } });
    expect(await codeOf(ln.lookupInvoice('ab'.repeat(32)))).toBe('backend_error');
    await ln.close();
  });

  it('reads the node id, the chain and the balance', async () => {
    const ln = backendFor(double);
    await double.setBalance(123_456n);
    expect(await ln.getBalance()).toEqual({ msat: 123_000n });
    expect(await ln.getInfo()).toEqual({ pubkey: double.nodeId, network: 'regtest' });
    double.setChain('testnet3');
    expect((await ln.getInfo()).network).toBe('testnet');
    double.setChain('liquidnet');
    expect(await codeOf(ln.getInfo())).toBe('unsupported_network');
    double.setChain('regtest');
    await double.setBalance(10_000_000n);
    await ln.close();
  });
});
