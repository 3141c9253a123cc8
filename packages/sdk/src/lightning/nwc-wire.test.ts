import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { createPreimage, encodeInvoice } from './bolt11.js';
import {
  readBalance,
  readBudget,
  readInfo,
  readPayResult,
  readReply,
  readTransaction,
  toInvoiceStatus,
  toPaymentStatus,
} from './nwc-wire.js';

const HASH = 'ab'.repeat(32);
const PREIMAGE = 'cd'.repeat(32);
const NOW = 1_900_000_000_000;

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

describe('readReply', () => {
  it('returns the result of a reply to the same method', () => {
    const text = JSON.stringify({
      result_type: 'get_balance',
      error: null,
      result: { balance: 5 },
    });
    expect(readReply('get_balance', text)).toEqual({ balance: 5 });
  });

  it('throws the wallet error as ours, keeping its code in details', () => {
    const text = JSON.stringify({
      result_type: 'pay_invoice',
      error: { code: 'INSUFFICIENT_BALANCE', message: 'broke' },
    });
    const error = (() => {
      try {
        readReply('pay_invoice', text);
      } catch (e) {
        return e;
      }
    })();
    expect(isTollwayError(error, 'insufficient_balance')).toBe(true);
    expect(isTollwayError(error) && error.details).toEqual({
      method: 'pay_invoice',
      walletCode: 'INSUFFICIENT_BALANCE',
    });
  });

  it('refuses a reply to another method, or one without a result', () => {
    const other = JSON.stringify({ result_type: 'get_info', result: {} });
    expect(thrownCode(() => readReply('get_balance', other))).toBe('backend_error');
    const empty = JSON.stringify({ result_type: 'get_balance', result: null });
    expect(thrownCode(() => readReply('get_balance', empty))).toBe('backend_error');
  });

  it('never throws anything but a TollwayError, whatever the wallet sends', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const code = thrownCode(() => readReply('get_balance', text));
        expect(code).not.toBe('not_tollway');
      }),
      { numRuns: 300 },
    );
  });
});

describe('transactions', () => {
  const base = { type: 'incoming', payment_hash: HASH.toUpperCase(), amount: 10_000 };

  it('reads an open invoice, and one pending past its expiry as expired', () => {
    const open = readTransaction('lookup_invoice', {
      ...base,
      state: 'pending',
      expires_at: NOW / 1000 + 60,
    });
    expect(toInvoiceStatus(open, NOW)).toEqual({
      paymentHash: HASH,
      state: 'open',
      amountMsat: 10_000n,
    });
    const stale = readTransaction('lookup_invoice', { ...base, expires_at: NOW / 1000 - 1 });
    expect(toInvoiceStatus(stale, NOW).state).toBe('expired');
  });

  it('reads a settled (overpaid) invoice: amount from its BOLT11, paid amount from the wallet', () => {
    const { preimage, paymentHash } = createPreimage();
    const invoice = encodeInvoice({
      network: 'regtest',
      amountMsat: 10_000n,
      paymentHash,
      description: 'x',
      privateKey: '11'.repeat(32),
    });
    const tx = readTransaction('lookup_invoice', {
      type: 'incoming',
      state: 'settled',
      invoice,
      preimage,
      payment_hash: paymentHash,
      amount: 12_000,
      settled_at: 1_700_000_000,
    });
    expect(toInvoiceStatus(tx, NOW)).toEqual({
      paymentHash,
      state: 'settled',
      amountMsat: 10_000n,
      amountPaidMsat: 12_000n,
      preimage,
      settledAt: 1_700_000_000_000,
    });
  });

  it('reads states of old wallets that send no state, and failed as canceled', () => {
    const settled = readTransaction('lookup_invoice', { ...base, settled_at: 1 });
    expect(toInvoiceStatus(settled, NOW).state).toBe('settled');
    const failed = readTransaction('lookup_invoice', { ...base, state: 'failed' });
    expect(toInvoiceStatus(failed, NOW).state).toBe('canceled');
  });

  it('maps outgoing payments to succeeded, pending and failed', () => {
    const out = { type: 'outgoing', payment_hash: HASH, amount: 5_000, fees_paid: 7 };
    const ok = readTransaction('lookup_invoice', { ...out, state: 'settled', preimage: PREIMAGE });
    expect(toPaymentStatus(ok)).toEqual({
      paymentHash: HASH,
      state: 'succeeded',
      amountMsat: 5_000n,
      preimage: PREIMAGE,
      feeMsat: 7n,
    });
    const pending = readTransaction('lookup_invoice', { ...out, state: 'pending', preimage: '' });
    expect(toPaymentStatus(pending).state).toBe('pending');
    expect(toPaymentStatus(pending).preimage).toBeUndefined();
    const failed = readTransaction('lookup_invoice', { ...out, state: 'failed' });
    expect(toPaymentStatus(failed)).toMatchObject({
      state: 'failed',
      failureReason: expect.any(String),
    });
  });

  it('refuses wrong shapes with backend_error', () => {
    for (const bad of [
      null,
      { ...base, payment_hash: 'xyz' },
      { ...base, amount: -1 },
      { ...base, amount: 1.5 },
      { ...base, type: 'sideways' },
      { ...base, state: 'mystery' },
      { ...base, preimage: 'nothex' },
    ]) {
      expect(thrownCode(() => readTransaction('lookup_invoice', bad))).toBe('backend_error');
    }
  });
});

describe('other results', () => {
  it('reads pay results, with or without a preimage', () => {
    expect(readPayResult({ preimage: PREIMAGE, fees_paid: 3 })).toEqual({
      preimage: PREIMAGE,
      feeMsat: 3n,
    });
    expect(readPayResult({ preimage: '' })).toEqual({ feeMsat: 0n });
    expect(thrownCode(() => readPayResult({ preimage: 42 }))).toBe('backend_error');
  });

  it('reads get_info, defaulting to mainnet and refusing unknown networks', () => {
    const pubkey = `02${'aa'.repeat(32)}`;
    expect(readInfo({ network: 'regtest', pubkey, alias: 'a', methods: ['get_info'] })).toEqual({
      info: { network: 'regtest', pubkey, alias: 'a' },
      methods: ['get_info'],
    });
    expect(readInfo({ pubkey: 'not-a-key' })).toEqual({ info: { network: 'mainnet' } });
    expect(readInfo({ network: 'bitcoin' }).info.network).toBe('mainnet');
    expect(thrownCode(() => readInfo({ network: 'liquid' }))).toBe('unsupported_network');
  });

  it('reads balances and budgets', () => {
    expect(readBalance({ balance: 21_000 })).toEqual({ msat: 21_000n });
    expect(thrownCode(() => readBalance({ balance: '21000' }))).toBe('backend_error');
    expect(readBudget({})).toBeNull();
    expect(
      readBudget({
        used_budget: 1,
        total_budget: 10,
        renews_at: 1_700_000_000,
        renewal_period: 'daily',
      }),
    ).toEqual({
      usedMsat: 1n,
      totalMsat: 10n,
      renewsAt: 1_700_000_000_000,
      renewalPeriod: 'daily',
    });
  });
});
