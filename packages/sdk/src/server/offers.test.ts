import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  headerValues,
  offersOf,
  paymentOf,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { bytesToHex, hexToBytes } from '../internal/bytes.js';
import { sha256 } from '../internal/crypto.js';
import { createMemoryStore } from '../stores/memory.js';
import { type OfferKind, readCredential } from './offers.js';
import { createPaywall } from './paywall.js';
import { createMasterSecret } from './root-keys.js';

/**
 * A minimal third protocol, as x402 will join: `Demo invoice="…"` challenges, and single-use
 * `Authorization: Demo <payment hash>.<preimage>` credentials.
 */
const demo: OfferKind = {
  name: 'demo',
  offer: ({ invoice, amountMsat }) =>
    invoice === undefined
      ? undefined
      : {
          challenges: [`Demo invoice="${invoice.paymentRequest}"`],
          headers: [['X-Demo-Offer', invoice.paymentHash]],
          entry: { protocol: 'demo', amount: amountMsat.toString(), unit: 'msat' },
        },
  read(source) {
    const value = source.authorization.find((line) => line.startsWith('Demo '));
    if (value === undefined) return undefined;
    const [paymentHash = '', preimage = ''] = value.slice(5).split('.');
    return {
      kind: 'demo',
      verify: () =>
        bytesToHex(sha256(hexToBytes(preimage))) === paymentHash
          ? {
              ok: true,
              proof: {
                protocol: 'x402',
                tokenId: `demo-${paymentHash}`,
                paymentHash,
                amountMsat: 10_000n,
                singleUse: { key: `demo:${paymentHash}`, expiresAt: Date.now() + 60_000 },
                headers: [['X-Demo-Receipt', paymentHash]],
              },
            }
          : { ok: false, code: 'preimage_mismatch', message: 'wrong preimage' },
    };
  },
};

let dev: ReturnType<typeof createDevSetup>;
beforeEach(() => {
  dev = createDevSetup();
});
afterEach(async () => {
  await dev.network.close();
});

describe('offer kinds', () => {
  it('let a new protocol join the 402 and the paid path without touching the engine', async () => {
    const paywall = createPaywall({
      lightning: dev.shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      offers: [demo],
      logger: createMemoryLogger(),
    });
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const values = headerValues(challenge, 'www-authenticate');
    expect(values.map((value) => value.split(' ')[0])).toEqual(['LSAT', 'L402', 'Payment', 'Demo']);
    const { l402 } = offersOf(challenge);
    expect(values[3]).toBe(`Demo invoice="${l402.invoice}"`);
    const offers = problemOf(challenge).offers as Array<{ protocol: string }>;
    expect(offers.map((offer) => offer.protocol)).toEqual(['l402', 'mpp', 'demo']);

    const paid = await dev.agent.payInvoice({ paymentRequest: l402.invoice });
    const authorization = `Demo ${paid.paymentHash}.${paid.preimage}`;
    const decision = await paywall.handle(
      paywallRequest('/x', { headers: { authorization } }),
      route,
    );
    expect(paymentOf(decision)).toMatchObject({ protocol: 'x402', amount: 10_000n });
    expect(decision.kind === 'pass' && decision.headers[0]).toEqual([
      'X-Demo-Receipt',
      paid.paymentHash,
    ]);
    const replay = responseOf(
      await paywall.handle(paywallRequest('/x', { headers: { authorization } }), route),
    );
    expect(problemOf(replay).code).toBe('credential_replayed');
  });

  it('answer a credential that asks something of its payment themselves, instead of the handler', async () => {
    // A kind whose `X-Ask` credential is a question to the payment (as an x402 refund is): the
    // engine runs its answer, and sends what it says, a 200 or a refusal with its headers.
    const asked: string[] = [];
    const ask: OfferKind = {
      name: 'ask',
      headers: ['x-ask'],
      offer: () => undefined,
      read(source) {
        const question = source.headers.get('x-ask');
        if (question === null) return undefined;
        return {
          kind: 'ask',
          verify: () => ({
            ok: true,
            proof: {
              protocol: 'ask',
              tokenId: `ask-${question}`,
              paymentHash: question,
              headers: [],
              answer: async () => {
                asked.push(question);
                return question === 'balance'
                  ? { ok: true, body: { left: '3' }, headers: [['X-Ask-Receipt', 'r1']] }
                  : {
                      ok: false,
                      status: 402,
                      code: 'x402_refund_refused',
                      message: 'nothing left',
                      headers: [['X-Ask-Receipt', 'r2']],
                    };
              },
            },
          }),
        };
      },
    };
    const paywall = createPaywall({
      lightning: dev.shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      offers: [ask],
      logger: createMemoryLogger(),
    });
    const route = paywall.route({ price: '10 sat' });
    const answered = responseOf(
      await paywall.handle(paywallRequest('/x', { headers: { 'x-ask': 'balance' } }), route),
    );
    expect(answered.status).toBe(200);
    expect(JSON.parse(String(answered.body))).toEqual({ left: '3' });
    expect(headerValues(answered, 'x-ask-receipt')).toEqual(['r1']);
    const refused = responseOf(
      await paywall.handle(paywallRequest('/x', { headers: { 'x-ask': 'refund' } }), route),
    );
    expect(refused.status).toBe(402);
    expect(problemOf(refused).code).toBe('x402_refund_refused');
    expect(headerValues(refused, 'x-ask-receipt')).toEqual(['r2']);
    expect(asked).toEqual(['balance', 'refund']);
  });

  it('read a credential from a header of their own, under a protocol name of their own', async () => {
    // A kind the engine has never heard of: its credential arrives in `X-Token-Proof`, and its
    // payments are recorded and passed on as protocol `token-proof`.
    const tokenProof: OfferKind = {
      name: 'token-proof',
      headers: ['x-token-proof'],
      offer: ({ invoice }) =>
        invoice === undefined
          ? undefined
          : {
              challenges: [],
              entry: { protocol: 'token-proof' },
              data: { invoice: invoice.paymentRequest },
            },
      read(source) {
        const value = source.headers.get('x-token-proof');
        if (value === null) return undefined;
        const [paymentHash = '', preimage = ''] = value.split('.');
        return {
          kind: 'token-proof',
          verify: () =>
            bytesToHex(sha256(hexToBytes(preimage))) === paymentHash
              ? {
                  ok: true,
                  proof: {
                    protocol: 'token-proof',
                    tokenId: `tp-${paymentHash}`,
                    paymentHash,
                    headers: [],
                  },
                }
              : { ok: false, code: 'preimage_mismatch', message: 'wrong preimage' },
        };
      },
    };
    const store = createMemoryStore();
    const paywall = createPaywall({
      lightning: dev.shop,
      store,
      secrets: [createMasterSecret()],
      protocols: [],
      offers: [tokenProof],
      logger: createMemoryLogger(),
    });
    const route = paywall.route({ price: '10 sat' });
    const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
    const offer = challenge.offers?.['token-proof'] as { invoice: string } | undefined;
    const paid = await dev.agent.payInvoice({ paymentRequest: offer?.invoice ?? '' });
    const { paymentHash } = paid;
    const headers = { 'x-token-proof': `${paid.paymentHash}.${paid.preimage}` };
    for (let round = 0; round < 2; round++) {
      const decision = await paywall.handle(paywallRequest('/x', { headers }), route);
      expect(paymentOf(decision)).toMatchObject({
        protocol: 'token-proof',
        tokenId: `tp-${paymentHash}`,
      });
    }
    const wrong = { 'x-token-proof': `${paid.paymentHash}.${'00'.repeat(32)}` };
    const refused = responseOf(
      await paywall.handle(paywallRequest('/x', { headers: wrong }), route),
    );
    expect(problemOf(refused).code).toBe('preimage_mismatch');
    await paywall.close();
    expect(await store.listSettlements({})).toMatchObject([{ protocol: 'token-proof' }]);
  });

  it('refuse a request carrying credentials of two kinds', () => {
    const source = { authorization: ['Demo a.b', 'Demo c.d'], headers: new Headers() };
    expect(readCredential([demo], source)?.kind).toBe('demo');
    expect(() => readCredential([demo, { ...demo, name: 'again' }], source)).toThrowError(
      expect.objectContaining({ code: 'conflicting_credentials' }),
    );
    expect(
      readCredential([demo], { authorization: ['Bearer x'], headers: new Headers() }),
    ).toBeUndefined();
  });
});
