import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayError } from '../errors.js';
import { formatL402Challenges, parseL402Challenges } from './challenge.js';
import { createMacaroon, formatMacaroon, parseMacaroon } from './macaroon.js';

// Test vectors: test/fixtures/l402-vectors.json (V2 token, and a challenge minted by a real Aperture).
const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const V2 = vectors.macaroons[1];
const MAC: string = V2.base64;
const MAC_URL: string = V2.base64UrlNoPad;
const INVOICE: string = vectors.invoicePreimageTriple.invoice;

function thrown(run: () => unknown): TollwayError {
  try {
    run();
  } catch (error) {
    if (isTollwayError(error)) return error;
    throw error;
  }
  throw new Error('expected a TollwayError');
}

describe('formatL402Challenges', () => {
  it('emits LSAT then L402 with macaroon= and padded standard base64 by default', () => {
    expect(formatL402Challenges({ macaroon: parseMacaroon(MAC), invoice: INVOICE })).toEqual([
      `LSAT macaroon="${MAC}", invoice="${INVOICE}"`,
      `L402 macaroon="${MAC}", invoice="${INVOICE}"`,
    ]);
  });

  it('emits the 2026 spec form on request', () => {
    expect(
      formatL402Challenges({ macaroon: parseMacaroon(MAC), invoice: INVOICE, form: 'spec' }),
    ).toEqual([`L402 version="0", token="${MAC}", invoice="${INVOICE}"`]);
  });

  it('refuses an invoice that would break the header', () => {
    const macaroon = parseMacaroon(MAC);
    expect(thrown(() => formatL402Challenges({ macaroon, invoice: 'lnbc1\r\nX: y' })).code).toBe(
      'invalid_challenge',
    );
  });

  const macaroon = fc
    .record({
      rootKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      identifier: fc.uint8Array({ maxLength: 80 }),
      caveats: fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }),
    })
    .map((params) => createMacaroon(params));
  const invoice = fc.stringMatching(/^ln(bc|tb|bcrt)[0-9a-z]{1,80}$/);

  it('round-trips through parseL402Challenges, as lines or comma-joined (property)', () => {
    fc.assert(
      fc.property(
        macaroon,
        invoice,
        fc.constantFrom('legacy', 'spec'),
        fc.boolean(),
        (m, inv, form, join) => {
          const lines = formatL402Challenges({ macaroon: m, invoice: inv, form });
          const parsed = parseL402Challenges(join ? lines.join(', ') : lines);
          const token = formatMacaroon(m);
          expect(parsed).toEqual(
            form === 'spec'
              ? [{ scheme: 'L402', macaroon: token, invoice: inv, version: '0' }]
              : [
                  { scheme: 'LSAT', macaroon: token, invoice: inv },
                  { scheme: 'L402', macaroon: token, invoice: inv },
                ],
          );
        },
      ),
    );
  });
});

describe('parseL402Challenges: every form in the wild', () => {
  const l402 = { scheme: 'L402', macaroon: MAC, invoice: INVOICE };
  const lsat = { scheme: 'LSAT', macaroon: MAC, invoice: INVOICE };

  it('reads a challenge minted by a real Aperture', () => {
    const [challenge] = parseL402Challenges(vectors.realChallenge.header);
    expect(challenge?.scheme).toBe('LSAT');
    expect(parseMacaroon(challenge?.macaroon ?? '').location).toBe('lsat');
    expect(challenge?.invoice).toMatch(/^lnbcrt100n1/);
  });

  it("reads Aperture's two lines, separately or joined by fetch", () => {
    const lines = [
      `LSAT macaroon="${MAC}", invoice="${INVOICE}"`,
      `L402 macaroon="${MAC}", invoice="${INVOICE}"`,
    ];
    expect(parseL402Challenges(lines)).toEqual([lsat, l402]);
    expect(parseL402Challenges(lines.join(', '))).toEqual([lsat, l402]);
  });

  it('reads the 2026 spec form (token=, version=)', () => {
    expect(parseL402Challenges(`L402 version="0", token="${MAC}", invoice="${INVOICE}"`)).toEqual([
      { ...l402, version: '0' },
    ]);
  });

  it('prefers token= when both token= and macaroon= are present', () => {
    expect(
      parseL402Challenges(`L402 macaroon="AgEE", token="${MAC}", invoice="${INVOICE}"`),
    ).toEqual([l402]);
  });

  it('reads lsat-js / boltwall URL-safe base64 without padding, as received', () => {
    expect(parseL402Challenges(`LSAT macaroon="${MAC_URL}", invoice="${INVOICE}"`)).toEqual([
      { ...lsat, macaroon: MAC_URL },
    ]);
  });

  it('reads the unquoted values of the Gin/Echo lsat-middleware', () => {
    expect(parseL402Challenges(`LSAT macaroon=${MAC}, invoice=${INVOICE}`)).toEqual([lsat]);
  });

  it("reads Alby's form with no comma after version", () => {
    expect(parseL402Challenges(`L402 version="0" macaroon="${MAC}", invoice="${INVOICE}"`)).toEqual(
      [{ ...l402, version: '0' }],
    );
  });

  it('reads parts separated by a comma without space, or by a space only', () => {
    expect(parseL402Challenges(`L402 macaroon="${MAC}",invoice="${INVOICE}"`)).toEqual([l402]);
    expect(parseL402Challenges(`L402 macaroon="${MAC}" invoice="${INVOICE}"`)).toEqual([l402]);
  });

  it('ignores unknown parameters such as the L402sdk address=', () => {
    expect(
      parseL402Challenges(`L402 macaroon="${MAC}", address="bc1qxyz", invoice="${INVOICE}"`),
    ).toEqual([l402]);
  });

  it('accepts the scheme in any case', () => {
    expect(parseL402Challenges(`l402 macaroon="${MAC}", invoice="${INVOICE}"`)).toEqual([l402]);
    expect(parseL402Challenges(`LsAt MACAROON="${MAC}", Invoice="${INVOICE}"`)).toEqual([lsat]);
  });

  it('picks L402 challenges out of a line mixed with Basic, Payment and Bearer', () => {
    const header = [
      'Basic realm="x, L402 macaroon=\\"nope\\""',
      'Payment id="a", realm="r", method="lightning", intent="charge", request="cQ", macaroon="AgEE"',
      `L402 macaroon="${MAC}", invoice="${INVOICE}"`,
      'Bearer realm="api", invoice="lnbc1stray"',
    ].join(', ');
    expect(parseL402Challenges(header)).toEqual([l402]);
  });

  it('skips incomplete challenges and keeps the usable ones', () => {
    const header = [
      ...vectors.negative.challengesMissingParts,
      `L402 macaroon="${MAC}", invoice="${INVOICE}"`,
    ];
    expect(parseL402Challenges(header)).toEqual([l402]);
  });
});

describe('parseL402Challenges: errors say why', () => {
  it('throws invalid_challenge when there is no L402 challenge', () => {
    const error = thrown(() => parseL402Challenges('Basic realm="x", Bearer'));
    expect(error.code).toBe('invalid_challenge');
    expect(error.message).toBe('no L402 challenge');
    expect(thrown(() => parseL402Challenges([])).code).toBe('invalid_challenge');
  });

  it('lists the reason for each skipped challenge', () => {
    const error = thrown(() =>
      parseL402Challenges([
        ...vectors.negative.challengesMissingParts,
        `LSAT macaroon="${vectors.negative.invalidMacaroonFromSpecExample}", invoice="${INVOICE}"`,
        `L402 macaroon="${MAC}", invoice="https://example.com"`,
        'L402 macaroon="", token="", invoice="lnbc1"',
      ]),
    );
    expect(error.code).toBe('invalid_challenge');
    expect(error.details?.skipped).toEqual([
      'L402: missing macaroon (or token)',
      'L402: missing invoice',
      'LSAT: macaroon is not base64',
      'L402: invoice is not BOLT11 text',
      'L402: missing macaroon (or token)',
    ]);
    expect(error.message).toContain('LSAT: macaroon is not base64');
  });

  it('skips a token that is not base64 (an Alby JSON+HMAC token)', () => {
    const token = 'eyJwYXltZW50SGFzaCI6ImFiIn0.0a1b2c';
    expect(
      thrown(() => parseL402Challenges(`L402 token="${token}", invoice="${INVOICE}"`)).code,
    ).toBe('invalid_challenge');
  });

  it('throws invalid_challenge for an oversized header', () => {
    expect(thrown(() => parseL402Challenges(`L402 macaroon="${'A'.repeat(20_000)}"`)).code).toBe(
      'invalid_challenge',
    );
  });
});
