import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import { parseL402Credential } from './credential.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const V2 = vectors.macaroons[1];
const PREIMAGE: string = V2.preimageHex;
const PAID_HEX = Buffer.from(V2.paidMacaroonWithPreimageCaveat.base64, 'base64').toString('hex');
const SEEDS = [
  V2.authorizationHeader,
  `LSAT ${V2.base64UrlNoPad}:${PREIMAGE.toUpperCase()}, L402 ${V2.base64}:${PREIMAGE}`,
  `L402 ${V2.base64},${vectors.macaroons[0].base64}:${PREIMAGE}, Bearer x`,
  `Basic dXNlcg==, lsat ${V2.paidMacaroonWithPreimageCaveat.base64}:${PREIMAGE}`,
];

describe('parseL402Credential fuzz', () => {
  const count = 100_000;

  it(`survives ${count} random and ${count} mutated inputs with typed errors or undefined only`, () => {
    const random = createRandom(0xc0de);
    const check = (input: string): void => {
      const credential = parseL402Credential(input);
      if (credential !== undefined && credential.preimage.length !== 32) {
        expect.fail(`bad credential from ${JSON.stringify(input)}`);
      }
    };
    fuzz(count, () => randomText(random, 60), check);
    const parsed = fuzz(count, () => mutate(random, SEEDS), check);
    // Some mutants stay valid (an edit in the preimage case, a stray comma), so success is exercised.
    expect(parsed).toBeGreaterThan(count / 100);
  });

  it(`survives ${count / 10} mutated Macaroon / Grpc-Metadata-Macaroon headers`, () => {
    const random = createRandom(0xbeef);
    const parsed = fuzz(
      count / 10,
      () => mutate(random, [PAID_HEX, `${PAID_HEX}, ${PAID_HEX}`]),
      (input) =>
        parseL402Credential(undefined, { macaroonHeader: input, grpcMetadataMacaroon: PAID_HEX }),
    );
    expect(parsed).toBeGreaterThan(0);
  });
});
