import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayError } from '../errors.js';
import {
  formatPaymentChallenge,
  type PaymentChallenge,
  parsePaymentChallenges,
} from './challenge.js';

// The Aperture challengeHeaders and challengeLists vectors are replayed in test/mpp-vectors.test.ts.
const challenge: PaymentChallenge = {
  id: 'abc',
  realm: 'api.example.com',
  method: 'lightning',
  intent: 'charge',
  request: 'eyJhIjoxfQ',
};

function thrown(run: () => unknown): TollwayError {
  try {
    run();
  } catch (error) {
    if (isTollwayError(error)) return error;
    throw error;
  }
  throw new Error('expected a TollwayError');
}

describe('formatPaymentChallenge', () => {
  it('writes the parameters in order and leaves out empty optional ones', () => {
    expect(
      formatPaymentChallenge({
        ...challenge,
        opaque: 'o',
        description: '',
        digest: 'd',
        expires: 'e',
      }),
    ).toBe(
      'Payment id="abc", realm="api.example.com", method="lightning", intent="charge", request="eyJhIjoxfQ", expires="e", digest="d", opaque="o"',
    );
  });

  it('refuses a description that a header cannot carry', () => {
    expect(thrown(() => formatPaymentChallenge({ ...challenge, description: 'a\r\nb' })).code).toBe(
      'invalid_challenge',
    );
    expect(thrown(() => formatPaymentChallenge({ ...challenge, description: '天気' })).code).toBe(
      'invalid_challenge',
    );
  });

  const text = fc.string({
    unit: fc.oneof(
      fc.constantFrom('"', '\\', ',', '=', ' ', '\t', 'é', 'Payment id="x"'),
      fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    ),
    minLength: 1,
    maxLength: 30,
  });
  const challenges = fc.record(
    {
      id: text,
      realm: text,
      method: text,
      intent: text,
      request: text,
      expires: text,
      digest: text,
      description: text,
      opaque: text,
    },
    { requiredKeys: ['id', 'realm', 'method', 'intent', 'request'] },
  );

  it('round-trips through parsePaymentChallenges, one or several (property)', () => {
    fc.assert(
      fc.property(fc.array(challenges, { minLength: 1, maxLength: 3 }), (list) => {
        const header = list.map(formatPaymentChallenge).join(', ');
        expect(parsePaymentChallenges(header)).toEqual(list);
      }),
    );
  });
});

describe('parsePaymentChallenges', () => {
  it('reads lines and comma-joined values alike, ignoring unknown parameters and other schemes', () => {
    const line = `${formatPaymentChallenge(challenge)}, unknown="u"`;
    expect(parsePaymentChallenges([`L402 macaroon="m", invoice="i"`, line])).toEqual([challenge]);
    expect(parsePaymentChallenges(`Basic realm="r", ${line}, Bearer`)).toEqual([challenge]);
  });

  it('treats an empty optional parameter as absent', () => {
    expect(
      parsePaymentChallenges(`${formatPaymentChallenge(challenge)}, expires="", opaque=`),
    ).toEqual([challenge]);
  });

  it('skips challenges with an empty or missing required parameter, and says why when none is left', () => {
    const error = thrown(() =>
      parsePaymentChallenges([
        'Payment id="", realm="r", method="m", intent="i", request="q"',
        'Payment realm="r"',
      ]),
    );
    expect(error.code).toBe('invalid_challenge');
    expect(error.details?.skipped).toEqual(['missing id', 'missing id, method, intent, request']);
    expect(thrown(() => parsePaymentChallenges('Basic realm="x"')).message).toBe(
      'no Payment challenge',
    );
    expect(thrown(() => parsePaymentChallenges('')).code).toBe('invalid_challenge');
  });
});
