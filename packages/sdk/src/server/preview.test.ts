import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { createMemoryStore } from '../stores/memory.js';
import { createPaywall, type Paywall } from './paywall.js';
import { createMasterSecret } from './root-keys.js';

let dev: ReturnType<typeof createDevSetup>;
let paywall: Paywall;

beforeEach(() => {
  dev = createDevSetup();
  paywall = createPaywall({
    lightning: dev.shop,
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    logger: createMemoryLogger(),
    freebies: { requests: 1, per: '1h' },
    rateLimits: { challenges: { requests: 1, per: '1h' } },
  });
});
afterEach(async () => {
  await paywall.close();
  await dev.network.close();
});

describe('paywall.preview', () => {
  it('says what the 402 says, minting nothing and counting against no freebie or limit', async () => {
    const route = paywall.route({ service: 'forecast', price: '10 sat', balance: '50 sat' });
    for (let i = 0; i < 5; i++) {
      const previewed = await paywall.preview(paywallRequest('/forecast'), route);
      expect(previewed?.status).toBe(402);
      expect(previewed?.headers.some(([name]) => name === 'WWW-Authenticate')).toBe(false);
      expect(problemOf(previewed as never)).toMatchObject({
        price: { amount: '10000', unit: 'msat' },
        balance: { amount: '50000', unit: 'msat' },
        offers: [],
      });
    }
    // The freebie and the one challenge the limit allows are still there.
    expect((await paywall.handle(paywallRequest('/forecast'), route)).kind).toBe('pass');
    const real = responseOf(await paywall.handle(paywallRequest('/forecast'), route));
    expect(real.status).toBe(402);
    expect(problemOf(real).offers).toHaveLength(2);
  });

  it('is undefined for a free route', async () => {
    const route = paywall.route({ service: 'open', free: true });
    expect(await paywall.preview(paywallRequest('/open'), route)).toBeUndefined();
  });
});
