import { describe, expect, it } from 'vitest';
import { TollwayError } from '../errors.js';
import { fixedRate, MAX_MSAT, type RateSource } from '../money.js';
import { type PriceRequest, parsePrice, priceToMsat, quotePrice } from './pricing.js';

const request = async (): Promise<PriceRequest> => ({
  method: 'POST',
  path: '/v1/chat',
  query: new URLSearchParams('tier=pro'),
  headers: new Headers(),
  body: { model: 'large' },
});

const codeOf = async (run: () => Promise<unknown>) =>
  run().then(
    () => 'ok',
    (error: unknown) => (error instanceof TollwayError ? error.code : 'other'),
  );

describe('parsePrice', () => {
  it('reads amount text and msat bigints', () => {
    expect(parsePrice('10 sat')).toEqual({ unit: 'msat', msat: 10_000n });
    expect(parsePrice('2500 msat')).toEqual({ unit: 'msat', msat: 2500n });
    expect(parsePrice('$0.002')).toEqual({ unit: 'usd', microUsd: 2000n });
    expect(parsePrice('10')).toEqual({ unit: 'msat', msat: 10_000n }); // a bare number is sats
    expect(parsePrice(7n)).toEqual({ unit: 'msat', msat: 7n });
    expect(parsePrice(MAX_MSAT)).toEqual({ unit: 'msat', msat: MAX_MSAT });
  });

  it('refuses anything else with invalid_price', () => {
    for (const input of ['10 eur', '1.0001 sat', '-1 sat', -1n, MAX_MSAT + 1n, 10n ** 30n]) {
      expect(() => parsePrice(input)).toThrowError(
        expect.objectContaining({ code: 'invalid_price' }),
      );
    }
  });
});

describe('priceToMsat', () => {
  it('converts dollars at the rate, rounded up to a whole sat', async () => {
    const rates = fixedRate('65000');
    // $0.01 at $65 000/BTC is 15.38… sat.
    expect(await priceToMsat({ unit: 'usd', microUsd: 10_000n }, rates)).toBe(16_000n);
    expect(await priceToMsat({ unit: 'msat', msat: 1n }, undefined)).toBe(1n);
  });

  it('fails with invalid_price without rates and price_unavailable when they fail', async () => {
    const usd = { unit: 'usd', microUsd: 1n } as const;
    expect(await codeOf(() => priceToMsat(usd, undefined))).toBe('invalid_price');
    const broken: RateSource = { usdPerBtc: () => Promise.reject(new Error('offline')) };
    expect(await codeOf(() => priceToMsat(usd, broken))).toBe('price_unavailable');
  });
});

describe('quotePrice', () => {
  it('runs the price function on the request', async () => {
    const quote = await quotePrice(
      ({ body, query }) =>
        (body as { model: string }).model === 'large' && query.get('tier') === 'pro'
          ? '50 sat'
          : '1 sat',
      request,
      undefined,
    );
    expect(quote).toEqual({ msat: 50_000n, amount: { unit: 'msat', msat: 50_000n } });
  });

  it('passes invalid_* errors through and turns the rest into price_unavailable', async () => {
    const invalid = () => {
      throw new TollwayError('invalid_json', 'no model');
    };
    expect(await codeOf(() => quotePrice(invalid, request, undefined))).toBe('invalid_json');
    const broken = () => Promise.reject(new Error('database down'));
    expect(await codeOf(() => quotePrice(broken, request, undefined))).toBe('price_unavailable');
    expect(await codeOf(() => quotePrice(() => 'lots', request, undefined))).toBe(
      'price_unavailable',
    );
    expect(await codeOf(() => quotePrice(() => '$1', request, undefined))).toBe(
      'price_unavailable',
    );
  });
});
