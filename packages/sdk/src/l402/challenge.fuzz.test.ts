import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import { parseL402Challenges } from './challenge.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const MAC: string = vectors.macaroons[1].base64;
const INVOICE: string = vectors.invoicePreimageTriple.invoice;
const SEEDS = [
  vectors.realChallenge.header,
  `LSAT macaroon="${MAC}", invoice="${INVOICE}", L402 macaroon="${MAC}", invoice="${INVOICE}"`,
  `L402 version="0", token="${MAC}", invoice="${INVOICE}"`,
  `L402 version="0" macaroon="${MAC}",invoice="${INVOICE}", Basic realm="x"`,
  `LSAT macaroon=${vectors.macaroons[1].base64UrlNoPad}, invoice=${INVOICE}`,
  `Payment id="a", realm="r", method="lightning", intent="charge", request="cQ", l402 MACAROON="${MAC}" invoice="lnbc1"`,
];

describe('parseL402Challenges fuzz', () => {
  const count = 100_000;

  it(`survives ${count} random and ${count} mutated inputs with typed errors only`, () => {
    const random = createRandom(0x1402);
    const check = (input: string): void => {
      for (const challenge of parseL402Challenges(input)) {
        if (challenge.macaroon === '' || !/^ln/i.test(challenge.invoice)) {
          expect.fail(`bad challenge from ${JSON.stringify(input)}`);
        }
      }
    };
    fuzz(count, () => randomText(random, 60), check);
    const parsed = fuzz(count, () => mutate(random, SEEDS), check);
    // Many mutants keep one usable challenge, so the success path is exercised too.
    expect(parsed).toBeGreaterThan(count / 10);
  });
});
