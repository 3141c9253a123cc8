import { describe, expect, it } from 'vitest';
import { createPreimage } from './bolt11.js';
import { preimageMatches } from './preimage.js';

describe('preimageMatches', () => {
  it('is true only for the preimage of the payment hash, given as 32 bytes of hex', () => {
    const { preimage, paymentHash } = createPreimage();
    expect(preimageMatches(preimage, paymentHash)).toBe(true);
    expect(preimageMatches(preimage.toUpperCase(), paymentHash)).toBe(true);
    expect(preimageMatches(createPreimage().preimage, paymentHash)).toBe(false);
    expect(preimageMatches(paymentHash, paymentHash)).toBe(false);
    expect(preimageMatches(preimage.slice(2), paymentHash)).toBe(false);
    expect(preimageMatches(`${preimage.slice(2)}zz`, paymentHash)).toBe(false);
    expect(preimageMatches(preimage, 'not hex')).toBe(false);
  });
});
