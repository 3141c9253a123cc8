import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { decodeInvoice, encodeInvoice } from '../lightning/bolt11.js';
import { createDevNetwork } from '../lightning/dev/node.js';
import { encodeChargeRequest } from '../mpp/charge-request.js';
import { formatPaymentRequiredHeader } from '../x402/payment-required.js';
import type { X402PaymentRequired } from '../x402/types.js';
import {
  assertConsistentPrices,
  type L402Offer,
  type MppOffer,
  offersOfPaymentRequired,
  parseOffers,
  type X402Offer,
} from './offers.js';

// The real Aperture challenge from lsat-js fixtures (l402-anchors §10.1): regtest, 10 sat.
const APERTURE_MACAROON =
  'AgEEbHNhdAJCAAAwpHpumws6ufQoDwiTLNcge0QPUIWA0+tVY+tKPYAJ/zSfmEGlIpNm3VzxuzCqLhEp5KGiyPLUM9L+kcB7uzS+AAIPc2VydmljZXM9bWVtZTowAAISbWVtZV9jYXBhYmlsaXRpZXM9AAAGILA1VCEIExukt4nG+XR9tX8WJ2BVMiHG3UNt1uYJ+NRD';
const APERTURE_INVOICE =
  'lnbcrt100n1p3qqkygpp5xzj85m5mpvatnapgpuyfxtxhypa5gr6sskqd8664v04550vqp8lsdq8f3f5z4qcqzpgsp5tpzvsq5pckqgln3ltpy3e9cf6tf2aj82ffa2tted77ltweuaweks9qyyssq0w5da3k40wtdukac7hp5s58hsxf8k8f52c5qneezu4xg3xh87xrnkl5jwtw098d2gjywx20nmkxl2y4vq9fr89kg5kzcwupv9xpdaggp4fc4ms';
const APERTURE_HASH = '30a47a6e9b0b3ab9f4280f08932cd7207b440f508580d3eb5563eb4a3d8009ff';
const APERTURE_TIME = decodeInvoice(APERTURE_INVOICE).timestamp * 1000 + 1000;

const network = createDevNetwork({ path: ':memory:' });
network.openWallet('shop');
const shop = network.backend('shop');
afterAll(() => network.close());

const headers = (...pairs: Array<[string, string]>): Headers => {
  const h = new Headers();
  for (const [name, value] of pairs) h.append(name, value);
  return h;
};
const l402 = (offers: ReturnType<typeof parseOffers>['offers']) =>
  offers.filter((o): o is L402Offer => o.protocol === 'l402');

async function mppChallenge(
  params: { claimedSat?: bigint; method?: string; expires?: string } = {},
) {
  const invoice = await shop.createInvoice({ amountMsat: 21_000n });
  const request = encodeChargeRequest({
    amountSat: params.claimedSat ?? 21n,
    invoice: invoice.paymentRequest,
    paymentHash: invoice.paymentHash,
    network: 'regtest',
  });
  const expires = params.expires ? `, expires="${params.expires}"` : '';
  return {
    invoice,
    value: `Payment id="abc", realm="api", method="${params.method ?? 'lightning'}", intent="charge", request="${request}"${expires}`,
  };
}

describe('parseOffers: L402', () => {
  it('reads the real Aperture challenge and prices it by its invoice', () => {
    const parsed = parseOffers(
      {
        headers: headers([
          'WWW-Authenticate',
          `LSAT macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
        ]),
      },
      APERTURE_TIME,
    );
    expect(parsed.rejected).toEqual([]);
    expect(parsed.offers).toHaveLength(1);
    const [offer] = l402(parsed.offers);
    expect(offer).toMatchObject({
      protocol: 'l402',
      scheme: 'LSAT',
      macaroon: APERTURE_MACAROON,
      amountMsat: 10_000n,
    });
    expect(offer?.invoice).toMatchObject({ paymentHash: APERTURE_HASH, network: 'regtest' });
  });

  it('merges the LSAT and L402 lines of one token into one L402 offer', () => {
    const line = (scheme: string) =>
      `${scheme} macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`;
    const parsed = parseOffers(
      { headers: headers(['WWW-Authenticate', line('LSAT')], ['WWW-Authenticate', line('L402')]) },
      APERTURE_TIME,
    );
    expect(parsed.offers).toHaveLength(1);
    expect(l402(parsed.offers)[0]?.scheme).toBe('L402');
  });

  it.each([
    [
      'spec token= with version',
      `L402 version="0", token="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
    ],
    ['lower-case scheme', `l402 macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`],
    ['unquoted values', `LSAT macaroon=${APERTURE_MACAROON}, invoice=${APERTURE_INVOICE}`],
    [
      'no comma after version',
      `L402 version="0" macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
    ],
    [
      'between Basic and Bearer in one line',
      `Basic realm="x", L402 macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}", Bearer realm="y", error="invalid_token"`,
    ],
  ])('reads the %s form', (_name, value) => {
    const parsed = parseOffers({ headers: headers(['WWW-Authenticate', value]) }, APERTURE_TIME);
    expect(parsed.rejected).toEqual([]);
    expect(l402(parsed.offers).map((o) => [o.macaroon, o.amountMsat])).toEqual([
      [APERTURE_MACAROON, 10_000n],
    ]);
  });

  it('keeps a URL-safe unpadded token exactly as received', () => {
    const urlsafe = APERTURE_MACAROON.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const parsed = parseOffers(
      {
        headers: headers([
          'WWW-Authenticate',
          `LSAT macaroon="${urlsafe}", invoice="${APERTURE_INVOICE}"`,
        ]),
      },
      APERTURE_TIME,
    );
    expect(l402(parsed.offers)[0]?.macaroon).toBe(urlsafe);
  });

  it('rejects expired, amountless, unreadable and incomplete challenges with their reason', () => {
    const amountless = encodeInvoice({
      network: 'regtest',
      paymentHash: randomBytes(32).toString('hex'),
      privateKey: randomBytes(32).toString('hex'),
      description: 'x',
    });
    const value = [
      `L402 macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
      `L402 macaroon="${APERTURE_MACAROON}", invoice="${amountless}"`,
      `L402 macaroon="${APERTURE_MACAROON}", invoice="lnbcrt1garbage"`,
      `L402 macaroon="${APERTURE_MACAROON}"`,
    ];
    const parsed = parseOffers({
      headers: headers(...value.map((v): [string, string] => ['WWW-Authenticate', v])),
    });
    expect(parsed.offers).toEqual([]);
    const alone = parseOffers({ headers: headers(['WWW-Authenticate', value[3] ?? '']) });
    expect(alone.rejected).toEqual([
      { kind: 'l402', code: 'invalid_challenge', reason: 'L402: missing invoice' },
    ]);
    // A challenge without an invoice is only named when no L402 challenge is usable at all.
    expect(parsed.rejected.map((r) => [r.kind, r.code])).toEqual([
      ['l402', 'invoice_expired'],
      ['l402', 'amount_required'],
      ['l402', 'invalid_invoice'],
    ]);
  });

  it('ignores responses without any offer', () => {
    expect(parseOffers({ headers: headers(['WWW-Authenticate', 'Bearer realm="x"']) })).toEqual({
      offers: [],
      rejected: [],
    });
  });
});

describe('parseOffers: MPP', () => {
  it('reads a lightning charge and checks its request against the invoice', async () => {
    const { invoice, value } = await mppChallenge();
    const parsed = parseOffers({ headers: headers(['WWW-Authenticate', value]) });
    expect(parsed.rejected).toEqual([]);
    const offer = parsed.offers[0] as MppOffer;
    expect(offer).toMatchObject({
      protocol: 'mpp',
      amountMsat: 21_000n,
      challenge: { id: 'abc', realm: 'api' },
    });
    expect(offer.invoice.paymentHash).toBe(invoice.paymentHash);
  });

  it('reports amount_mismatch when the request claims another price than the invoice', async () => {
    const { value } = await mppChallenge({ claimedSat: 1n });
    const parsed = parseOffers({ headers: headers(['WWW-Authenticate', value]) });
    expect(parsed.offers).toEqual([]);
    expect(parsed.rejected).toEqual([
      expect.objectContaining({ kind: 'mpp', code: 'amount_mismatch' }),
    ]);
    expect(() => assertConsistentPrices(parsed)).toThrow(
      expect.objectContaining({ code: 'amount_mismatch' }),
    );
  });

  it('skips other methods and expired challenges', async () => {
    const tempo = await mppChallenge({ method: 'tempo' });
    const old = await mppChallenge({ expires: '2020-01-01T00:00:00Z' });
    const parsed = parseOffers({
      headers: headers(['WWW-Authenticate', `${tempo.value}, ${old.value}`]),
    });
    expect(parsed.offers).toEqual([]);
    expect(parsed.rejected.map((r) => r.code)).toEqual([
      'capability_unsupported',
      'challenge_expired',
    ]);
  });
});

describe('parseOffers: x402 and others', () => {
  const requirement = {
    scheme: 'exact',
    network: 'eip155:84532',
    amount: '10000',
    asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
    payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
    maxTimeoutSeconds: 60,
    extra: { name: 'USDC', version: '2' },
  };
  const v2 = Buffer.from(
    JSON.stringify({ x402Version: 2, resource: { url: 'x' }, accepts: [requirement] }),
  ).toString('base64');

  it('reads the v2 PAYMENT-REQUIRED header', () => {
    const parsed = parseOffers({ headers: headers(['PAYMENT-REQUIRED', v2]) });
    expect(parsed.offers).toEqual([
      expect.objectContaining({
        protocol: 'x402',
        x402Version: 2,
        scheme: 'exact',
        network: 'eip155:84532',
        amount: 10_000n,
        asset: requirement.asset,
        payTo: requirement.payTo,
        maxTimeoutSeconds: 60,
      }),
    ]);
  });

  it('reads a decoded PaymentRequired as it reads the same PAYMENT-REQUIRED header', () => {
    const text = fc.string({ minLength: 1, maxLength: 12 });
    const required = fc.record({
      x402Version: fc.constant(2 as const),
      resource: fc.record({ url: text }),
      accepts: fc.array(
        fc.record({
          scheme: text,
          network: fc.constantFrom(
            'eip155:8453',
            'eip155:31337',
            'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp',
          ),
          asset: text,
          amount: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
          payTo: text,
          maxTimeoutSeconds: fc.integer({ min: 1, max: 86_400 }),
          // As JSON carries them: fc.jsonValue() also makes -0, which a header turns into 0.
          extra: fc.dictionary(
            text,
            fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown),
            { maxKeys: 3 },
          ),
        }),
        { maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(required, (paymentRequired) => {
        const decoded = paymentRequired as X402PaymentRequired;
        const header = formatPaymentRequiredHeader(decoded);
        const parsed = parseOffers({ headers: headers(['PAYMENT-REQUIRED', header]) });
        expect(offersOfPaymentRequired(decoded)).toEqual(parsed.offers);
      }),
    );
  });

  it('reads a v1 body, unless a v2 header says the same', () => {
    const { amount, ...rest } = requirement;
    const body = JSON.stringify({
      x402Version: 1,
      accepts: [{ ...rest, network: 'base-sepolia', maxAmountRequired: amount }],
    });
    const v1 = parseOffers({ headers: headers(), body });
    expect((v1.offers[0] as X402Offer).x402Version).toBe(1);
    expect((v1.offers[0] as X402Offer).amount).toBe(10_000n);
    const both = parseOffers({ headers: headers(['PAYMENT-REQUIRED', v2]), body });
    expect(both.offers.map((o) => (o as X402Offer).x402Version)).toEqual([2]);
  });

  it('reports malformed x402, Fewsats bodies and Cashu as rejected', () => {
    const bad = Buffer.from(
      JSON.stringify({ x402Version: 2, accepts: [{ scheme: 'exact', amount: '1.5' }] }),
    ).toString('base64');
    const fewsats = JSON.stringify({
      offers: [{ offer_id: 'a', amount: 1 }],
      payment_request_url: 'https://x/pay',
      payment_context_token: 't',
    });
    const parsed = parseOffers({
      headers: headers(['PAYMENT-REQUIRED', bad], ['X-Cashu', 'creqAxyz']),
      body: fewsats,
    });
    expect(parsed.offers).toEqual([]);
    expect(parsed.rejected.map((r) => [r.kind, r.code])).toEqual([
      ['x402', 'invalid_json'],
      ['cashu', 'capability_unsupported'],
      ['l402-offers', 'capability_unsupported'],
    ]);
  });

  it('checks the prices a JSON body claims against the invoices', async () => {
    const invoice = await shop.createInvoice({ amountMsat: 5_000n });
    const value = `L402 macaroon="${APERTURE_MACAROON}", invoice="${invoice.paymentRequest}"`;
    const claim = (amount: string, unit: string) =>
      JSON.stringify({
        offers: [{ protocol: 'l402', amount, unit, invoice: invoice.paymentRequest }],
      });
    const honest = parseOffers({
      headers: headers(['WWW-Authenticate', value]),
      body: claim('5', 'sat'),
    });
    expect(() => assertConsistentPrices(honest)).not.toThrow();
    expect(honest.offers).toHaveLength(1);
    const cheap = parseOffers({
      headers: headers(['WWW-Authenticate', value]),
      body: claim('1000', 'msat'),
    });
    expect(cheap.rejected).toEqual([expect.objectContaining({ code: 'amount_mismatch' })]);
    expect(() => assertConsistentPrices(cheap)).toThrow(
      expect.objectContaining({ code: 'amount_mismatch' }),
    );
  });
});

describe('parseOffers: property', () => {
  it('finds each offer once, whatever the order and grouping of the challenges', async () => {
    const { value: mpp } = await mppChallenge();
    const lines = [
      `LSAT macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
      `L402 macaroon="${APERTURE_MACAROON}", invoice="${APERTURE_INVOICE}"`,
      mpp,
      'Basic realm="x"',
      'Bearer realm="y", scope="read"',
    ];
    fc.assert(
      fc.property(fc.shuffledSubarray(lines, { minLength: 1 }), fc.boolean(), (picked, joined) => {
        const h = joined
          ? headers(['WWW-Authenticate', picked.join(', ')])
          : headers(...picked.map((line): [string, string] => ['WWW-Authenticate', line]));
        const parsed = parseOffers({ headers: h }, APERTURE_TIME);
        const wantL402 = picked.some((line) => line.startsWith('L') && line.includes('macaroon'))
          ? 1
          : 0;
        const wantMpp = picked.includes(mpp) ? 1 : 0;
        expect(parsed.offers.filter((o) => o.protocol === 'l402')).toHaveLength(wantL402);
        expect(parsed.offers.filter((o) => o.protocol === 'mpp')).toHaveLength(wantMpp);
        expect(parsed.rejected).toEqual([]);
      }),
    );
  });

  it('never throws on arbitrary header text, only reports', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[\x20-\x7e]{0,300}$/),
        fc.string({ maxLength: 300 }),
        (authenticate, body) => {
          try {
            parseOffers({ headers: headers(['WWW-Authenticate', authenticate]), body });
          } catch (error) {
            expect(isTollwayError(error)).toBe(false);
            throw error;
          }
        },
      ),
    );
  });
});
