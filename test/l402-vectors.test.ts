// Golden L402 / macaroon vectors. The fixture test/fixtures/l402-vectors.json is a verbatim copy of
// /work/shared/vectors/l402-vectors.json (research notes l402-anchors.md §10): Aperture's identifier
// test, the libmacaroons README signatures, a real Aperture challenge from lsat-js's fixtures, and
// end-to-end vectors cross-checked against the npm `macaroon` package.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  addFirstPartyCaveat,
  createMacaroon,
  decodeIdentifier,
  encodeIdentifier,
  firstPartyCaveats,
  formatMacaroon,
  type Macaroon,
  parseMacaroon,
  verifyL402,
  verifyMacaroonSignature,
} from '@tollway/sdk/l402';
import { describe, expect, it } from 'vitest';

interface MacaroonVector {
  name: string;
  rootKeyHex: string;
  location: string;
  identifierHex: string;
  caveats: string[];
  signatureHex: string;
  base64: string;
  wrongSignatureWithoutKeyDerivationHex?: string;
  preimageHex?: string;
  paymentHashHex?: string;
  tokenIdHex?: string;
  base64UrlNoPad?: string;
  authorizationHeader?: string;
  paidMacaroonWithPreimageCaveat?: { extraCaveat: string; signatureHex: string; base64: string };
}

const vectors = JSON.parse(
  readFileSync(new URL('./fixtures/l402-vectors.json', import.meta.url), 'utf8'),
) as {
  macaroons: MacaroonVector[];
  realChallenge: {
    header: string;
    location: string;
    paymentHashHex: string;
    tokenIdHex: string;
    caveats: string[];
    signatureHex: string;
  };
  invoicePreimageTriple: { preimageHex: string; paymentHashHex: string };
  identifierLayout: { paymentHashBytes1to32_tokenIdBytes32to1: string };
  libmacaroonsSignatures: {
    rootKey: string;
    identifier: string;
    location: string;
    caveats: string[];
    signatureHex: string;
  }[];
  negative: {
    invalidMacaroonFromSpecExample: string;
    shortPreimageFromSpecExample: string;
    challengesMissingParts: string[];
  };
};

const fromHex = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const utf8 = (text: string) => new TextEncoder().encode(text);
const rootKeyFor = (key: Uint8Array) => () => key;
// Fixed clock before every *_valid_until in the vectors (4102444800 = 2100-01-01).
const now = 1_767_225_600;

describe('test/fixtures/l402-vectors.json', () => {
  it('covers every macaroon vector', () => {
    expect(vectors.macaroons.map((v) => v.name)).toEqual([
      'V1 spec example identifier, zero root key',
      'V2 full credential',
    ]);
  });

  describe.each(vectors.macaroons)('$name', (vector) => {
    const rootKey = fromHex(vector.rootKeyHex);

    it('decodes to the listed fields', () => {
      const m = parseMacaroon(vector.base64);
      expect(m.location).toBe(vector.location);
      expect(toHex(m.identifier)).toBe(vector.identifierHex);
      expect(firstPartyCaveats(m)).toEqual(vector.caveats);
      expect(toHex(m.signature)).toBe(vector.signatureHex);
      expect(verifyMacaroonSignature(m, rootKey)).toBe(true);
    });

    it('is minted byte for byte by createMacaroon', () => {
      const m = createMacaroon({
        rootKey,
        identifier: fromHex(vector.identifierHex),
        location: vector.location,
        caveats: vector.caveats,
      });
      expect(toHex(m.signature)).toBe(vector.signatureHex);
      expect(formatMacaroon(m)).toBe(vector.base64);
    });

    it('decodes the identifier (v0 layout)', () => {
      const id = decodeIdentifier(fromHex(vector.identifierHex));
      expect(id.version).toBe(0);
      if (vector.paymentHashHex !== undefined)
        expect(toHex(id.paymentHash)).toBe(vector.paymentHashHex);
      if (vector.tokenIdHex !== undefined) expect(toHex(id.tokenId)).toBe(vector.tokenIdHex);
    });

    if (vector.wrongSignatureWithoutKeyDerivationHex !== undefined) {
      const wrong = vector.wrongSignatureWithoutKeyDerivationHex;
      it('does not verify the spec-erratum signature (no key derivation)', () => {
        // Recompute the erratum to prove this vector is what it claims: sig0 = HMAC(rootKey, id).
        let sig: Buffer = createHmac('sha256', rootKey)
          .update(fromHex(vector.identifierHex))
          .digest();
        for (const caveat of vector.caveats)
          sig = createHmac('sha256', sig).update(caveat).digest();
        expect(sig.toString('hex')).toBe(wrong);
        const forged: Macaroon = { ...parseMacaroon(vector.base64), signature: fromHex(wrong) };
        expect(verifyMacaroonSignature(forged, rootKey)).toBe(false);
      });
    }

    if (vector.base64UrlNoPad !== undefined) {
      const urlForm = vector.base64UrlNoPad;
      it('reads the URL-safe unpadded form', () => {
        expect(parseMacaroon(urlForm)).toEqual(parseMacaroon(vector.base64));
      });
    }

    if (vector.authorizationHeader !== undefined && vector.preimageHex !== undefined) {
      const header = vector.authorizationHeader;
      const preimage = fromHex(vector.preimageHex);
      it('verifies the Authorization credential end to end', () => {
        const [scheme, token] = header.split(' ') as [string, string];
        const [macaroonText, preimageHex] = token.split(':') as [string, string];
        expect(scheme).toBe('L402');
        expect(preimageHex).toBe(vector.preimageHex);
        const result = verifyL402(
          { scheme: 'L402', macaroons: [parseMacaroon(macaroonText)], preimage },
          { service: 'svc', capability: 'add', now, resolveRootKey: rootKeyFor(rootKey) },
        );
        expect(result).toEqual({
          ok: true,
          value: {
            tokenId: vector.tokenIdHex,
            paymentHash: vector.paymentHashHex,
            services: [{ name: 'svc', tier: 0 }],
            capabilities: ['add', 'subtract'],
            validUntil: 4_102_444_800,
          },
        });
      });
    }

    if (vector.paidMacaroonWithPreimageCaveat !== undefined && vector.preimageHex !== undefined) {
      const paid = vector.paidMacaroonWithPreimageCaveat;
      const preimage = fromHex(vector.preimageHex);
      it('reproduces the lnget-style paid macaroon and still verifies it', () => {
        const m = addFirstPartyCaveat(parseMacaroon(vector.base64), paid.extraCaveat);
        expect(toHex(m.signature)).toBe(paid.signatureHex);
        expect(formatMacaroon(m)).toBe(paid.base64);
        const hexForm = Buffer.from(paid.base64, 'base64').toString('hex');
        const result = verifyL402(
          { scheme: 'LSAT', macaroons: [parseMacaroon(hexForm)], preimage },
          { service: 'svc', now, strict: true, resolveRootKey: rootKeyFor(rootKey) },
        );
        expect(result.ok).toBe(true);
      });
    }
  });

  it('decodes the real Aperture challenge macaroon', () => {
    const real = vectors.realChallenge;
    const text = /macaroon="([^"]+)"/.exec(real.header)?.[1] ?? '';
    const m = parseMacaroon(text);
    expect(m.location).toBe(real.location);
    expect(firstPartyCaveats(m)).toEqual(real.caveats);
    expect(toHex(m.signature)).toBe(real.signatureHex);
    const id = decodeIdentifier(m.identifier);
    expect(toHex(id.paymentHash)).toBe(real.paymentHashHex);
    expect(toHex(id.tokenId)).toBe(real.tokenIdHex);
    expect(formatMacaroon(m)).toBe(text);
  });

  it('binds a token to the invoice / preimage / hash triple', () => {
    const { preimageHex, paymentHashHex } = vectors.invoicePreimageTriple;
    const rootKey = new Uint8Array(32).fill(5);
    const m = createMacaroon({
      rootKey,
      identifier: encodeIdentifier({
        version: 0,
        paymentHash: fromHex(paymentHashHex),
        tokenId: new Uint8Array(32),
      }),
      caveats: ['services=svc:0'],
    });
    const credential = { scheme: 'L402' as const, macaroons: [m], preimage: fromHex(preimageHex) };
    const options = { service: 'svc', now, resolveRootKey: rootKeyFor(rootKey) };
    expect(verifyL402(credential, options).ok).toBe(true);
    const wrong = { ...credential, preimage: fromHex(paymentHashHex) };
    expect(verifyL402(wrong, options)).toMatchObject({ ok: false, code: 'preimage_mismatch' });
  });

  it('lays out the identifier as Aperture does', () => {
    const bytes = (from: number, step: number) =>
      new Uint8Array(Array.from({ length: 32 }, (_, i) => from + i * step));
    const encoded = encodeIdentifier({
      version: 0,
      paymentHash: bytes(1, 1),
      tokenId: bytes(32, -1),
    });
    expect(toHex(encoded)).toBe(vectors.identifierLayout.paymentHashBytes1to32_tokenIdBytes32to1);
  });

  it.each(vectors.libmacaroonsSignatures)('matches libmacaroons: $caveats', (vector) => {
    const m = createMacaroon({
      rootKey: utf8(vector.rootKey),
      identifier: utf8(vector.identifier),
      location: vector.location,
      caveats: vector.caveats,
    });
    expect(toHex(m.signature)).toBe(vector.signatureHex);
    expect(parseMacaroon(formatMacaroon(m))).toEqual(m);
  });

  describe('negative inputs are rejected cleanly', () => {
    const v2 = vectors.macaroons[1] as MacaroonVector;
    const options = {
      service: 'svc',
      now,
      resolveRootKey: rootKeyFor(fromHex(v2.rootKeyHex)),
    };

    it('the spec example macaroon', () => {
      expect(() => parseMacaroon(vectors.negative.invalidMacaroonFromSpecExample)).toThrow(
        expect.objectContaining({ code: 'invalid_macaroon' }),
      );
    });

    it('the 12-byte spec example preimage', () => {
      const preimage = fromHex(vectors.negative.shortPreimageFromSpecExample);
      const result = verifyL402(
        { scheme: 'L402', macaroons: [parseMacaroon(v2.base64)], preimage },
        options,
      );
      expect(result).toMatchObject({ ok: false, code: 'invalid_preimage' });
    });

    it('the truncated macaroon of a challenge missing parts', () => {
      const texts = vectors.negative.challengesMissingParts.flatMap((header) => {
        const match = /macaroon="([^"]+)"/.exec(header);
        return match?.[1] === undefined ? [] : [match[1]];
      });
      expect(texts).toEqual(['AgEE']);
      for (const text of texts) {
        expect(() => parseMacaroon(text)).toThrow(
          expect.objectContaining({ code: 'invalid_macaroon' }),
        );
      }
    });

    it('a boltwall-style ASCII-hex identifier', () => {
      const ascii = utf8(v2.identifierHex);
      expect(ascii).toHaveLength(132);
      expect(() => decodeIdentifier(ascii)).toThrow(
        expect.objectContaining({ code: 'unknown_identifier_version' }),
      );
      const rootKey = fromHex(v2.rootKeyHex);
      const m = createMacaroon({ rootKey, identifier: ascii, caveats: v2.caveats });
      const preimage = fromHex(v2.preimageHex ?? '');
      expect(verifyL402({ scheme: 'L402', macaroons: [m], preimage }, options)).toMatchObject({
        ok: false,
        code: 'unknown_identifier_version',
      });
    });
  });
});
