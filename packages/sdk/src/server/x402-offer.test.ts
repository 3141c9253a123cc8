import { validateDiscoveryExtension } from '@x402/extensions/bazaar';
import { describe, expect, it } from 'vitest';
import {
  createMemoryLogger,
  headerValues,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { isTollwayError } from '../errors.js';
import { createDevNetwork } from '../lightning/dev/node.js';
import { fixedRate } from '../money.js';
import { createMemoryStore } from '../stores/memory.js';
import { createFacilitatorClient } from '../x402/facilitator-client.js';
import { parsePaymentRequiredHeader } from '../x402/payment-required.js';
import { createPaywall } from './paywall.js';
import { parsePrice } from './pricing.js';
import { createMasterSecret } from './root-keys.js';
import { createRoute, type RouteOptions } from './route.js';
import { createX402Offer, type X402OfferOptions } from './x402-offer.js';

// Never called: offering prices routes without asking the facilitator.
const facilitator = createFacilitatorClient({ url: 'http://127.0.0.1:9' });
const base: X402OfferOptions = {
  facilitator,
  payTo: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
  network: 'eip155:8453',
  asset: {
    address: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
    decimals: 6,
    name: 'USD Coin',
    version: '2',
  },
};

/**
 * The amount offered for a request of a route, or undefined when the offer declines it; `listed`
 * is the request's price as the engine quoted it (default: the route's fixed price).
 */
function offered(
  options: X402OfferOptions,
  route: RouteOptions,
  listed?: string,
): bigint | undefined {
  const created = createRoute(route, { rates: fixedRate('100000') });
  const fixed = typeof created.price === 'function' ? undefined : created.price;
  const price = listed === undefined ? fixed : parsePrice(listed);
  if (price === undefined) throw new Error('a request of a function-priced route needs `listed`');
  const part = createX402Offer(options).offer({
    route: created,
    path: '/r',
    method: 'GET',
    invoice: {
      paymentRequest: 'lnbcrt1',
      paymentHash: '00'.repeat(32),
      amountMsat: 1n,
      expiresAt: 0,
    },
    tokenId: new Uint8Array(32),
    priceMsat: 1n,
    price,
    priceMicroUsd: price.unit === 'usd' ? price.microUsd : undefined,
    amountMsat: 1n,
    now: 0,
  });
  if (part === undefined) return undefined;
  const header = part.headers?.find(([name]) => name === 'PAYMENT-REQUIRED')?.[1] ?? '';
  return parsePaymentRequiredHeader(header).accepts[0]?.amount;
}

function codeOf(make: () => unknown): string | undefined {
  try {
    make();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : String(error);
  }
}

describe('createX402Offer', () => {
  it('prices a dollar route at one dollar per token, rounded up to a base unit', () => {
    expect(offered(base, { service: 's', price: '$0.01' })).toBe(10_000n);
    expect(offered(base, { service: 's', price: '$0.000001' })).toBe(1n);
    const cents = { ...base, asset: { ...base.asset, decimals: 2 } };
    expect(offered(cents, { service: 's', price: '$0.001' })).toBe(1n);
  });

  it('declines routes it cannot price, unless it has a price of its own', () => {
    expect(offered(base, { service: 's', price: '10 sat' })).toBeUndefined();
    expect(offered(base, { service: 's', price: '$1', uses: 5 })).toBeUndefined();
    expect(offered({ ...base, price: 42n }, { service: 's', price: '10 sat' })).toBe(42n);
    expect(offered({ ...base, price: '$0.25' }, { service: 's', price: '10 sat' })).toBe(250_000n);
  });

  it("prices a request of a function-priced route at that request's dollar price", () => {
    const route = { service: 's', price: () => '$1' };
    expect(offered(base, route, '$0.01')).toBe(10_000n);
    expect(offered(base, route, '$0.02')).toBe(20_000n);
    expect(offered(base, route, '10 sat')).toBeUndefined();
    expect(offered(base, route, '$0')).toBeUndefined();
    expect(offered({ ...base, price: 42n }, route, '10 sat')).toBe(42n);
  });

  it('refuses malformed options', () => {
    expect(codeOf(() => createX402Offer({ ...base, payTo: '0x12' }))).toBe('invalid_config');
    expect(codeOf(() => createX402Offer({ ...base, network: 'base' as 'eip155:1' }))).toBe(
      'invalid_config',
    );
    expect(codeOf(() => createX402Offer({ ...base, maxTimeoutSeconds: 0 }))).toBe('invalid_config');
    expect(codeOf(() => createX402Offer({ ...base, price: '10 sat' }))).toBe('invalid_price');
    expect(codeOf(() => createX402Offer({ ...base, price: 0n }))).toBe('invalid_price');
    expect(codeOf(() => createX402Offer({ ...base, network: 'eip155:31337', v1: true }))).toBe(
      'unsupported_network',
    );
  });

  it('refuses a request carrying both PAYMENT-SIGNATURE and X-PAYMENT', () => {
    const offer = createX402Offer({ ...base, v1: true });
    const headers = new Headers({ 'PAYMENT-SIGNATURE': 'e30=', 'X-PAYMENT': 'e30=' });
    expect(codeOf(() => offer.read({ authorization: [], headers }))).toBe(
      'conflicting_credentials',
    );
  });
});

describe('a request that asks for x402 offers only', () => {
  it('gets a 402 without a Lightning invoice; other requests still need one', async () => {
    const network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop');
    const paywall = createPaywall({
      lightning: network.backend('shop'),
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      offers: [createX402Offer(base)],
      rates: fixedRate('100000'),
      logger: createMemoryLogger(),
    });
    const route = paywall.route({ service: 'tools', price: '$0.01' });
    // Without a Lightning node, only a 402 that needs no invoice can be made.
    await network.close();

    const x402 = responseOf(
      await paywall.handle({ ...paywallRequest('/t'), offers: ['x402'] }, route),
    );
    expect(x402.status).toBe(402);
    expect(headerValues(x402, 'www-authenticate')).toEqual([]);
    const [required] = headerValues(x402, 'payment-required');
    expect(parsePaymentRequiredHeader(required ?? '').accepts[0]?.amount).toBe(10_000n);
    expect(problemOf(x402).offers).toEqual([expect.objectContaining({ protocol: 'x402' })]);

    const every = responseOf(await paywall.handle(paywallRequest('/t'), route));
    expect(every.status).toBe(503);
    expect(problemOf(every).code).toBe('invoice_unavailable');
  });
});

describe('the Bazaar discovery extension', () => {
  function requiredFor(options: X402OfferOptions, method: string) {
    const part = createX402Offer(options).offer({
      route: createRoute({ service: 's', price: '$0.01' }, { rates: fixedRate('100000') }),
      path: '/r',
      method,
      invoice: undefined,
      tokenId: new Uint8Array(32),
      priceMsat: 1n,
      price: parsePrice('$0.01'),
      priceMicroUsd: 10_000n,
      amountMsat: 1n,
      now: 0,
    });
    const header = part?.headers?.find(([name]) => name === 'PAYMENT-REQUIRED')?.[1] ?? '';
    return parsePaymentRequiredHeader(header);
  }

  it("is valid by @x402/extensions' own validator, for query and body methods", () => {
    for (const method of ['GET', 'POST', 'DELETE', 'PUT']) {
      const extension = requiredFor({ ...base, bazaar: true }, method).extensions?.bazaar;
      expect(validateDiscoveryExtension(extension as never)).toEqual({ valid: true });
      expect(extension).toMatchObject({ info: { input: { type: 'http', method } } });
    }
  });

  it('is left out unless asked for', () => {
    expect(requiredFor(base, 'GET').extensions).toBeUndefined();
  });
});
