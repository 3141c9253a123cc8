import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createStreamReceiptReader, parseStreamReceipt, readReceipt } from './receipts.js';

const headers = (entries: Record<string, string>) => new Headers(entries);

describe('readReceipt', () => {
  it('reads what an answer was charged, what is left and what a metered answer holds', () => {
    expect(
      readReceipt(headers({ 'Tollway-Charged': '2100 msat', 'Tollway-Remaining': '47900 msat' })),
    ).toEqual({
      charged: { amount: 2100n, unit: 'msat' },
      remaining: { amount: 47_900n, unit: 'msat' },
    });
    expect(
      readReceipt(headers({ 'Tollway-Charged': '1 uses', 'Tollway-Remaining': '4 uses' })),
    ).toEqual({ charged: { amount: 1n, unit: 'uses' }, remaining: { amount: 4n, unit: 'uses' } });
    expect(readReceipt(headers({ 'Tollway-Charged': '0' }))).toEqual({
      charged: { amount: 0n, unit: '' },
    });
    expect(
      readReceipt(headers({ 'Tollway-Charged': '10000 eip155:8453/erc20:0xabc' }))?.charged,
    ).toEqual({ amount: 10_000n, unit: 'eip155:8453/erc20:0xabc' });
    // A payment that bought a balance: its purchase, then this call's draw on it.
    expect(
      readReceipt(headers({ 'Tollway-Charged': '50000 eip155:31337/erc20:0xabc, 360 msat' })),
    ).toEqual({ charged: { amount: 360n, unit: 'msat' } });
    expect(readReceipt(headers({ 'Tollway-Charged': '1 msat, 2 msat, 3 msat' }))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Reserved': '8192000 msat' }))).toEqual({
      reservedMsat: 8_192_000n,
    });
  });

  it('finds no receipt where there is none, and ignores malformed values', () => {
    expect(readReceipt(headers({}))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Remaining': '4 uses' }))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Charged': '-5 msat' }))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Charged': '12' }))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Charged': '007 msat' }))).toBeUndefined();
    expect(readReceipt(headers({ 'Tollway-Charged': `${'1'.repeat(40)} msat` }))).toBeUndefined();
  });
});

describe('stream receipts', () => {
  const RECEIPT = ': tollway-charged 2100 msat\n: tollway-remaining 47900 msat';
  const stream = [
    'data: {"choices":[{"delta":{"content":"Hi"}}]}',
    '',
    ': keep-alive',
    '',
    'data: [DONE]',
    '',
    RECEIPT,
    '',
    '',
  ].join('\n');

  it('parses the receipt comment lines, and nothing else', () => {
    expect(parseStreamReceipt(': tollway-charged 2100 msat')).toEqual({
      charged: { amount: 2100n, unit: 'msat' },
    });
    expect(parseStreamReceipt(': tollway-remaining 47900 msat')).toEqual({
      remaining: { amount: 47_900n, unit: 'msat' },
    });
    expect(parseStreamReceipt(':tollway-charged 0')).toEqual({ charged: { amount: 0n, unit: '' } });
    expect(parseStreamReceipt(': tollway-reserved 8000 msat')).toEqual({ reservedMsat: 8000n });
    expect(parseStreamReceipt('data: tollway-charged 1 msat')).toBeUndefined();
    expect(parseStreamReceipt(': tollway-charged 1')).toBeUndefined();
    expect(parseStreamReceipt(': tollway-charged -1 msat')).toBeUndefined();
    expect(parseStreamReceipt(': keep-alive')).toBeUndefined();
  });

  it('finds the receipt however the stream is cut into chunks, and only at a line start', () => {
    const bytes = new TextEncoder().encode(stream);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 })), (cuts) => {
        const reader = createStreamReceiptReader();
        let from = 0;
        for (const cut of [...cuts.sort((a, b) => a - b), bytes.length]) {
          reader.write(bytes.subarray(from, cut));
          from = cut;
        }
        expect(reader.receipt()?.charged).toEqual({ amount: 2100n, unit: 'msat' });
      }),
    );
    const inData = createStreamReceiptReader();
    inData.write(new TextEncoder().encode('data: x : tollway-charged 5 msat\n\n'));
    expect(inData.receipt()).toBeUndefined();
    const crlf = createStreamReceiptReader();
    crlf.write(new TextEncoder().encode(`data: x\r\n\r\n${RECEIPT}\r\n\r\n`));
    expect(crlf.receipt()?.remaining).toEqual({ amount: 47_900n, unit: 'msat' });
  });

  it('takes no receipt from a line the stream cut short, nor from an overlong one', () => {
    const cut = createStreamReceiptReader();
    cut.write(new TextEncoder().encode('data: x\n\n: tollway-charged 2100 msat'));
    expect(cut.receipt()).toBeUndefined();
    const long = createStreamReceiptReader();
    long.write(new TextEncoder().encode(`: tollway-charged 2100 msat${' '.repeat(10_000)}x\n`));
    expect(long.receipt()).toBeUndefined();
  });
});
