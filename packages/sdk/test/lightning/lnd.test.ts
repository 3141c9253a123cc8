import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TollwayErrorCode } from '../../src/errors.js';
import { createPreimage, decodeInvoice, encodeInvoice } from '../../src/lightning/bolt11.js';
import { createHttpClient } from '../../src/lightning/http.js';
import { createLndBackend } from '../../src/lightning/lnd.js';
import { wrapBackend } from '../../src/lightning/safe-backend.js';
import type { LightningBackend } from '../../src/lightning/types.js';
import { createNodeHarness, fakeFee } from '../doubles/fake-node.js';
import { type LndDouble, type LndRequestRecord, startLndDouble } from '../doubles/lnd.js';
import { createSelfSignedCert } from '../doubles/tls.js';
import { describeBackendSuite } from './backend-suite.js';
import { codeOf, expectTimeoutThenLateSuccess } from './support.js';

describeBackendSuite('lnd', async () => {
  const double = await startLndDouble();
  return createNodeHarness(
    createLndBackend({ url: double.url, macaroonHex: double.macaroonHex, certPem: double.certPem }),
    double,
  );
});

describe('LND REST backend', () => {
  let double: LndDouble;
  let lnd: LightningBackend;

  beforeAll(async () => {
    double = await startLndDouble();
    lnd = createLndBackend({
      url: double.url,
      macaroonHex: double.macaroonHex,
      certPem: double.certPem,
    });
  });
  afterAll(async () => {
    await lnd?.close();
    await double?.close();
  });

  function last(path: string): LndRequestRecord {
    const found = double.requests.filter((r) => r.path === path).at(-1);
    if (found === undefined) throw new Error(`no request to ${path}`);
    return found;
  }

  it('sends the macaroon as hex, int64 values as strings and an explicit expiry', async () => {
    await lnd.createInvoice({ amountMsat: 21_001n, memo: 'forecast' });
    const request = last('/v1/invoices');
    expect(request.headers['grpc-metadata-macaroon']).toBe(double.macaroonHex);
    expect(request.body).toEqual({ value_msat: '21001', expiry: '3600', memo: 'forecast' });
  });

  it('sends a description hash as standard base64, without a memo', async () => {
    const descriptionHash = createHash('sha256').update('{"service":"forecast"}').digest('hex');
    const created = await lnd.createInvoice({
      amountMsat: 5_000n,
      memo: 'ignored',
      descriptionHash,
    });
    expect(last('/v1/invoices').body).toEqual({
      value_msat: '5000',
      expiry: '3600',
      description_hash: Buffer.from(descriptionHash, 'hex').toString('base64'),
    });
    expect(decodeInvoice(created.paymentRequest).descriptionHash).toBe(descriptionHash);
  });

  it('reads int64 strings beyond 2^53 exactly', async () => {
    double.node.balanceMsat = 2n ** 60n + 7n;
    expect((await lnd.getBalance()).msat).toBe(2n ** 60n + 7n);
  });

  it('streams IN_FLIGHT updates before SUCCEEDED, with the default fee limit sent as a string', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 100_000n });
    const paid = await lnd.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 5_000 });
    expect(paid).toEqual({
      paymentHash: ext.paymentHash,
      preimage: ext.preimage,
      amountMsat: 100_000n,
      feeMsat: fakeFee(100_000n),
    });
    const request = last('/v2/router/send');
    // 1% + 10 sat, never absent (absent or 0 means zero-fee routes only).
    expect(request.body).toEqual({
      payment_request: ext.paymentRequest,
      fee_limit_msat: '11000',
      timeout_seconds: 5,
      no_inflight_updates: false,
    });
    const statuses = request.lines.map(
      (line) => (line as { result: { status: string } }).result.status,
    );
    expect(statuses).toEqual(['IN_FLIGHT', 'IN_FLIGHT', 'SUCCEEDED']);
  });

  it('sends amt_msat only for an amountless invoice', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({});
    const paid = await lnd.payInvoice({
      paymentRequest: ext.paymentRequest,
      amountMsat: 4_321n,
      maxFeeMsat: 5_000n,
    });
    expect(paid.amountMsat).toBe(4_321n);
    expect(last('/v2/router/send').body).toMatchObject({
      amt_msat: '4321',
      fee_limit_msat: '5000',
    });
  });

  it('times out with payment_timeout while the payment carries on, and lookupPayment then finds it', () =>
    expectTimeoutThenLateSuccess(lnd, double.node));

  it('resolves a payment stream cut mid-flight by lookup, paying once', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 6_000n });
    double.dropSendStreams = true;
    try {
      expect(await codeOf(lnd.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
        'payment_timeout',
      );
      const wrapped = wrapBackend(lnd, { pollIntervalMs: 20 });
      const paid = await wrapped.payInvoice({
        paymentRequest: ext.paymentRequest,
        timeoutMs: 5_000,
      });
      expect(paid.preimage).toBe(ext.preimage);
      expect(double.node.timesPaid(ext.paymentHash)).toBe(1);
      const sends = double.requests.filter(
        (r) =>
          r.path === '/v2/router/send' &&
          (r.body as { payment_request?: string }).payment_request === ext.paymentRequest,
      );
      expect(sends).toHaveLength(1);
    } finally {
      double.dropSendStreams = false;
    }
  });

  it('maps a second send of the same hash to already_paid (lnd answers 409)', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 2_000n });
    await lnd.payInvoice({ paymentRequest: ext.paymentRequest });
    expect(await codeOf(lnd.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
      'already_paid',
    );
    expect(double.node.timesPaid(ext.paymentHash)).toBe(1);
  });

  it('maps failure reasons: no route, and a fee limit nothing fits (0 = zero-fee routes only)', async () => {
    double.node.balanceMsat = 10_000_000n;
    const stranger = encodeInvoice({
      network: 'regtest',
      amountMsat: 1_000n,
      paymentHash: createPreimage().paymentHash,
      description: 'nobody knows this node',
      privateKey: '22'.repeat(32),
    });
    expect(await codeOf(lnd.payInvoice({ paymentRequest: stranger }))).toBe('no_route');
    const ext = double.node.createExternalInvoice({ amountMsat: 1_000n });
    expect(
      await codeOf(lnd.payInvoice({ paymentRequest: ext.paymentRequest, maxFeeMsat: 0n })),
    ).toBe('no_route');
    expect(last('/v2/router/send').body).toMatchObject({ fee_limit_msat: '0' });
    expect((await lnd.lookupPayment(ext.paymentHash)).state).toBe('failed');
  });

  it('reports an expiring invoice through the subscription stream', async () => {
    const created = await lnd.createInvoice({ amountMsat: 1_000n, expirySeconds: 1 });
    const status = await lnd.waitForSettlement(created.paymentHash, { timeoutMs: 5_000 });
    expect(status.state).toBe('expired');
    expect(
      last(
        `/v2/invoices/subscribe/${Buffer.from(created.paymentHash, 'hex').toString('base64url')}=`,
      ),
    ).toBeDefined();
  });

  it('stops waiting when the caller aborts', async () => {
    const created = await lnd.createInvoice({ amountMsat: 1_000n });
    const controller = new AbortController();
    const waiting = lnd.waitForSettlement(created.paymentHash, {
      timeoutMs: 10_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(waiting).rejects.toThrow('stop');
  });

  it('accepts only the pinned certificate', async () => {
    const other = createSelfSignedCert();
    const wrongPin = createLndBackend({
      url: double.url,
      macaroonHex: double.macaroonHex,
      certPem: other.certPem,
    });
    const noPin = createLndBackend({ url: double.url, macaroonHex: double.macaroonHex });
    try {
      expect(await codeOf(wrongPin.getInfo())).toBe('backend_unavailable');
      expect(await codeOf(noPin.getInfo())).toBe('backend_unavailable');
      expect((await lnd.getInfo()).network).toBe('regtest');
    } finally {
      await wrongPin.close();
      await noPin.close();
    }
  });

  it('reports a rejected macaroon (HTTP 500 from lnd) as unauthorized', async () => {
    const stranger = createLndBackend({
      url: double.url,
      macaroonHex: '00'.repeat(40),
      certPem: double.certPem,
    });
    try {
      expect(await codeOf(stranger.getInfo())).toBe('unauthorized');
    } finally {
      await stranger.close();
    }
  });

  it('sends hashes in paths and queries as padded base64url', async () => {
    // The double decodes path and query bytes as grpc-gateway does; every hash must reach the handler.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (bytes) => {
        const hash = Buffer.from(bytes).toString('hex');
        expect(await codeOf(lnd.lookupInvoice(hash))).toBe('invoice_not_found');
        expect(await codeOf(lnd.lookupPayment(hash))).toBe('invoice_not_found');
      }),
      { numRuns: 25 },
    );
  });

  it('is refused by the double when a hash is sent as standard or unpadded base64', async () => {
    let invoice = double.node.createInvoice({ amountMsat: 1_000n, expirySeconds: 600 });
    const std = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
    while (!/\+/.test(std(invoice.paymentHash)) || !/\//.test(std(invoice.paymentHash))) {
      invoice = double.node.createInvoice({ amountMsat: 1_000n, expirySeconds: 600 });
    }
    expect((await lnd.lookupInvoice(invoice.paymentHash)).state).toBe('open');
    const raw = createHttpClient({
      baseUrl: double.url,
      headers: { 'Grpc-Metadata-macaroon': double.macaroonHex },
      tls: { certPem: double.certPem },
    });
    try {
      const standard = std(invoice.paymentHash);
      const unpadded = Buffer.from(invoice.paymentHash, 'hex').toString('base64url');
      expect(
        (await raw.request('GET', `/v2/invoices/lookup?payment_hash=${standard}`)).status,
      ).toBe(400);
      expect(
        (await raw.request('GET', `/v2/invoices/lookup?payment_hash=${unpadded}`)).status,
      ).toBe(400);
      expect(
        (await raw.request('GET', `/v2/invoices/lookup?payment_hash=${unpadded}=`)).status,
      ).toBe(200);
      expect((await raw.request('GET', `/v2/router/track/${standard}`)).status).toBe(404);
    } finally {
      await raw.close();
    }
  });

  it('turns garbage, wrong shapes, huge bodies and error answers into typed errors', async () => {
    double.node.balanceMsat = 10_000_000n;
    const ext = double.node.createExternalInvoice({ amountMsat: 1_000n });
    const pay = () => lnd.payInvoice({ paymentRequest: ext.paymentRequest });
    const cases: Array<[number, string, () => Promise<unknown>, TollwayErrorCode]> = [
      [200, '<html>proxy</html>', () => lnd.getInfo(), 'backend_error'],
      [200, '{"identity_pubkey":5,"chains":[]}', () => lnd.getInfo(), 'backend_error'],
      [200, '{"local_balance":{"msat":12}}', () => lnd.getBalance(), 'backend_error'],
      [200, 'x'.repeat(5 * 1024 * 1024), () => lnd.getInfo(), 'backend_error'],
      [
        200,
        '{"r_hash":"not base64!","payment_request":"lnbcrt1"}',
        () => lnd.createInvoice({ amountMsat: 1n }),
        'backend_error',
      ],
      [
        200,
        JSON.stringify({
          r_hash: Buffer.alloc(32, 1).toString('base64'),
          payment_request: ext.paymentRequest,
        }),
        () => lnd.createInvoice({ amountMsat: 1_000n }),
        'backend_error',
      ],
      [502, '<html>bad gateway</html>', () => lnd.getInfo(), 'backend_unavailable'],
      [
        503,
        '{"code":14,"message":"waiting to start, RPC services not available"}',
        () => lnd.getInfo(),
        'backend_unavailable',
      ],
      [
        500,
        '{"code":2,"message":"chain backend is out of sync"}',
        () => lnd.getInfo(),
        'backend_error',
      ],
      [
        500,
        '{"code":2,"message":"server is still in the process of starting"}',
        () => lnd.getInfo(),
        'backend_unavailable',
      ],
      [404, '{"code":5,"message":"Not Found","details":[]}', () => lnd.getInfo(), 'backend_error'],
      [
        404,
        '{"code":5,"message":"unable to locate invoice"}',
        () => lnd.lookupInvoice('ab'.repeat(32)),
        'invoice_not_found',
      ],
      [
        409,
        '{"error":{"code":6,"message":"invoice is already paid","details":[]}}',
        pay,
        'already_paid',
      ],
      [200, '{"error":{"code":6,"message":"payment is in transition"}}\n', pay, 'payment_timeout'],
      [
        200,
        '{"result":{"status":"WHATEVER"}}\n',
        () => lnd.lookupPayment(ext.paymentHash),
        'backend_error',
      ],
      [200, '{"gateway":"garbage"}\n', () => lnd.lookupPayment(ext.paymentHash), 'backend_error'],
      [200, '', () => lnd.lookupPayment(ext.paymentHash), 'backend_error'],
    ];
    for (const [status, body, call, code] of cases) {
      double.respondOnce(status, body);
      expect([status, body.slice(0, 60), await codeOf(call())]).toEqual([
        status,
        body.slice(0, 60),
        code,
      ]);
    }
    expect(double.node.timesPaid(ext.paymentHash)).toBe(0);
  });

  it('refuses a macaroon that is not hex', () => {
    expect(() => createLndBackend({ url: double.url, macaroonHex: 'AgEDbG5k' })).toThrow(/hex/);
  });
});
