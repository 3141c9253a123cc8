import { afterAll, describe, expect, it } from 'vitest';
import { TollwayError } from '../errors.js';
import { decodeInvoice } from '../lightning/bolt11.js';
import { createDevNetwork } from '../lightning/dev/node.js';
import type { LightningOffer, Offer, X402Offer } from './offers.js';
import { chooseOffer, chooseX402Offer, rankOffers } from './select.js';

const network = createDevNetwork({ path: ':memory:' });
network.openWallet('shop');
const shop = network.backend('shop');
afterAll(() => network.close());

async function offer(protocol: 'l402' | 'mpp', sat: bigint): Promise<LightningOffer> {
  const invoice = decodeInvoice(
    (await shop.createInvoice({ amountMsat: sat * 1000n })).paymentRequest,
  );
  const amountMsat = sat * 1000n;
  return protocol === 'l402'
    ? { protocol, scheme: 'L402', macaroon: 'AgE=', invoice, amountMsat }
    : {
        protocol,
        challenge: { id: 'i', realm: 'r', method: 'lightning', intent: 'charge', request: 'e30' },
        invoice,
        amountMsat,
      };
}

const x402: Offer = {
  protocol: 'x402',
  x402Version: 2,
  scheme: 'exact',
  network: 'eip155:8453',
  asset: '0xa0b8',
  amount: 10n,
  payTo: '0x1',
  requirement: {},
};

describe('rankOffers', () => {
  it('orders by preference, then price, and keeps only what a wallet can pay', async () => {
    const mpp5 = await offer('mpp', 5n);
    const l402Dear = await offer('l402', 20n);
    const l402Cheap = await offer('l402', 10n);
    const regtest = new Set(['regtest'] as const);
    const ranked = rankOffers([mpp5, l402Dear, x402, l402Cheap], {
      preferences: ['l402', 'mpp', 'x402'],
      networks: regtest,
    });
    expect(ranked.candidates).toEqual([l402Cheap, l402Dear, mpp5]);
    expect(ranked.rejected).toEqual([
      expect.objectContaining({ kind: 'x402', code: 'capability_unsupported' }),
    ]);

    const mppFirst = rankOffers([l402Cheap, mpp5], {
      preferences: ['mpp', 'l402'],
      networks: regtest,
    });
    expect(mppFirst.candidates).toEqual([mpp5, l402Cheap]);

    const onlyL402 = rankOffers([l402Cheap, mpp5], { preferences: ['l402'], networks: regtest });
    expect(onlyL402.candidates).toEqual([l402Cheap]);
    expect(onlyL402.rejected[0]?.kind).toBe('mpp');

    const mainnetWallets = rankOffers([l402Cheap], {
      preferences: ['l402'],
      networks: new Set(['mainnet'] as const),
    });
    expect(mainnetWallets.candidates).toEqual([]);
    expect(mainnetWallets.rejected).toEqual([expect.objectContaining({ code: 'wrong_network' })]);
  });
});

describe('chooseOffer', () => {
  it('moves to the next offer when the budget refuses this one, and throws the first refusal at the end', async () => {
    const dear = await offer('l402', 20n);
    const cheap = await offer('mpp', 5n);
    const tried: bigint[] = [];
    const reserve = async (o: LightningOffer) => {
      tried.push(o.amountMsat);
      if (o.amountMsat > 10_000n) throw new TollwayError('over_price', 'too dear');
      return `held ${o.amountMsat}`;
    };
    await expect(chooseOffer([dear, cheap], reserve)).resolves.toEqual({
      offer: cheap,
      reservation: 'held 5000',
    });
    expect(tried).toEqual([20_000n, 5_000n]);

    const never = async (o: LightningOffer): Promise<string> => {
      throw new TollwayError(o.protocol === 'l402' ? 'budget_exceeded' : 'over_price', 'no');
    };
    await expect(chooseOffer([dear, cheap], never)).rejects.toMatchObject({
      code: 'budget_exceeded',
    });

    const disabled = async (o: LightningOffer): Promise<string> => {
      tried.push(o.amountMsat);
      throw new TollwayError('payments_disabled', 'off');
    };
    tried.length = 0;
    await expect(chooseOffer([dear, cheap], disabled)).rejects.toMatchObject({
      code: 'payments_disabled',
    });
    expect(tried).toEqual([20_000n]);
  });
});

describe('chooseX402Offer', () => {
  const of = (scheme: string, amount: bigint, payTo = '0x1'): X402Offer => ({
    ...(x402 as X402Offer),
    scheme,
    amount,
    payTo,
  });
  const exact = of('exact', 10n);
  const upto = of('upto', 12n);
  const batch = of('batch-settlement', 10n);
  const dearBatch = of('batch-settlement', 11n, '0x2');
  const none = { hasChannel: () => false };

  it('pays a channel when the agent expects more than one call, the cheaper first', () => {
    expect(chooseX402Offer([exact, dearBatch, batch], { ...none, expectedCalls: 50 })).toBe(batch);
    expect(chooseX402Offer([exact, batch], { ...none, expectedCalls: 1 })).toBe(exact);
  });

  it('pays per call otherwise, unless the agent has a channel with that receiver', () => {
    expect(chooseX402Offer([upto, batch, exact], none)).toBe(exact);
    const open = { hasChannel: (offer: X402Offer) => offer === dearBatch };
    expect(chooseX402Offer([exact, batch, dearBatch], open)).toBe(dearBatch);
  });

  it('pays a channel when nothing else is offered, and nothing when nothing is', () => {
    expect(chooseX402Offer([dearBatch, batch], none)).toBe(batch);
    expect(chooseX402Offer([], none)).toBeUndefined();
  });
});
