/**
 * Money as integers. Lightning amounts are `bigint` millisatoshis; dollar amounts are `bigint`
 * micro-dollars (one USDC base unit each, USDC having 6 decimals); other tokens are `bigint` base
 * units with their own decimals. Nothing here multiplies money by a floating-point number: text is
 * parsed digit by digit, and exchange rates are exact fractions.
 */
import { TollwayError } from './errors.js';

/** 21 million BTC in millisatoshis: no amount of bitcoin can be larger. */
export const MAX_MSAT = 2_100_000_000_000_000_000n;

/** The largest dollar amount accepted: one trillion dollars, in micro-dollars. */
export const MAX_MICRO_USD = 1_000_000_000_000_000_000n;

/** A Lightning amount. */
export interface MsatAmount {
  unit: 'msat';
  /** Millisatoshis, 0 to {@link MAX_MSAT}. */
  msat: bigint;
}

/** A dollar amount (USD, or USDC, which counts one token per dollar). */
export interface UsdAmount {
  unit: 'usd';
  /** Micro-dollars (= USDC base units), 0 to {@link MAX_MICRO_USD}. */
  microUsd: bigint;
}

/** An amount of money as prices, budgets and ledgers hold it; `unit` tells which field is set. */
export type Amount = MsatAmount | UsdAmount;

/** Which way a conversion that cannot be exact goes. */
export type Rounding = 'floor' | 'ceil';

const MSAT_PER_SAT = 1000n;
const MAX_UINT256 = 2n ** 256n - 1n;
const MAX_TEXT_LENGTH = 100;
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Unit words of {@link parseAmount}, lower case, with the decimals each allows. They are exactly
 * the decimals that turn the unit into its base unit (1 sat = 10^3 msat, 1 BTC = 10^11 msat,
 * 1 USD = 10^6 micro-dollars), so parsing at that precision gives base units directly.
 */
const UNITS: Record<string, { unit: Amount['unit']; decimals: number }> = {
  msat: { unit: 'msat', decimals: 0 },
  msats: { unit: 'msat', decimals: 0 },
  sat: { unit: 'msat', decimals: 3 },
  sats: { unit: 'msat', decimals: 3 },
  satoshi: { unit: 'msat', decimals: 3 },
  satoshis: { unit: 'msat', decimals: 3 },
  btc: { unit: 'msat', decimals: 11 },
  usd: { unit: 'usd', decimals: 6 },
  usdc: { unit: 'usd', decimals: 6 },
};

function invalidAmount(message: string): TollwayError {
  return new TollwayError('invalid_amount', message);
}

/**
 * Parses a non-negative decimal (`12`, `0.5`; no sign, exponent or separators) into base units
 * with at most `decimals` digits after the point.
 */
function parseDecimal(text: string, decimals: number): bigint {
  const match = text.length <= MAX_TEXT_LENGTH ? DECIMAL.exec(text) : null;
  if (match === null) throw invalidAmount(`not a plain decimal number: "${text.slice(0, 40)}"`);
  const [, whole = '', fraction = ''] = match;
  if (fraction.length > decimals) {
    throw invalidAmount(`too many decimals: at most ${decimals} allowed here`);
  }
  return BigInt(whole + fraction.padEnd(decimals, '0'));
}

/** Writes base units as a decimal with trailing zeros trimmed, keeping at least `minDecimals`. */
function formatDecimal(base: bigint, decimals: number, minDecimals = 0): string {
  const digits = base.toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  let fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  fraction = fraction.padEnd(Math.min(minDecimals, decimals), '0');
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

/**
 * Parses a human amount: the one amount grammar of Tollway, for prices, budgets, config files and
 * command-line flags alike (docs/reference/amounts.md). Units (any case): `msat`,
 * `sat`/`sats`/`satoshi(s)`, `btc` give an {@link MsatAmount}; `usd`, `usdc` and a leading `$`
 * give a {@link UsdAmount}; a number without a unit is sats. The space before the unit is
 * optional. Throws `invalid_amount` for a negative or malformed number, an exponent, more decimals
 * than the unit holds (`0.0001 sat`), an unknown unit, or more than 21 million BTC (or a trillion
 * dollars).
 *
 * @example
 * ```ts
 * parseAmount('10 sat');   // { unit: 'msat', msat: 10000n }
 * parseAmount('10');       // { unit: 'msat', msat: 10000n }
 * parseAmount('$0.01');    // { unit: 'usd', microUsd: 10000n }
 * parseAmount('1.5 usdc'); // { unit: 'usd', microUsd: 1500000n }
 * ```
 */
export function parseAmount(text: string): Amount {
  if (typeof text !== 'string' || text.length > MAX_TEXT_LENGTH) {
    throw invalidAmount('an amount must be a short string such as "10 sat"');
  }
  const trimmed = text.trim();
  const dollars = /^\$\s*(\S+)$/.exec(trimmed);
  const withUnit = /^(\S+?)\s*([a-z]+)$/i.exec(trimmed);
  const bare = DECIMAL.test(trimmed) ? trimmed : undefined;
  const number = dollars?.[1] ?? withUnit?.[1] ?? bare;
  const unit = dollars !== null ? 'usd' : bare !== undefined ? 'sat' : withUnit?.[2]?.toLowerCase();
  const spec = UNITS[unit ?? ''];
  if (number === undefined || spec === undefined) {
    throw invalidAmount(`not an amount with a known unit: "${trimmed.slice(0, 40)}"`);
  }
  const base = parseDecimal(number, spec.decimals);
  if (spec.unit === 'usd') {
    if (base > MAX_MICRO_USD) throw invalidAmount('amount is larger than a trillion dollars');
    return { unit: 'usd', microUsd: base };
  }
  if (base > MAX_MSAT) throw invalidAmount('amount is larger than 21 million BTC');
  return { unit: 'msat', msat: base };
}

/**
 * Writes millisatoshis for people, in a form {@link parseAmount} reads back exactly: whole or
 * fractional satoshis (`'10 sat'`, `'2.5 sat'`, `'1.001 sat'`), and below one satoshi,
 * millisatoshis (`'1 msat'`). Zero is `'0 sat'`. No thousands separators. Throws
 * `invalid_amount` outside 0 to 21 million BTC.
 */
export function formatMsat(msat: bigint): string {
  assertInRange(msat, MAX_MSAT);
  if (msat > 0n && msat < MSAT_PER_SAT) return `${msat} msat`;
  return `${formatDecimal(msat, 3)} sat`;
}

/**
 * Writes micro-dollars as dollars with two decimals, or more when needed (up to six):
 * `'$0.01'`, `'$1.50'`, `'$0.002'`. {@link parseAmount} reads it back exactly. Throws
 * `invalid_amount` outside 0 to a trillion dollars.
 */
export function formatUsd(microUsd: bigint): string {
  assertInRange(microUsd, MAX_MICRO_USD);
  return `$${formatDecimal(microUsd, 6, 2)}`;
}

/** Writes an {@link Amount} with {@link formatMsat} or {@link formatUsd}. */
export function formatAmount(amount: Amount): string {
  return amount.unit === 'msat' ? formatMsat(amount.msat) : formatUsd(amount.microUsd);
}

function assertInRange(value: bigint, max: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > max) {
    throw invalidAmount(`amount must be a bigint from 0 to ${max}`);
  }
}

/** Satoshis to millisatoshis (exact). */
export function satToMsat(sat: bigint): bigint {
  return sat * MSAT_PER_SAT;
}

/** Millisatoshis to satoshis, rounding down or up as told. */
export function msatToSat(msat: bigint, rounding: Rounding): bigint {
  return divide(msat, MSAT_PER_SAT, rounding);
}

/**
 * Writes token base units as a plain decimal: `formatTokenAmount(1500000n, 6)` is `'1.5'`.
 * Throws `invalid_amount` for a negative amount or `decimals` outside 0–255.
 */
export function formatTokenAmount(base: bigint, decimals: number): string {
  assertDecimals(decimals);
  assertInRange(base, MAX_UINT256);
  return formatDecimal(base, decimals);
}

/**
 * Reads a plain decimal into token base units: `parseTokenAmount('1.5', 6)` is `1500000n`.
 * Throws `invalid_amount` for signs, exponents, separators, more than `decimals` decimals, or
 * a value beyond 2^256 − 1 base units.
 */
export function parseTokenAmount(text: string, decimals: number): bigint {
  assertDecimals(decimals);
  if (typeof text !== 'string') throw invalidAmount('a token amount must be a string');
  const base = parseDecimal(text.trim(), decimals);
  if (base > MAX_UINT256) throw invalidAmount('token amount is larger than 2^256 - 1 base units');
  return base;
}

function assertDecimals(decimals: number): void {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 255) {
    throw invalidAmount('decimals must be an integer from 0 to 255');
  }
}

/** An exchange rate as an exact fraction: `numerator / denominator` US dollars per bitcoin. */
export interface UsdPerBtc {
  numerator: bigint;
  /** Always positive. */
  denominator: bigint;
}

/** Where USD↔BTC rates come from; the operator configures one (a fixed rate is a valid source). */
export interface RateSource {
  /** The current rate. */
  usdPerBtc(): Promise<UsdPerBtc>;
}

/**
 * Reads a positive decimal rate (`'65000'`, `'64250.75'`) as an exact fraction. Safe-integer
 * numbers and bigints are accepted too; other numbers are not, as floats are not exact.
 * Throws `invalid_amount`.
 */
export function parseUsdPerBtc(rate: string | bigint | number): UsdPerBtc {
  if (typeof rate === 'number' && !Number.isSafeInteger(rate)) {
    throw invalidAmount('give a fractional rate as a decimal string, not a float');
  }
  const text = typeof rate === 'string' ? rate.trim() : String(rate);
  const fraction = DECIMAL.exec(text)?.[2] ?? '';
  const numerator = parseDecimal(text, fraction.length);
  if (numerator === 0n) throw invalidAmount('a rate must be positive');
  return { numerator, denominator: 10n ** BigInt(fraction.length) };
}

/**
 * A {@link RateSource} that always answers the same exact rate.
 *
 * @example
 * ```ts
 * const rate = await fixedRate('65000').usdPerBtc();
 * usdToMsat(10_000n, rate, 'ceil'); // $0.01 → 15385n msat
 * ```
 */
export function fixedRate(usdPerBtc: string | bigint | number): RateSource {
  const rate = parseUsdPerBtc(usdPerBtc);
  return { usdPerBtc: () => Promise.resolve(rate) };
}

/**
 * Micro-dollars to millisatoshis at `rate`, exactly, then rounded as told (a price converted for
 * payment usually rounds up: `'ceil'`).
 */
export function usdToMsat(microUsd: bigint, rate: UsdPerBtc, rounding: Rounding): bigint {
  assertRate(rate);
  // msat = microUsd / 1e6 USD / (numerator / denominator) USD per BTC * 1e11 msat per BTC
  return divide(microUsd * 100_000n * rate.denominator, rate.numerator, rounding);
}

/** Millisatoshis to micro-dollars at `rate`, exactly, then rounded as told. */
export function msatToUsd(msat: bigint, rate: UsdPerBtc, rounding: Rounding): bigint {
  assertRate(rate);
  // microUsd = msat / 1e11 BTC * (numerator / denominator) USD per BTC * 1e6
  return divide(msat * rate.numerator, rate.denominator * 100_000n, rounding);
}

function assertRate(rate: UsdPerBtc): void {
  if (rate.numerator <= 0n || rate.denominator <= 0n) {
    throw invalidAmount('a rate must be a positive fraction');
  }
}

/** `a / b` for `b > 0`, rounded toward minus or plus infinity (bigint division truncates). */
function divide(a: bigint, b: bigint, rounding: Rounding): bigint {
  const quotient = a / b;
  const remainder = a % b;
  if (remainder === 0n) return quotient;
  if (rounding === 'floor') return a < 0n ? quotient - 1n : quotient;
  return a < 0n ? quotient : quotient + 1n;
}
