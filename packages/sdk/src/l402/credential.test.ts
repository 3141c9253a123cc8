import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { formatL402Credential, parseL402Credential } from './credential.js';
import { addFirstPartyCaveat, createMacaroon, encodeMacaroon, parseMacaroon } from './macaroon.js';

// Test vectors: test/fixtures/l402-vectors.json (V2 full credential and its lnget-style paid macaroon).
const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const V2 = vectors.macaroons[1];
const MAC: string = V2.base64;
const PREIMAGE: string = V2.preimageHex;
const PAID: string = V2.paidMacaroonWithPreimageCaveat.base64;
const PAID_HEX = Buffer.from(PAID, 'base64').toString('hex');
const OTHER: string = vectors.macaroons[0].base64;
const preimageBytes = new Uint8Array(Buffer.from(PREIMAGE, 'hex'));

function code(run: () => unknown): string {
  try {
    return run() === undefined ? 'none' : 'ok';
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('formatL402Credential', () => {
  it('writes the vector Authorization header byte for byte', () => {
    expect(formatL402Credential({ macaroons: [parseMacaroon(MAC)], preimage: preimageBytes })).toBe(
      V2.authorizationHeader,
    );
  });

  it('writes LSAT and discharge macaroons on request', () => {
    const header = formatL402Credential({
      scheme: 'LSAT',
      macaroons: [parseMacaroon(MAC), parseMacaroon(OTHER)],
      preimage: preimageBytes,
    });
    expect(header).toBe(`LSAT ${MAC},${OTHER}:${PREIMAGE}`);
  });

  it('refuses a preimage that is not 32 bytes and an empty macaroon list', () => {
    const macaroons = [parseMacaroon(MAC)];
    expect(code(() => formatL402Credential({ macaroons, preimage: new Uint8Array(31) }))).toBe(
      'invalid_preimage',
    );
    expect(code(() => formatL402Credential({ macaroons: [], preimage: preimageBytes }))).toBe(
      'invalid_credential',
    );
  });

  const macaroon = fc
    .record({
      rootKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      identifier: fc.uint8Array({ maxLength: 80 }),
      location: fc.string({ maxLength: 10 }),
      caveats: fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }),
    })
    .map((params) => createMacaroon(params));

  it('round-trips through parseL402Credential (property)', () => {
    fc.assert(
      fc.property(
        fc.array(macaroon, { minLength: 1, maxLength: 3 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.constantFrom('L402', 'LSAT') as fc.Arbitrary<'L402' | 'LSAT'>,
        (macaroons, preimage, scheme) => {
          const header = formatL402Credential({ scheme, macaroons, preimage });
          const parsed = parseL402Credential(header);
          expect(parsed?.scheme).toBe(scheme);
          expect(parsed?.preimage).toEqual(preimage);
          expect(parsed?.macaroons.map(encodeMacaroon)).toEqual(macaroons.map(encodeMacaroon));
        },
      ),
    );
  });
});

describe('parseL402Credential: Authorization', () => {
  it('reads the vector header', () => {
    const credential = parseL402Credential(V2.authorizationHeader);
    expect(credential?.scheme).toBe('L402');
    expect(credential?.macaroons).toEqual([parseMacaroon(MAC)]);
    expect(credential?.preimage).toEqual(preimageBytes);
  });

  it('accepts LSAT, any scheme case, upper-case hex and URL-safe or unpadded base64', () => {
    const expected = { scheme: 'LSAT', macaroons: [parseMacaroon(MAC)], preimage: preimageBytes };
    expect(parseL402Credential(`LSAT ${MAC}:${PREIMAGE}`)).toEqual(expected);
    expect(parseL402Credential(`lsat ${MAC}:${PREIMAGE.toUpperCase()}`)).toEqual(expected);
    expect(parseL402Credential(`LsAt ${V2.base64UrlNoPad}:${PREIMAGE}`)).toEqual(expected);
    expect(parseL402Credential(`LSAT ${MAC.replace(/=+$/, '')}:${PREIMAGE}`)).toEqual(expected);
    expect(parseL402Credential(`l402   ${MAC}:${PREIMAGE}`)?.scheme).toBe('L402');
  });

  it('keeps client-appended caveats (the lnget paid macaroon)', () => {
    const credential = parseL402Credential(`L402 ${PAID}:${PREIMAGE}`);
    expect(credential?.macaroons[0]?.caveats).toHaveLength(4);
  });

  it('reads discharge macaroons after the token, skipping empty list elements', () => {
    const both = [parseMacaroon(MAC), parseMacaroon(OTHER)];
    expect(parseL402Credential(`L402 ${MAC}, ${OTHER}:${PREIMAGE}`)?.macaroons).toEqual(both);
    expect(parseL402Credential(`L402 ${MAC},,${OTHER}:${PREIMAGE}`)?.macaroons).toEqual(both);
  });

  it('returns undefined when there is no L402 credential', () => {
    expect(parseL402Credential(undefined)).toBeUndefined();
    expect(parseL402Credential([])).toBeUndefined();
    expect(parseL402Credential('')).toBeUndefined();
    expect(parseL402Credential('Bearer x')).toBeUndefined();
    expect(parseL402Credential(['Basic dXNlcjpwYXNz', 'Payment eyJ9'])).toBeUndefined();
    expect(parseL402Credential('L402x abc:def')).toBeUndefined();
  });

  it('finds the L402 credential among others', () => {
    expect(
      parseL402Credential(`Bearer x, L402 ${MAC}:${PREIMAGE}, Payment eyJ9`)?.preimage,
    ).toEqual(preimageBytes);
  });

  it('rejects malformed credentials with typed errors', () => {
    const cases: [string, string][] = [
      ['L402', 'invalid_credential'],
      ['L402 ', 'invalid_credential'],
      [`L402 ${MAC}`, 'invalid_credential'],
      [`L402 ${MAC}:${PREIMAGE}:${PREIMAGE}`, 'invalid_credential'],
      [`L402 :${PREIMAGE}`, 'invalid_credential'],
      [`L402 ,:${PREIMAGE}`, 'invalid_credential'],
      [`L402 ${MAC}:`, 'invalid_preimage'],
      [`L402 ${MAC}:${vectors.negative.shortPreimageFromSpecExample}`, 'invalid_preimage'],
      [`L402 ${MAC}:${PREIMAGE}00`, 'invalid_preimage'],
      [`L402 ${MAC}:${PREIMAGE.slice(0, 62)}zz`, 'invalid_preimage'],
      [`L402 ${MAC}: ${PREIMAGE}`, 'invalid_preimage'],
      [`L402 ${vectors.negative.invalidMacaroonFromSpecExample}:${PREIMAGE}`, 'invalid_macaroon'],
      [`L402 AgEE:${PREIMAGE}`, 'invalid_macaroon'],
      [`L402 ${MAC.slice(0, 40)}+_${MAC.slice(42)}:${PREIMAGE}`, 'invalid_macaroon'],
      [`L402 ${PAID_HEX}:${PREIMAGE}`, 'invalid_macaroon'],
    ];
    for (const [header, expected] of cases)
      expect([header, code(() => parseL402Credential(header))]).toEqual([header, expected]);
  });

  it('accepts repeats of one credential and rejects different ones', () => {
    const one = `L402 ${MAC}:${PREIMAGE}`;
    expect(parseL402Credential([`LSAT ${MAC}:${PREIMAGE}`, one])?.scheme).toBe('LSAT');
    expect(
      parseL402Credential(`${one}, L402 ${V2.base64UrlNoPad}:${PREIMAGE.toUpperCase()}`)?.scheme,
    ).toBe('L402');
    const other = `L402 ${OTHER}:${PREIMAGE}`;
    expect(code(() => parseL402Credential([one, other]))).toBe('conflicting_credentials');
    expect(code(() => parseL402Credential(`${one}, ${other}`))).toBe('conflicting_credentials');
    expect(code(() => parseL402Credential([one, `L402 ${MAC}:${'00'.repeat(32)}`]))).toBe(
      'conflicting_credentials',
    );
    expect(code(() => parseL402Credential([one, `L402 ${MAC},${OTHER}:${PREIMAGE}`]))).toBe(
      'conflicting_credentials',
    );
  });
});

describe('parseL402Credential: Macaroon and Grpc-Metadata-Macaroon headers', () => {
  const expected = { scheme: 'L402', macaroons: [parseMacaroon(PAID)], preimage: preimageBytes };

  it('reads a hex macaroon carrying a preimage caveat from either header', () => {
    expect(parseL402Credential(undefined, { macaroonHeader: PAID_HEX })).toEqual(expected);
    expect(
      parseL402Credential(undefined, { grpcMetadataMacaroon: PAID_HEX.toUpperCase() }),
    ).toEqual(expected);
    expect(
      parseL402Credential('Bearer x', {
        macaroonHeader: [PAID_HEX],
        grpcMetadataMacaroon: PAID_HEX,
      }),
    ).toEqual(expected);
  });

  it('prefers an Authorization credential and then ignores the headers', () => {
    const credential = parseL402Credential(`L402 ${MAC}:${PREIMAGE}`, {
      macaroonHeader: 'garbage',
    });
    expect(credential?.macaroons).toEqual([parseMacaroon(MAC)]);
  });

  it('rejects bad header macaroons with typed errors', () => {
    const noPreimage = Buffer.from(MAC, 'base64').toString('hex');
    const badPreimage = Buffer.from(
      encodeMacaroon(addFirstPartyCaveat(parseMacaroon(MAC), 'preimage=abcd')),
    ).toString('hex');
    const twoPreimages = Buffer.from(
      encodeMacaroon(addFirstPartyCaveat(parseMacaroon(PAID), `preimage=${'11'.repeat(32)}`)),
    ).toString('hex');
    const samePreimageTwice = Buffer.from(
      encodeMacaroon(
        addFirstPartyCaveat(parseMacaroon(PAID), `preimage=${PREIMAGE.toUpperCase()}`),
      ),
    ).toString('hex');
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: noPreimage }))).toBe(
      'invalid_credential',
    );
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: badPreimage }))).toBe(
      'invalid_preimage',
    );
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: twoPreimages }))).toBe(
      'invalid_credential',
    );
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: samePreimageTwice }))).toBe(
      'ok',
    );
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: PAID }))).toBe(
      'invalid_macaroon',
    );
    expect(code(() => parseL402Credential(undefined, { macaroonHeader: `${PAID_HEX}0` }))).toBe(
      'invalid_macaroon',
    );
    expect(
      code(() => parseL402Credential(undefined, { grpcMetadataMacaroon: 'x'.repeat(20_000) })),
    ).toBe('invalid_credential');
  });

  it('rejects different macaroon headers', () => {
    const other = Buffer.from(
      encodeMacaroon(addFirstPartyCaveat(parseMacaroon(MAC), `preimage=${'11'.repeat(32)}`)),
    ).toString('hex');
    expect(
      code(() =>
        parseL402Credential(undefined, { macaroonHeader: PAID_HEX, grpcMetadataMacaroon: other }),
      ),
    ).toBe('conflicting_credentials');
    expect(
      code(() => parseL402Credential(undefined, { macaroonHeader: `${PAID_HEX}, ${other}` })),
    ).toBe('conflicting_credentials');
  });

  it('returns undefined when the headers are absent or empty', () => {
    expect(parseL402Credential(undefined, {})).toBeUndefined();
    expect(
      parseL402Credential(undefined, { macaroonHeader: '', grpcMetadataMacaroon: [] }),
    ).toBeUndefined();
  });
});
