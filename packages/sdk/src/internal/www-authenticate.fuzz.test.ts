import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import { parseChallenges, parseCredentials } from './www-authenticate.js';

const SEEDS = [
  'LSAT macaroon="AgEEbHNhdAJCAAAw+/==", invoice="lnbcrt100n1p3qqkyg", L402 macaroon="AgEE", invoice="lnbc1"',
  'L402 version="0", token="AgEE", invoice="lnbc1", Basic realm="x"',
  'Payment id="a,b", realm="Payment id=c", method="lightning", intent="charge", request="cQ" , , Bearer',
  'Digest realm="r", qop="auth, auth-int", nonce=abc, Negotiate abc+/==, Payment ID=x, realm="\\"q\\\\"',
  'L402 a,b:0102, Bearer x, Payment eyJ=',
];

describe('parseChallenges / parseCredentials fuzz', () => {
  const count = 100_000;

  it(`survives ${count} random and ${count} mutated inputs with typed errors only`, () => {
    const random = createRandom(0x5eed1);
    const check = (input: string): void => {
      for (const challenge of parseChallenges(input)) {
        const values = Object.values(challenge.params);
        if (challenge.scheme === '' || values.some((value) => typeof value !== 'string')) {
          expect.fail(`bad challenge from ${JSON.stringify(input)}`);
        }
      }
      parseCredentials(input);
    };
    const parsedRandom = fuzz(count, () => randomText(random, 60), check);
    const parsedMutated = fuzz(count, () => mutate(random, SEEDS), check);
    // Most inputs are within the caps, so most parse.
    expect(parsedRandom).toBeGreaterThan(count / 2);
    expect(parsedMutated).toBeGreaterThan(count / 2);
  });
});
