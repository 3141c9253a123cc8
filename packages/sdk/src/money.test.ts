import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from './errors.js';
import {
  type Amount,
  fixedRate,
  formatAmount,
  formatMsat,
  formatTokenAmount,
  formatUsd,
  MAX_MICRO_USD,
  MAX_MSAT,
  msatToSat,
  msatToUsd,
  parseAmount,
  parseTokenAmount,
  parseUsdPerBtc,
  type Rounding,
  satToMsat,
  type UsdPerBtc,
  usdToMsat,
} from './money.js';

function expectInvalidAmount(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(isTollwayError(error) ? error.code : error).toBe('invalid_amount');
    return;
  }
  throw new Error('expected invalid_amount, got no error');
}

const msat = (value: bigint): Amount => ({ unit: 'msat', msat: value });
const usd = (microUsd: bigint): Amount => ({ unit: 'usd', microUsd });

describe('parseAmount', () => {
  it.each<[string, Amount]>([
    ['10 sat', msat(10_000n)],
    ['10sat', msat(10_000n)],
    ['10 SATS', msat(10_000n)],
    ['1 satoshi', msat(1000n)],
    ['2500 msat', msat(2500n)],
    ['1msats', msat(1n)],
    ['0.5 sat', msat(500n)],
    ['0.001 sat', msat(1n)],
    ['1 btc', msat(100_000_000_000n)],
    ['0.00000000001 BTC', msat(1n)],
    ['21000000 btc', msat(MAX_MSAT)],
    ['2100000000000000 sat', msat(MAX_MSAT)],
    ['0 sat', msat(0n)],
    ['007 sat', msat(7000n)],
    ['  10 sat\n', msat(10_000n)],
    ['$0.01', usd(10_000n)],
    ['$ 3', usd(3_000_000n)],
    ['$0.000001', usd(1n)],
    ['0.01 usd', usd(10_000n)],
    ['1.5 usdc', usd(1_500_000n)],
    ['1.5USDC', usd(1_500_000n)],
    ['1000000000000 usd', usd(MAX_MICRO_USD)],
    ['10', msat(10_000n)],
    [' 0.5 ', msat(500n)],
    ['2100000000000000', msat(MAX_MSAT)],
  ])('%j', (text, expected) => {
    expect(parseAmount(text)).toEqual(expected);
  });

  it.each([
    ['-1 sat'],
    ['+1 sat'],
    ['1e3 sat'],
    ['1E3sat'],
    ['NaN sat'],
    ['Infinity sat'],
    ['0x10 sat'],
    ['1,000 sat'],
    ['1_000 sat'],
    ['.5 sat'],
    ['5. sat'],
    ['1 0 sat'],
    ['0.0001 sat'],
    ['0.5 msat'],
    ['0.0001'],
    ['-10'],
    ['2100000000000000.001'],
    ['0.0001 msat'],
    ['0.000000000001 btc'],
    ['$0.0000001'],
    ['21000000.00000000001 btc'],
    ['2100000000000000.001 sat'],
    ['1000000000000.000001 usd'],
    ['sat'],
    ['$'],
    ['10 eur'],
    ['10 sat sat'],
    ['$10 usd'],
    [''],
    ['１０ sat'],
    [`${'9'.repeat(200)} sat`],
  ])('rejects %j', (text) => {
    expectInvalidAmount(() => parseAmount(text));
  });

  it('rejects non-strings', () => {
    expectInvalidAmount(() => parseAmount(10 as unknown as string));
  });
});

describe('formatMsat / formatUsd', () => {
  it.each([
    [0n, '0 sat'],
    [1n, '1 msat'],
    [999n, '999 msat'],
    [1000n, '1 sat'],
    [1001n, '1.001 sat'],
    [2500n, '2.5 sat'],
    [10_000n, '10 sat'],
    [MAX_MSAT, '2100000000000000 sat'],
  ])('formatMsat(%s) = %j', (value, text) => {
    expect(formatMsat(value)).toBe(text);
  });

  it.each([
    [0n, '$0.00'],
    [1n, '$0.000001'],
    [2000n, '$0.002'],
    [10_000n, '$0.01'],
    [1_500_000n, '$1.50'],
    [1_234_567n, '$1.234567'],
    [MAX_MICRO_USD, '$1000000000000.00'],
  ])('formatUsd(%s) = %j', (value, text) => {
    expect(formatUsd(value)).toBe(text);
  });

  it('refuses values outside the range', () => {
    expectInvalidAmount(() => formatMsat(-1n));
    expectInvalidAmount(() => formatMsat(MAX_MSAT + 1n));
    expectInvalidAmount(() => formatUsd(-1n));
    expectInvalidAmount(() => formatUsd(MAX_MICRO_USD + 1n));
  });

  it('parse(format(x)) = x for every msat and micro-dollar amount', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_MSAT }), (value) => {
        expect(parseAmount(formatMsat(value))).toEqual(msat(value));
        expect(parseAmount(formatAmount(msat(value)))).toEqual(msat(value));
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_MICRO_USD }), (value) => {
        expect(parseAmount(formatUsd(value))).toEqual(usd(value));
        expect(parseAmount(formatAmount(usd(value)))).toEqual(usd(value));
      }),
    );
  });
});

describe('token amounts', () => {
  it.each([
    [1_500_000n, 6, '1.5'],
    [1n, 6, '0.000001'],
    [0n, 6, '0'],
    [42n, 0, '42'],
    [10n ** 18n, 18, '1'],
    [
      2n ** 256n - 1n,
      18,
      '115792089237316195423570985008687907853269984665640564039457.584007913129639935',
    ],
  ])('formatTokenAmount(%s, %s) = %j', (base, decimals, text) => {
    expect(formatTokenAmount(base, decimals)).toBe(text);
    expect(parseTokenAmount(text, decimals)).toBe(base);
  });

  it('rejects malformed input', () => {
    expectInvalidAmount(() => parseTokenAmount('1.0000001', 6));
    expectInvalidAmount(() => parseTokenAmount('-1', 6));
    expectInvalidAmount(() => parseTokenAmount('1e6', 6));
    expectInvalidAmount(() => parseTokenAmount('1', -1));
    expectInvalidAmount(() => parseTokenAmount('1', 1.5));
    expectInvalidAmount(() => parseTokenAmount((2n ** 256n).toString(), 0));
    expectInvalidAmount(() => formatTokenAmount(-1n, 6));
    expectInvalidAmount(() => formatTokenAmount(1n, 256));
  });

  it('round-trips any amount at any decimals', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
        fc.integer({ min: 0, max: 40 }),
        (base, decimals) => {
          expect(parseTokenAmount(formatTokenAmount(base, decimals), decimals)).toBe(base);
        },
      ),
    );
  });
});

describe('sat ↔ msat', () => {
  it('rounds as told, also below zero', () => {
    expect(satToMsat(10n)).toBe(10_000n);
    expect(msatToSat(10_000n, 'floor')).toBe(10n);
    expect(msatToSat(1999n, 'floor')).toBe(1n);
    expect(msatToSat(1001n, 'ceil')).toBe(2n);
    expect(msatToSat(-1n, 'floor')).toBe(-1n);
    expect(msatToSat(-1n, 'ceil')).toBe(0n);
  });

  it('brackets the exact value and inverts satToMsat', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -MAX_MSAT, max: MAX_MSAT }), (value) => {
        const floor = msatToSat(value, 'floor');
        const ceil = msatToSat(value, 'ceil');
        expect(floor * 1000n <= value && value < (floor + 1n) * 1000n).toBe(true);
        expect(ceil * 1000n >= value && value > (ceil - 1n) * 1000n).toBe(true);
        expect(msatToSat(satToMsat(value), 'floor')).toBe(value);
        expect(msatToSat(satToMsat(value), 'ceil')).toBe(value);
      }),
    );
  });
});

describe('rates and USD ↔ msat', () => {
  it('parses exact rates', () => {
    expect(parseUsdPerBtc('65000')).toEqual({ numerator: 65000n, denominator: 1n });
    expect(parseUsdPerBtc(' 64250.75 ')).toEqual({ numerator: 6425075n, denominator: 100n });
    expect(parseUsdPerBtc(65000)).toEqual({ numerator: 65000n, denominator: 1n });
    expect(parseUsdPerBtc(65000n)).toEqual({ numerator: 65000n, denominator: 1n });
    for (const bad of ['0', '0.00', '-1', '1e5', 'abc', '', 65000.5, Number.NaN, -1n]) {
      expectInvalidAmount(() => parseUsdPerBtc(bad));
    }
  });

  it('fixedRate answers its rate', async () => {
    await expect(fixedRate('100000').usdPerBtc()).resolves.toEqual({
      numerator: 100000n,
      denominator: 1n,
    });
    expectInvalidAmount(() => fixedRate(0.1));
  });

  it('converts at 100 000 USD/BTC: 1 sat = $0.001', async () => {
    const rate = await fixedRate('100000').usdPerBtc();
    expect(usdToMsat(1000n, rate, 'floor')).toBe(1000n);
    expect(msatToUsd(1000n, rate, 'floor')).toBe(1000n);
    expect(msatToUsd(1n, rate, 'floor')).toBe(1n);
    expect(usdToMsat(10_000n, await fixedRate('65000').usdPerBtc(), 'ceil')).toBe(15385n);
    expect(usdToMsat(10_000n, await fixedRate('65000').usdPerBtc(), 'floor')).toBe(15384n);
    expectInvalidAmount(() => usdToMsat(1n, { numerator: 0n, denominator: 1n }, 'ceil'));
  });

  const rate = fc
    .tuple(fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.integer({ min: 0, max: 8 }))
    .map(([numerator, scale]): UsdPerBtc => ({ numerator, denominator: 10n ** BigInt(scale) }));
  const rounding = fc.constantFrom<Rounding>('floor', 'ceil');

  it('is exact: the result brackets the true quotient within one unit', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MICRO_USD }),
        fc.bigInt({ min: 0n, max: MAX_MSAT }),
        rate,
        (u, m, r) => {
          // usdToMsat: true value is u * 1e5 * den / num
          const exactMsat = u * 100_000n * r.denominator;
          const down = usdToMsat(u, r, 'floor');
          const up = usdToMsat(u, r, 'ceil');
          expect(down * r.numerator <= exactMsat && exactMsat < (down + 1n) * r.numerator).toBe(
            true,
          );
          expect(up - down === (exactMsat % r.numerator === 0n ? 0n : 1n)).toBe(true);
          // msatToUsd: true value is m * num / (den * 1e5)
          const exactUsd = m * r.numerator;
          const scale = r.denominator * 100_000n;
          const usdDown = msatToUsd(m, r, 'floor');
          expect(usdDown * scale <= exactUsd && exactUsd < (usdDown + 1n) * scale).toBe(true);
          expect(msatToUsd(m, r, 'ceil') - usdDown === (exactUsd % scale === 0n ? 0n : 1n)).toBe(
            true,
          );
        },
      ),
    );
  });

  it('is monotonic, and a round trip never gains or loses more than rounding allows', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MICRO_USD }),
        fc.bigInt({ min: 0n, max: MAX_MICRO_USD }),
        rate,
        rounding,
        (a, b, r, how) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          expect(usdToMsat(low, r, how) <= usdToMsat(high, r, how)).toBe(true);
          expect(msatToUsd(low, r, how) <= msatToUsd(high, r, how)).toBe(true);
          expect(msatToUsd(usdToMsat(a, r, 'ceil'), r, 'ceil') >= a).toBe(true);
          expect(msatToUsd(usdToMsat(a, r, 'floor'), r, 'floor') <= a).toBe(true);
        },
      ),
    );
  });
});
