import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';
import { decodeInvoice } from '../../src/lightning/bolt11.js';
import { createClnBackend } from '../../src/lightning/cln.js';
import { createHttpClient } from '../../src/lightning/http.js';
import { wrapBackend } from '../../src/lightning/safe-backend.js';
import type { LightningBackend } from '../../src/lightning/types.js';
import { type ClnDouble, startClnDouble } from '../doubles/cln.js';
import { createNodeHarness, fakeFee } from '../doubles/fake-node.js';
import { createSelfSignedCert } from '../doubles/tls.js';
import { describeBackendSuite } from './backend-suite.js';
import { codeOf, expectTimeoutThenLateSuccess, sleep } from './support.js';

describeBackendSuite(
  'cln (xpay)',
  async () => {
    const double = await startClnDouble();
    return createNodeHarness(
      createClnBackend({ url: double.url, rune: double.rune, certPem: double.certPem }),
      double,
    );
  },
  { unsupported: { descriptionHash: 'Core Lightning only hashes a description it is given' } },
);

describe('Core Lightning clnrest backend', () => {
  let double: ClnDouble;
  let cln: LightningBackend;

  beforeAll(async () => {
    double = await startClnDouble();
    cln = createClnBackend({ url: double.url, rune: double.rune, certPem: double.certPem });
  });
  afterAll(async () => {
    await cln?.close();
    await double?.close();
  });

  const calls = (method: string) => double.requests.filter((r) => r.method === method);

  it('sends the rune, msat strings, a generated label and an explicit expiry', async () => {
    await cln.createInvoice({ amountMsat: 21_001n, memo: 'forecast' });
    const [request] = calls('invoice').slice(-1);
    expect(request?.headers.rune).toBe(double.rune);
    expect(request?.params).toEqual({
      amount_msat: '21001msat',
      label: expect.stringMatching(/^tollway-[0-9a-f]{32}$/),
      description: 'forecast',
      expiry: 3600,
    });
  });

  it('gives every invoice its own label, even for identical requests made at once', async () => {
    const before = calls('invoice').length;
    await Promise.all(
      Array.from({ length: 8 }, () => cln.createInvoice({ amountMsat: 1_000n, memo: 'same' })),
    );
    const labels = calls('invoice')
      .slice(before)
      .map((r) => r.params.label);
    expect(new Set(labels).size).toBe(8);
  });

  it('is refused by Core Lightning when a label repeats (code 900)', async () => {
    const raw = createHttpClient({
      baseUrl: double.url,
      headers: { Rune: double.rune },
      tls: { certPem: double.certPem },
    });
    try {
      const params = { amount_msat: 1000, label: 'taken', description: 'x' };
      expect((await raw.request('POST', '/v1/invoice', { json: params })).status).toBe(201);
      const error = await raw
        .request('POST', '/v1/invoice', { json: params })
        .catch((e: unknown) => e);
      expect(isTollwayError(error) && error.details?.body).toMatch(/"code":900/);
    } finally {
      await raw.close();
    }
  });

  it('creates a description-hash invoice when the memo is the hashed description', async () => {
    const memo = '{"service":"forecast"}';
    const descriptionHash = createHash('sha256').update(memo).digest('hex');
    const created = await cln.createInvoice({ amountMsat: 5_000n, memo, descriptionHash });
    expect(decodeInvoice(created.paymentRequest).descriptionHash).toBe(descriptionHash);
    expect(calls('invoice').at(-1)?.params).toMatchObject({
      description: memo,
      deschashonly: true,
    });
    expect(await codeOf(cln.createInvoice({ amountMsat: 5_000n, descriptionHash }))).toBe(
      'capability_unsupported',
    );
  });

  it('pays with xpay, sending maxfee and retry_for', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 100_000n });
    const paid = await cln.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 5_000 });
    expect(paid).toEqual({
      paymentHash: ext.paymentHash,
      preimage: ext.preimage,
      amountMsat: 100_000n,
      feeMsat: fakeFee(100_000n),
    });
    expect(calls('xpay').at(-1)?.params).toEqual({
      invstring: ext.paymentRequest,
      maxfee: '11000msat',
      retry_for: 5,
    });
    expect(await codeOf(cln.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'already_paid',
    );
    expect(double.node.timesPaid(ext.paymentHash)).toBe(1);
  });

  it('falls back to pay on a node without xpay, and remembers it', async () => {
    const old = await startClnDouble();
    old.hasXpay = false;
    old.node.balanceMsat = 10_000_000n;
    const backend = createClnBackend({ url: old.url, rune: old.rune, certPem: old.certPem });
    try {
      const first = old.node.createExternalInvoice({ amountMsat: 3_000n });
      const second = old.node.createExternalInvoice({});
      expect((await backend.payInvoice({ paymentRequest: first.paymentRequest })).preimage).toBe(
        first.preimage,
      );
      const paid = await backend.payInvoice({
        paymentRequest: second.paymentRequest,
        amountMsat: 2_500n,
      });
      expect(paid.preimage).toBe(second.preimage);
      expect(old.requests.map((r) => r.method).filter((m) => m === 'xpay' || m === 'pay')).toEqual([
        'xpay',
        'pay',
        'pay',
      ]);
      expect(old.requests.at(-1)?.params).toMatchObject({
        bolt11: second.paymentRequest,
        amount_msat: '2500msat',
      });
      // pay answers an invoice it already paid with the earlier result, and pays nothing.
      expect((await backend.payInvoice({ paymentRequest: first.paymentRequest })).preimage).toBe(
        first.preimage,
      );
      expect(old.node.timesPaid(first.paymentHash)).toBe(1);
    } finally {
      await backend.close();
      await old.close();
    }
  });

  it('times out with payment_timeout while the payment carries on, and lookupPayment then finds it', () =>
    expectTimeoutThenLateSuccess(cln, double.node));

  it('waits with waitinvoice and reports expiry (903) as an expired invoice', async () => {
    const before = calls('waitinvoice').length;
    const paid = await cln.createInvoice({ amountMsat: 2_000n });
    const waiting = cln.waitForSettlement(paid.paymentHash, { timeoutMs: 5_000 });
    // Pay only once the double holds the waitinvoice call, so the wait is what sees the payment.
    while (calls('waitinvoice').length === before) await sleep(10);
    double.node.payIncoming(paid.paymentRequest);
    expect(await waiting).toMatchObject({ state: 'settled', amountPaidMsat: 2_000n });

    const expiring = await cln.createInvoice({ amountMsat: 1_000n, expirySeconds: 1 });
    expect((await cln.waitForSettlement(expiring.paymentHash, { timeoutMs: 5_000 })).state).toBe(
      'expired',
    );
    expect(calls('waitinvoice')).toHaveLength(before + 2);
  });

  it('counts only channels in normal operation as balance', async () => {
    double.node.balanceMsat = 123_456n;
    expect((await cln.getBalance()).msat).toBe(123_456n);
  });

  it('reports a missing or refused rune as unauthorized', async () => {
    const wrong = createClnBackend({
      url: double.url,
      rune: 'not-the-rune',
      certPem: double.certPem,
    });
    const raw = createHttpClient({ baseUrl: double.url, tls: { certPem: double.certPem } });
    try {
      expect(await codeOf(wrong.getInfo())).toBe('unauthorized');
      expect(await codeOf(raw.request('POST', '/v1/getinfo', { json: {} }))).toBe('unauthorized');
    } finally {
      await wrong.close();
      await raw.close();
    }
  });

  it('accepts only the pinned certificate', async () => {
    const other = createSelfSignedCert();
    const wrongPin = createClnBackend({
      url: double.url,
      rune: double.rune,
      certPem: other.certPem,
    });
    try {
      expect(await codeOf(wrongPin.getInfo())).toBe('backend_unavailable');
      expect((await cln.getInfo()).network).toBe('regtest');
    } finally {
      await wrongPin.close();
    }
  });

  it('maps RPC error codes, garbage and outages to typed errors', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 1_000n });
    const pay = () => cln.payInvoice({ paymentRequest: ext.paymentRequest });
    const rpcError = (code: number | null, message: string) => JSON.stringify({ code, message });
    const cases: Array<[number, string, () => Promise<unknown>, TollwayErrorCode]> = [
      [500, rpcError(205, 'Failed: We could not find a usable set of paths'), pay, 'no_route'],
      [500, rpcError(206, 'Fee exceeds our fee budget'), pay, 'no_route'],
      [500, rpcError(205, 'insufficient funds in our channels'), pay, 'insufficient_balance'],
      [500, rpcError(207, 'Invoice expired'), pay, 'invoice_expired'],
      [500, rpcError(219, 'Already paid'), pay, 'already_paid'],
      [500, rpcError(200, 'Already in progress'), pay, 'payment_timeout'],
      [500, rpcError(203, 'Destination said it does not know invoice'), pay, 'payment_failed'],
      [500, rpcError(209, `Failed after ${'many attempts, '.repeat(30)}`), pay, 'payment_failed'],
      [
        500,
        rpcError(null, 'Connection refused (os error 111)'),
        () => cln.getInfo(),
        'backend_unavailable',
      ],
      [502, '<html>bad gateway</html>', () => cln.getInfo(), 'backend_unavailable'],
      [500, rpcError(-32602, 'missing required parameter'), () => cln.getInfo(), 'backend_error'],
      [
        404,
        rpcError(-32601, "Unknown command 'getinfo'"),
        () => cln.getInfo(),
        'capability_unsupported',
      ],
      [201, '{"id":"02","network":"regtest"}', () => cln.getInfo(), 'backend_error'],
      [201, 'not json', () => cln.getInfo(), 'backend_error'],
      [
        201,
        JSON.stringify({
          payment_hash: 'ab'.repeat(32),
          bolt11: ext.paymentRequest,
          expires_at: 1,
        }),
        () => cln.createInvoice({ amountMsat: 1_000n }),
        'backend_error',
      ],
      [
        201,
        '{"channels":[{"state":"CHANNELD_NORMAL","our_amount_msat":"5msat"}]}',
        () => cln.getBalance(),
        'backend_error',
      ],
      [
        201,
        '{"channels":[{"state":"CHANNELD_NORMAL","our_amount_msat":123456789012345678901}]}',
        () => cln.getBalance(),
        'backend_error',
      ],
      [201, '{"invoices":[]}', () => cln.lookupInvoice('ab'.repeat(32)), 'invoice_not_found'],
      [
        201,
        '{"invoices":[{"status":"paid","label":"x","payment_hash":"00","expires_at":1}]}',
        () => cln.lookupInvoice('ab'.repeat(32)),
        'backend_error',
      ],
      [201, '{"pays":[]}', () => cln.lookupPayment('ab'.repeat(32)), 'invoice_not_found'],
      [
        201,
        `{"pays":[{"payment_hash":"${'ab'.repeat(32)}","status":"complete"}]}`,
        () => cln.lookupPayment('ab'.repeat(32)),
        'backend_error',
      ],
      [201, '{"payment_preimage":"zz"}', pay, 'backend_error'],
    ];
    for (const [status, body, call, code] of cases) {
      double.respondOnce(status, body);
      expect([status, body.slice(0, 70), await codeOf(call())]).toEqual([
        status,
        body.slice(0, 70),
        code,
      ]);
    }
    expect(double.node.timesPaid(ext.paymentHash)).toBe(0);
  });

  it('lets the wrapper resolve an xpay timeout by lookup without paying twice', async () => {
    double.node.balanceMsat = 10_000_000n;
    double.node.settleDelayMs = 600;
    try {
      const ext = double.node.createExternalInvoice({ amountMsat: 4_000n });
      const wrapped = wrapBackend(cln, { pollIntervalMs: 20 });
      const [a, b] = await Promise.all([
        wrapped.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 5_000 }),
        wrapBackend(cln, { pollIntervalMs: 20 }).payInvoice({
          paymentRequest: ext.paymentRequest,
          timeoutMs: 5_000,
        }),
      ]);
      expect([a.preimage, b.preimage]).toEqual([ext.preimage, ext.preimage]);
      expect(double.node.timesPaid(ext.paymentHash)).toBe(1);
    } finally {
      double.node.settleDelayMs = 60;
    }
  });
});
