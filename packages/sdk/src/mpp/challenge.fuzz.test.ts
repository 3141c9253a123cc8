import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import { parsePaymentChallenges } from './challenge.js';

// Seeds: the Aperture MPP vectors (MIT), test/fixtures/mpp-vectors.json.
const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
);
const SEEDS: string[] = [
  ...vectors.challengeHeaders.map((v: { header: string }) => v.header),
  ...vectors.challengeLists.map((v: { header: string }) => v.header),
];

describe('parsePaymentChallenges fuzz', () => {
  const count = 100_000;

  it(`survives ${count} random and ${count} mutated inputs with typed errors only`, () => {
    const random = createRandom(0x402);
    const check = (input: string): void => {
      for (const challenge of parsePaymentChallenges(input)) {
        if (
          !challenge.id ||
          !challenge.realm ||
          !challenge.method ||
          !challenge.intent ||
          !challenge.request
        ) {
          expect.fail(`incomplete challenge from ${JSON.stringify(input)}`);
        }
      }
    };
    fuzz(count, () => randomText(random, 60), check);
    const parsed = fuzz(count, () => mutate(random, SEEDS), check);
    expect(parsed).toBeGreaterThan(count / 10);
  });
});
