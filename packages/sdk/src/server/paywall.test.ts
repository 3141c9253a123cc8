import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  headerValues,
  invoiceOf,
  mppCredential,
  offersOf,
  payL402,
  payMpp,
  paymentOf,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { isTollwayError, TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes } from '../internal/bytes.js';
import { sha256 } from '../internal/crypto.js';
import { formatL402Credential } from '../l402/credential.js';
import { addFirstPartyCaveat, formatMacaroon, parseMacaroon } from '../l402/macaroon.js';
import { fixedRate } from '../money.js';
import { decodeChargeRequest } from '../mpp/charge-request.js';
import { parsePaymentReceipt } from '../mpp/receipt.js';
import { createMemoryStore } from '../stores/memory.js';
import { createPaywall, type PaywallOptions } from './paywall.js';
import { createMasterSecret } from './root-keys.js';

/**
 * A memory store whose `method` refuses with `store_error` while `outage.down` (a database
 * restarting), counting the refusals; `store` is the store behind it.
 */
function restartingStore(method: 'resizeHold' | 'settleHold') {
  const store = createMemoryStore();
  const outage = { down: false, refused: 0 };
  const passOn = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
  const refusing = (...args: unknown[]) => {
    if (!outage.down) return passOn(...args);
    outage.refused++;
    return Promise.reject(new TollwayError('store_error', 'connection refused'));
  };
  return { store, restarting: { ...store, [method]: refusing }, outage };
}

/** The account of an L402 `Authorization` value: the hash of its preimage. */
function accountOfL402(authorization: string): string {
  return bytesToHex(sha256(hexToBytes(authorization.split(':')[1] ?? '')));
}

const secret = createMasterSecret();
let dev: ReturnType<typeof createDevSetup>;
let logger: ReturnType<typeof createMemoryLogger>;

beforeEach(() => {
  dev = createDevSetup();
  logger = createMemoryLogger();
});
afterEach(async () => {
  await dev.network.close();
});

function setup(extra: Partial<PaywallOptions> = {}) {
  const store = createMemoryStore();
  const paywall = createPaywall({
    lightning: dev.shop,
    store,
    secrets: [secret],
    realm: 'api.example.com',
    logger,
    ...extra,
  });
  return { store, paywall };
}

describe('an unpaid request', () => {
  it('gets a 402 offering L402 (LSAT line first) and MPP, backed by one invoice', async () => {
    const { paywall } = setup();
    const route = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
    const response = responseOf(
      await paywall.handle(
        paywallRequest('/forecast?city=Oslo', { headers: { origin: 'https://app.example.com' } }),
        route,
      ),
    );

    expect(response.status).toBe(402);
    const values = headerValues(response, 'www-authenticate');
    expect(values.map((value) => value.split(' ')[0])).toEqual(['LSAT', 'L402', 'Payment']);
    const { l402, payment } = offersOf(response);
    expect(payment).toBeDefined();
    if (payment === undefined) return;
    expect(invoiceOf(payment)).toBe(l402.invoice);
    expect(decodeChargeRequest(payment.request).amountSat).toBe(10n);
    expect(payment.realm).toBe('api.example.com');

    expect(headerValues(response, 'cache-control')).toEqual(['no-store']);
    expect(headerValues(response, 'content-type')).toEqual(['application/problem+json']);
    expect(headerValues(response, 'access-control-allow-origin')).toEqual(['*']);
    expect(headerValues(response, 'access-control-expose-headers')[0]).toContain(
      'WWW-Authenticate, Payment-Receipt, PAYMENT-REQUIRED, PAYMENT-RESPONSE, Tollway-Charged, Tollway-Remaining, Tollway-Reserved, Tollway-Credential',
    );

    const body = problemOf(response);
    expect(body).toMatchObject({
      type: 'https://paymentauth.org/problems/payment-required',
      title: 'Payment Required',
      status: 402,
      code: 'payment_required',
      service: 'forecast',
      price: { amount: '10000', unit: 'msat', display: '10 sat' },
      grants: { service: 'forecast', tier: 0, validForSeconds: 3600 },
    });
    const offers = body.offers as Array<Record<string, string>>;
    expect(offers.map((offer) => [offer.protocol, offer.amount, offer.unit])).toEqual([
      ['l402', '10000', 'msat'],
      ['mpp', '10', 'sat'],
    ]);
    expect(offers[0]?.invoice).toBe(l402.invoice);
    expect(offers[0]?.macaroon).toBe(l402.macaroon);
    expect(offers[1]?.challengeId).toBe(payment.id);
  });

  it('mints one invoice per 402 and a different token each time', async () => {
    let invoices = 0;
    const lightning = {
      ...dev.shop,
      createInvoice: (params: Parameters<typeof dev.shop.createInvoice>[0]) => {
        invoices += 1;
        return dev.shop.createInvoice(params);
      },
    };
    const { paywall } = setup({ lightning });
    const route = paywall.route({ price: '10 sat' });
    const first = offersOf(responseOf(await paywall.handle(paywallRequest('/x'), route)));
    const second = offersOf(responseOf(await paywall.handle(paywallRequest('/x'), route)));
    expect(invoices).toBe(2);
    expect(first.l402.macaroon).not.toBe(second.l402.macaroon);
    expect(first.l402.invoice).not.toBe(second.l402.invoice);
  });

  it('leaves MPP out when the price is not a whole number of sats, and for sold uses', async () => {
    const { paywall } = setup();
    const fractional = paywall.route({ price: '2500 msat' });
    const response = responseOf(await paywall.handle(paywallRequest('/x'), fractional));
    expect(offersOf(response).payment).toBeUndefined();
    expect(problemOf(response).price).toMatchObject({ amount: '2500', display: '2.5 sat' });
    const bundle = paywall.route({ price: '10 sat', uses: 5 });
    const bundled = responseOf(await paywall.handle(paywallRequest('/x'), bundle));
    expect(offersOf(bundled).payment).toBeUndefined();
  });

  it('emits the 2026 spec form on request', async () => {
    const { paywall } = setup({ l402Form: 'spec', protocols: ['l402'] });
    const route = paywall.route({ price: '1 sat' });
    const response = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const values = headerValues(response, 'www-authenticate');
    expect(values).toHaveLength(1);
    expect(values[0]).toMatch(/^L402 version="0", token="[^"]+", invoice="lnbcrt/);
  });
});

describe('an L402 credential', () => {
  it('passes once the invoice is paid, with the payment context', async () => {
    const { paywall, store } = setup();
    const route = paywall.route({ service: { name: 'forecast', tier: 2 }, price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/forecast'), route));
    const authorization = await payL402(challenge, dev.agent);

    const decision = await paywall.handle(
      paywallRequest('/forecast', { headers: { authorization } }),
      route,
    );
    const payment = paymentOf(decision);
    const tokenId = Buffer.from(parseMacaroon(offersOf(challenge).l402.macaroon).identifier)
      .subarray(34)
      .toString('hex');
    expect(payment).toEqual({
      protocol: 'l402',
      tokenId,
      service: 'forecast',
      tier: 2,
      amount: 10_000n,
      unit: 'msat',
    });
    // A second request with the same token also passes (served from the verified-token cache).
    paymentOf(
      await paywall.handle(paywallRequest('/forecast', { headers: { authorization } }), route),
    );

    await paywall.close();
    const [settlement] = await store.listSettlements({});
    expect(settlement).toMatchObject({ tokenId, protocol: 'l402', amount: 10_000n, unit: 'msat' });
    expect(await store.getToken(tokenId)).toMatchObject({ service: 'forecast', tier: 2 });
  });

  it('decides a repeat request without a promise, and its answer exposes no receipt headers', async () => {
    const { paywall } = setup();
    const route = paywall.route({ service: 'forecast', price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/forecast'), route));
    const authorization = await payL402(challenge, dev.agent);
    const request = (origin: Record<string, string> = {}) =>
      paywallRequest('/forecast', { headers: { authorization, ...origin } });
    paymentOf(await paywall.handle(request(), route));

    const repeat = paywall.handle(request(), route);
    expect(repeat).not.toBeInstanceOf(Promise);
    if (repeat instanceof Promise) return;
    expect(paymentOf(repeat).protocol).toBe('l402');
    // Outside a browser (no Origin), no CORS headers at all.
    expect(repeat.kind === 'pass' && repeat.headers).toEqual([]);
    // Nothing to expose on an L402 answer: the origin header alone.
    const fromBrowser = paywall.handle(request({ origin: 'https://app.example.com' }), route);
    expect(
      !(fromBrowser instanceof Promise) && fromBrowser.kind === 'pass' && fromBrowser.headers,
    ).toEqual([['Access-Control-Allow-Origin', '*']]);
  });

  it('never lends a cached verification to another credential ending the same way', async () => {
    const { paywall } = setup();
    const route = paywall.route({ service: 'forecast', price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/forecast'), route));
    const authorization = await payL402(challenge, dev.agent);
    paymentOf(
      await paywall.handle(paywallRequest('/forecast', { headers: { authorization } }), route),
    );
    // Same last 200 characters (preimage, signature, the end of the macaroon), one byte changed
    // early in the macaroon: the cache is keyed by the tail, but must compare the whole text.
    const forged = [...authorization];
    const at = 'L402 '.length + 20; // in the identifier (the location before it is not signed)
    forged[at] = forged[at] === 'A' ? 'B' : 'A';
    const text = forged.join('');
    expect(text.slice(-200)).toBe(authorization.slice(-200));
    const refused = responseOf(
      await paywall.handle(
        paywallRequest('/forecast', { headers: { authorization: text } }),
        route,
      ),
    );
    expect(refused.status).toBe(401);
  });

  it('is also read from the LSAT scheme and from a Macaroon header with a preimage caveat', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const authorization = await payL402(challenge, dev.agent);
    const lsat = authorization.replace(/^L402/, 'LSAT');
    paymentOf(
      await paywall.handle(paywallRequest('/x', { headers: { authorization: lsat } }), route),
    );

    const [, preimage = ''] = authorization.split(':');
    const macaroon = addFirstPartyCaveat(
      parseMacaroon(offersOf(challenge).l402.macaroon),
      `preimage=${preimage}`,
    );
    const hex = Buffer.from(formatMacaroon(macaroon), 'base64').toString('hex');
    paymentOf(await paywall.handle(paywallRequest('/x', { headers: { macaroon: hex } }), route));
  });

  it('is refused with 401 and a fresh challenge when expired', async () => {
    let clock = Date.now();
    const { paywall } = setup({ now: () => clock });
    const route = paywall.route({ service: 'forecast', price: '10 sat', validFor: 60 });
    const challenge = responseOf(await paywall.handle(paywallRequest('/f'), route));
    const authorization = await payL402(challenge, dev.agent);
    const paidRequest = paywallRequest('/f', { headers: { authorization } });
    paymentOf(await paywall.handle(paidRequest, route));
    clock += 61_000;
    const refused = responseOf(await paywall.handle(paidRequest, route));
    expect(refused.status).toBe(401);
    expect(problemOf(refused).code).toBe('token_expired');
    expect(offersOf(refused).l402.invoice).not.toBe(offersOf(challenge).l402.invoice);
  });

  it('answers 402 instead of 401 in Aperture compatibility mode', async () => {
    const { paywall } = setup({ compat: 'aperture' });
    const route = paywall.route({ price: '10 sat' });
    const refused = responseOf(
      await paywall.handle(
        paywallRequest('/x', { headers: { authorization: 'L402 !!!:00' } }),
        route,
      ),
    );
    expect(refused.status).toBe(402);
    expect(problemOf(refused).code).toBe('invalid_preimage');
  });

  it('is refused for another service, path or method than it was sold for', async () => {
    const { paywall } = setup();
    const scoped = paywall.route({
      service: 'forecast',
      price: '10 sat',
      scope: { paths: ['/v1/forecast'], methods: ['GET'] },
    });
    const challenge = responseOf(await paywall.handle(paywallRequest('/v1/forecast'), scoped));
    const authorization = await payL402(challenge, dev.agent);
    const headers = { authorization };

    paymentOf(await paywall.handle(paywallRequest('/v1/forecast/today', { headers }), scoped));
    const codeFor = async (url: string, method = 'GET', route = scoped) => {
      const response = responseOf(
        await paywall.handle(paywallRequest(url, { method, headers }), route),
      );
      expect(response.status).toBe(401);
      expect(offersOf(response).l402).toBeDefined();
      return problemOf(response).code;
    };
    expect(await codeFor('/v1/forecastx')).toBe('caveat_not_satisfied');
    expect(await codeFor('/v1/forecast/../admin')).toBe('caveat_not_satisfied');
    expect(await codeFor('/v1/forecast', 'POST')).toBe('caveat_not_satisfied');
    const other = paywall.route({ service: 'maps', price: '10 sat' });
    expect(await codeFor('/v1/forecast', 'GET', other)).toBe('wrong_service');
  });

  it('grants only the capabilities it was sold with', async () => {
    const { paywall } = setup();
    const daily = paywall.route({ service: 'forecast', price: '10 sat', capabilities: ['daily'] });
    const hourly = paywall.route({
      service: 'forecast',
      price: '20 sat',
      requiresCapability: 'hourly',
    });
    const challenge = responseOf(await paywall.handle(paywallRequest('/daily'), daily));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const refused = responseOf(
      await paywall.handle(paywallRequest('/hourly', { headers }), hourly),
    );
    expect(problemOf(refused).code).toBe('caveat_not_satisfied');
  });

  it('is refused when forged, malformed, or paired with another token’s preimage', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const first = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const second = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const paidFirst = await payL402(first, dev.agent);
    const [, preimage = ''] = paidFirst.split(':');
    const codeOf = async (authorization: string) => {
      const response = responseOf(
        await paywall.handle(paywallRequest('/x', { headers: { authorization } }), route),
      );
      expect(response.status).toBe(401);
      expect(offersOf(response).l402).toBeDefined();
      return problemOf(response).code;
    };

    // The preimage of the first token with the macaroon of the second (never paid).
    const other = parseMacaroon(offersOf(second).l402.macaroon);
    expect(
      await codeOf(formatL402Credential({ macaroons: [other], preimage: hexToBytes(preimage) })),
    ).toBe('preimage_mismatch');

    // A caveat rewritten without the root key: the signature no longer matches.
    const paid = parseMacaroon(offersOf(first).l402.macaroon);
    const forged = {
      ...paid,
      caveats: paid.caveats.map((caveat, index) =>
        index === 0 ? { identifier: new TextEncoder().encode('services=admin:0') } : caveat,
      ),
    };
    expect(
      await codeOf(formatL402Credential({ macaroons: [forged], preimage: hexToBytes(preimage) })),
    ).toBe('invalid_signature');

    expect(await codeOf('L402 not-base64!:00')).toBe('invalid_preimage');
    expect(await codeOf(`L402 ${offersOf(first).l402.macaroon}`)).toBe('invalid_credential');
    expect(await codeOf(`L402 AAAA:${preimage}`)).toBe('invalid_macaroon');
    expect(await codeOf('L402')).toBe('invalid_credential');
  });

  it('refuses conflicting duplicate Authorization headers with 400', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const first = await payL402(
      responseOf(await paywall.handle(paywallRequest('/x'), route)),
      dev.agent,
    );
    const second = await payL402(
      responseOf(await paywall.handle(paywallRequest('/x'), route)),
      dev.agent,
    );
    const conflicting = responseOf(
      await paywall.handle(paywallRequest('/x', { authorization: [first, second] }), route),
    );
    expect(conflicting.status).toBe(400);
    expect(problemOf(conflicting).code).toBe('conflicting_credentials');
    expect(headerValues(conflicting, 'www-authenticate')).toEqual([]);
    // The same credential twice is a repeat, not a conflict.
    paymentOf(await paywall.handle(paywallRequest('/x', { authorization: [first, first] }), route));
  });

  it('is refused with 401 token_revoked once revoked', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const { tokenId } = paymentOf(await paywall.handle(paywallRequest('/x', { headers }), route));
    await paywall.revoke(tokenId ?? '', 'abuse');
    const refused = responseOf(await paywall.handle(paywallRequest('/x', { headers }), route));
    expect(refused.status).toBe(401);
    expect(problemOf(refused).code).toBe('token_revoked');
  });
});

describe('an MPP charge credential', () => {
  it('passes once with a Payment-Receipt, and a replay is refused', async () => {
    const { paywall, store } = setup();
    const route = paywall.route({ service: 'forecast', price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/f'), route));
    const authorization = await payMpp(challenge, dev.agent);
    const decision = await paywall.handle(
      paywallRequest('/f', { headers: { authorization } }),
      route,
    );
    const payment = paymentOf(decision);
    const offer = offersOf(challenge).payment;
    expect(payment).toEqual({
      protocol: 'mpp',
      tokenId: offer?.id,
      service: 'forecast',
      amount: 10_000n,
      unit: 'msat',
    });
    if (decision.kind !== 'pass') return;
    const [[name, value] = ['', '']] = decision.headers.filter(
      ([key]) => key === 'Payment-Receipt',
    );
    expect(name).toBe('Payment-Receipt');
    const receipt = parsePaymentReceipt(value);
    expect(receipt).toMatchObject({
      status: 'success',
      method: 'lightning',
      challengeId: offer?.id,
    });
    expect(receipt.reference).toBe(decodeChargeRequest(offer?.request ?? '').paymentHash);

    const replay = responseOf(
      await paywall.handle(paywallRequest('/f', { headers: { authorization } }), route),
    );
    expect(replay.status).toBe(401);
    expect(problemOf(replay).code).toBe('credential_replayed');
    await paywall.close();
    expect(await store.listSettlements({ protocol: 'mpp' })).toHaveLength(1);
  });

  it('is refused for another service, and when it pays less than the request costs', async () => {
    const { paywall } = setup();
    const cheap = paywall.route({ service: 'forecast', price: '10 sat' });
    const maps = paywall.route({ service: 'maps', price: '10 sat' });
    const dear = paywall.route({ service: 'forecast', price: '50 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/f'), cheap));
    const headers = { authorization: await payMpp(challenge, dev.agent) };
    const wrong = responseOf(await paywall.handle(paywallRequest('/m', { headers }), maps));
    expect(problemOf(wrong).code).toBe('wrong_service');
    const under = responseOf(await paywall.handle(paywallRequest('/d', { headers }), dear));
    expect(under.status).toBe(401);
    expect(problemOf(under).code).toBe('underpaid');
    // Neither refusal burnt the credential.
    paymentOf(await paywall.handle(paywallRequest('/f', { headers }), cheap));
  });

  it('is refused when the preimage is not the invoice’s', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/f'), route));
    const offer = offersOf(challenge).payment;
    if (offer === undefined) throw new Error('no MPP offer');
    const authorization = mppCredential(offer, '11'.repeat(32));
    const refused = responseOf(
      await paywall.handle(paywallRequest('/f', { headers: { authorization } }), route),
    );
    expect(problemOf(refused).code).toBe('preimage_mismatch');
  });

  it('is refused with conflicting_credentials next to an L402 credential', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/f'), route));
    const l402 = await payL402(challenge, dev.agent);
    const offer = offersOf(challenge).payment;
    if (offer === undefined) throw new Error('no MPP offer');
    const mpp = mppCredential(offer, authorizationPreimage(l402));
    const refused = responseOf(
      await paywall.handle(paywallRequest('/f', { authorization: [l402, mpp] }), route),
    );
    expect(refused.status).toBe(400);
    expect(problemOf(refused).code).toBe('conflicting_credentials');
  });
});

describe('prices', () => {
  it('converts a dollar price with the configured rate, rounding up to a whole sat', async () => {
    const { paywall } = setup({ rates: fixedRate('100000') });
    const route = paywall.route({ price: '$0.0025' });
    const response = responseOf(await paywall.handle(paywallRequest('/x'), route));
    // $0.0025 at $100 000 per BTC is 2.5 sat: the invoice asks 3 sat.
    expect(problemOf(response).price).toEqual({
      amount: '3000',
      unit: 'msat',
      display: '3 sat',
      listed: '$0.0025',
    });
  });

  it('refuses a dollar price at route creation without a rate source', () => {
    const { paywall } = setup();
    expect(() => paywall.route({ price: '$0.01' })).toThrowError(
      expect.objectContaining({ code: 'invalid_price' }),
    );
  });

  it('prices by the JSON body, answering 400 for a body the price function rejects', async () => {
    const { paywall } = setup();
    const route = paywall.route({
      service: 'llm',
      readsBody: true,
      price: ({ body }) => {
        const model = (body as { model?: string } | undefined)?.model;
        if (model === 'small') return '5 sat';
        if (model === 'large') return '50 sat';
        if (model === 'free') return 0n;
        throw Object.assign(new Error('unknown model'), { code: 'nope' });
      },
    });
    const priceOf = async (body: unknown) =>
      problemOf(
        responseOf(await paywall.handle(paywallRequest('/chat', { method: 'POST', body }), route)),
      ).price as { amount: string };
    expect((await priceOf({ model: 'small' })).amount).toBe('5000');
    expect((await priceOf({ model: 'large' })).amount).toBe('50000');
    const free = await paywall.handle(
      paywallRequest('/chat', { method: 'POST', body: { model: 'free' } }),
      route,
    );
    expect(paymentOf(free).freeReason).toBe('free_route');
    const broken = responseOf(
      await paywall.handle(
        paywallRequest('/chat', { method: 'POST', body: { model: '?' } }),
        route,
      ),
    );
    expect(broken.status).toBe(503);
    expect(problemOf(broken).code).toBe('price_unavailable');
    expect(logger.lines.some((line) => line.message.includes('priced'))).toBe(true);
  });

  it('answers 400 invalid_json when the body cannot be read', async () => {
    const { paywall } = setup();
    const route = paywall.route({ readsBody: true, price: () => '1 sat' });
    const request = {
      ...paywallRequest('/chat', { method: 'POST' }),
      jsonBody: () => Promise.reject(new SyntaxError('Unexpected token')),
    };
    const response = responseOf(await paywall.handle(request, route));
    expect(response.status).toBe(400);
    expect(problemOf(response).code).toBe('invalid_json');
  });

  it('draws a prepaid balance down by each request’s price', async () => {
    const { paywall } = setup();
    const route = paywall.route({
      service: 'llm',
      balance: '25 sat',
      readsBody: true,
      price: ({ body }) => ((body as { model: string }).model === 'large' ? '10 sat' : '5 sat'),
    });
    const challenge = responseOf(
      await paywall.handle(
        paywallRequest('/chat', { method: 'POST', body: { model: 'small' } }),
        route,
      ),
    );
    expect(problemOf(challenge).balance).toMatchObject({ amount: '25000' });
    // An MPP charge can buy the balance too (see the next test).
    expect(offersOf(challenge).payment).toBeDefined();
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const call = (model: string) =>
      paywall.handle(paywallRequest('/chat', { method: 'POST', headers, body: { model } }), route);
    expect(paymentOf(await call('large')).remainingBalanceMsat).toBe(15_000n);
    expect(paymentOf(await call('small')).remainingBalanceMsat).toBe(10_000n);
    expect(paymentOf(await call('large')).remainingBalanceMsat).toBe(0n);
    const empty = responseOf(await call('small'));
    expect(empty.status).toBe(402);
    expect(problemOf(empty).code).toBe('balance_exhausted');
    expect(offersOf(empty).l402).toBeDefined();
  });

  it('lets an MPP charge buy a balance: presented again for each draw, shared with the L402 token of its invoice', async () => {
    const { paywall } = setup();
    const route = paywall.route({ service: 'llm', balance: '25 sat', price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/chat'), route));
    const mpp = offersOf(challenge).payment;
    if (mpp === undefined) throw new Error('no MPP offer');
    const { preimage } = await dev.agent.payInvoice({ paymentRequest: invoiceOf(mpp) });
    const mppHeaders = { authorization: mppCredential(mpp, preimage) };
    const l402Headers = { authorization: `L402 ${offersOf(challenge).l402.macaroon}:${preimage}` };
    const call = (headers: Record<string, string>) =>
      paywall.handle(paywallRequest('/chat', { headers }), route);
    expect(paymentOf(await call(mppHeaders))).toMatchObject({
      protocol: 'mpp',
      remainingBalanceMsat: 15_000n,
    });
    expect(paymentOf(await call(l402Headers)).remainingBalanceMsat).toBe(5_000n);
    const empty = responseOf(await call(mppHeaders));
    expect(problemOf(empty).code).toBe('balance_exhausted');
  });

  it('counts uses and answers 402 uses_exhausted after the last one', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat', uses: 2 });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    expect(
      paymentOf(await paywall.handle(paywallRequest('/x', { headers }), route)).remainingUses,
    ).toBe(1);
    expect(
      paymentOf(await paywall.handle(paywallRequest('/x', { headers }), route)).remainingUses,
    ).toBe(0);
    const used = responseOf(await paywall.handle(paywallRequest('/x', { headers }), route));
    expect(used.status).toBe(402);
    expect(problemOf(used).code).toBe('uses_exhausted');
  });

  it('does not count a use for a request its price function makes free', async () => {
    const { paywall } = setup();
    const route = paywall.route({
      service: 'mcp',
      readsBody: true,
      uses: 1,
      price: ({ body }) => ((body as { method?: string }).method === 'tools/call' ? '10 sat' : 0n),
    });
    const call = { method: 'POST', body: { method: 'tools/call' } } as const;
    const challenge = responseOf(await paywall.handle(paywallRequest('/mcp', call), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    for (const method of ['initialize', 'tools/list', 'ping']) {
      const free = await paywall.handle(
        paywallRequest('/mcp', { method: 'POST', headers, body: { method } }),
        route,
      );
      expect([method, paymentOf(free).freeReason]).toEqual([method, 'free_route']);
    }
    const paid = await paywall.handle(paywallRequest('/mcp', { ...call, headers }), route);
    expect(paymentOf(paid).remainingUses).toBe(0);
  });
});

describe('failures', () => {
  it('answers 503 invoice_unavailable with Retry-After when the backend cannot create invoices', async () => {
    const { createDevServer, createDevBackend } = await import('../lightning/dev/index.js');
    const server = await createDevServer({ network: dev.network, fault: () => 'unavailable' });
    try {
      const wallet = dev.network.getWallet('shop');
      const lightning = createDevBackend({
        url: server.url,
        wallet: 'shop',
        token: wallet?.token ?? '',
      });
      const { paywall } = setup({ lightning });
      const route = paywall.route({ price: '10 sat' });
      const response = responseOf(await paywall.handle(paywallRequest('/x'), route));
      expect(response.status).toBe(503);
      expect(problemOf(response).code).toBe('invoice_unavailable');
      expect(headerValues(response, 'retry-after')).toEqual(['5']);
      expect(logger.lines[0]?.context.code).toBe('backend_unavailable');
    } finally {
      await server.close();
    }
  });

  it('answers 503 store_error when the store fails on a counted token, and never throws', async () => {
    const store = createMemoryStore();
    const failing = {
      ...store,
      hold: () => Promise.reject(new Error('disk on fire')),
    };
    const paywall = createPaywall({
      lightning: dev.shop,
      store: failing,
      secrets: [secret],
      logger,
    });
    const route = paywall.route({ price: '10 sat', uses: 3 });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const response = responseOf(await paywall.handle(paywallRequest('/x', { headers }), route));
    expect(response.status).toBe(503);
    expect(problemOf(response).code).toBe('store_error');
  });

  it('charges an answered request once the store is back, so its use is not given again', async () => {
    // The store fails the charge twice (PostgreSQL restarting) after the request was answered.
    const store = createMemoryStore();
    let failures = 2;
    const restarting = {
      ...store,
      settleHold: (...args: Parameters<typeof store.settleHold>) =>
        failures-- > 0
          ? Promise.reject(new TollwayError('store_error', 'the database system is starting up'))
          : store.settleHold(...args),
    };
    let now = Date.parse('2026-12-06T10:00:00Z');
    const paywall = createPaywall({
      lightning: dev.shop,
      store: restarting,
      secrets: [secret],
      logger,
      now: () => now,
    });
    const route = paywall.route({ price: '10 sat', uses: 1 });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    expect((await paywall.handle(paywallRequest('/x', { headers }), route)).kind).toBe('pass');
    await paywall.close();
    expect(failures).toBe(-1);
    // Long after the hold's reservation TTL, the one use stays spent, on this instance or another.
    now += 10 * 60_000;
    const again = createPaywall({ lightning: dev.shop, store, secrets: [secret], now: () => now });
    const refused = responseOf(await again.handle(paywallRequest('/x', { headers }), route));
    expect(problemOf(refused).code).toBe('uses_exhausted');
    await again.close();
  });

  it('lets a balance draw answer only once its charge is written: when the store is back, else 503 store_error', async () => {
    const { store, restarting, outage } = restartingStore('resizeHold');
    const paywall = createPaywall({
      lightning: dev.shop,
      store: restarting,
      secrets: [secret],
      logger,
      reservationTtl: '1s',
    });
    const route = paywall.route({ service: 'llm', balance: '25 sat', price: '5 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/chat'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const request = { ...paywallRequest('/chat', { headers }), reportsOutcome: true };
    const call = async () => {
      const decision = await paywall.handle(request, route);
      if (decision.kind !== 'pass' || decision.charge === undefined) throw new Error('no charge');
      return {
        remaining: decision.payment.remainingBalanceMsat,
        final: await decision.charge.commit(200),
      };
    };
    // The store refuses the charge for a while (PostgreSQL restarting): the answer waits for it.
    outage.down = true;
    setTimeout(() => {
      outage.down = false;
    }, 150);
    const first = await call();
    expect(outage.refused).toBeGreaterThan(0);
    expect(first.final).toMatchObject({
      kind: 'pass',
      headers: [
        ['Tollway-Charged', '5000 msat'],
        ['Tollway-Remaining', '20000 msat'],
      ],
    });
    // The store stays down for longer than the lease lasts: the answer is refused, not charged.
    outage.down = true;
    const second = await call();
    expect(second.final.kind).toBe('respond');
    if (second.final.kind === 'respond') {
      expect(second.final.response.status).toBe(503);
      expect(problemOf(second.final.response).code).toBe('store_error');
    }
    outage.down = false;
    await paywall.close();
    // The first answer is charged, the refused one is not (the L402 account: the payment hash).
    const account = accountOfL402(headers.authorization);
    expect(await store.getUsage(account)).toMatchObject({ spentMsat: 5_000n });
  });

  it('lets a counted answer go only once its use is charged: when the store is back, else 503 store_error', async () => {
    const { store, restarting, outage } = restartingStore('settleHold');
    const paywall = createPaywall({
      lightning: dev.shop,
      store: restarting,
      secrets: [secret],
      logger,
      reservationTtl: '1s',
    });
    const route = paywall.route({ price: '1 sat', uses: 3 });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const headers = { authorization: await payL402(challenge, dev.agent) };
    const request = { ...paywallRequest('/x', { headers }), reportsOutcome: true };
    const commit = async () => {
      const decision = await paywall.handle(request, route);
      if (decision.kind !== 'pass' || decision.charge === undefined) throw new Error('no charge');
      return decision.charge.commit(200);
    };
    outage.down = true;
    setTimeout(() => {
      outage.down = false;
    }, 150);
    expect(await commit()).toMatchObject({ kind: 'pass' });
    expect(outage.refused).toBeGreaterThan(0);
    outage.down = true;
    const second = await commit();
    expect(second.kind === 'respond' && problemOf(second.response).code).toBe('store_error');
    outage.down = false;
    await paywall.close();
    const account = accountOfL402(headers.authorization);
    // One use charged; the refused answer's hold is not (it expires with its TTL).
    expect(await store.getUsage(account)).toMatchObject({ uses: 1 });
  });

  it('answers 500 internal_error (as the adapters do) instead of throwing when something unexpected fails', async () => {
    const { paywall } = setup();
    const route = paywall.route({ price: '10 sat' });
    const headers = Object.defineProperty(new Headers(), 'get', {
      value: () => {
        throw new Error('broken adapter');
      },
    });
    const response = responseOf(await paywall.handle({ ...paywallRequest('/x'), headers }, route));
    expect(response.status).toBe(500);
    expect(problemOf(response).code).toBe('internal_error');
    expect(logger.lines.at(-1)?.level).toBe('error');
  });

  it('throws invalid_config for unusable options', () => {
    const base = { lightning: dev.shop, store: createMemoryStore() };
    const codeOf = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return isTollwayError(error) ? error.code : 'other';
      }
      return 'none';
    };
    expect(codeOf(() => createPaywall({ ...base, secrets: [] }))).toBe('invalid_config');
    expect(codeOf(() => createPaywall({ ...base, secrets: ['abcd'] }))).toBe('invalid_config');
    expect(
      codeOf(() => createPaywall({ ...base, secrets: [secret], challengeExpiry: 'soon' })),
    ).toBe('invalid_config');
  });
});

function authorizationPreimage(authorization: string): string {
  return authorization.slice(authorization.lastIndexOf(':') + 1);
}
