import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import { verifyPaymentCredential } from './charge.js';
import { parsePaymentCredential } from './credential.js';
import { parsePaymentReceipt } from './receipt.js';

// Seeds: the Aperture MPP vectors (MIT), test/fixtures/mpp-vectors.json.
const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
);
const CREDENTIALS: string[] = vectors.credentials.map((v: { header: string }) => v.header);
const RECEIPTS: string[] = vectors.receipts.map((v: { header: string }) => v.header);
const secret = new Uint8Array(32);

describe('parsePaymentCredential fuzz', () => {
  const count = 100_000;

  it(`survives ${count} random and ${count} mutated inputs; verify never throws on what parses`, () => {
    const random = createRandom(0x9a7);
    const check = (input: string): void => {
      const credential = parsePaymentCredential(input);
      if (credential === undefined) return;
      const result = verifyPaymentCredential(credential, { secret });
      if (result.ok) expect.fail(`verified a forged credential ${JSON.stringify(input)}`);
    };
    fuzz(count, () => randomText(random, 60), check);
    const parsed = fuzz(count, () => mutate(random, CREDENTIALS), check);
    expect(parsed).toBeGreaterThan(count / 10);
  });

  it(`parsePaymentReceipt survives ${count / 10} mutated receipts`, () => {
    const random = createRandom(0x7ec);
    const parsed = fuzz(count / 10, () => mutate(random, RECEIPTS), parsePaymentReceipt);
    expect(parsed).toBeGreaterThan(0);
  });
});
