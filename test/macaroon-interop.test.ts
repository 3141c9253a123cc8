// Interoperability with js-macaroon (npm `macaroon` 3.0.4, a devDependency), an independent
// libmacaroons V2 implementation. Its exportBinary() fails once a macaroon has 4 or more caveats
// (its buffer growth overflows), so tokens it mints here keep to 3 caveats; importing and verifying
// larger tokens works.

import { createRequire } from 'node:module';
import {
  addFirstPartyCaveat,
  createMacaroon,
  encodeMacaroon,
  firstPartyCaveats,
  formatMacaroon,
  parseMacaroon,
  verifyMacaroonSignature,
} from '@tollway/sdk/l402';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** The part of js-macaroon's API used here (the package ships no types). */
interface JsMacaroon {
  readonly location: string;
  readonly identifier: Uint8Array;
  readonly signature: Uint8Array;
  readonly caveats: { identifier: Uint8Array }[];
  addFirstPartyCaveat(caveat: string): void;
  verify(rootKey: Uint8Array, check: (condition: string) => string | null): void;
  exportBinary(): Uint8Array;
}
const jsMacaroon = createRequire(import.meta.url)('macaroon') as {
  newMacaroon(params: {
    rootKey: Uint8Array;
    identifier: Uint8Array | string;
    location: string;
    version: 2;
  }): JsMacaroon;
  importMacaroon(data: string | Uint8Array): JsMacaroon;
};

// Caveat text: printable ASCII plus some multi-byte UTF-8, never empty.
const caveatText = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
const key = fc.uint8Array({ minLength: 1, maxLength: 64 });

function verifyThere(base64: string, rootKey: Uint8Array, allowed: readonly string[]): boolean {
  const m = jsMacaroon.importMacaroon(base64);
  try {
    m.verify(rootKey, (condition: string) => (allowed.includes(condition) ? null : 'not allowed'));
    return true;
  } catch {
    return false;
  }
}

describe('interop with npm macaroon 3.0.4', () => {
  it('tokens we mint import and verify there (any number of caveats)', () => {
    fc.assert(
      fc.property(
        key,
        fc.uint8Array({ maxLength: 80 }),
        fc.uniqueArray(caveatText, { maxLength: 8 }),
        (rootKey, identifier, caveats) => {
          const ours = createMacaroon({ rootKey, identifier, caveats });
          const base64 = formatMacaroon(ours);
          expect(verifyThere(base64, rootKey, caveats)).toBe(true);
          const theirs = jsMacaroon.importMacaroon(base64);
          expect(theirs.location).toBe('lsat');
          expect(Buffer.from(theirs.identifier).equals(identifier)).toBe(true);
          const theirCaveats = theirs.caveats.map((c) => Buffer.from(c.identifier).toString());
          expect(theirCaveats).toEqual(caveats);
          // A wrong key or an unsatisfied caveat fails there too, so the check above has teeth.
          expect(verifyThere(base64, new Uint8Array([...rootKey, 1]), caveats)).toBe(false);
          if (caveats.length > 0)
            expect(verifyThere(base64, rootKey, caveats.slice(1))).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('tokens they mint (up to 3 caveats) decode byte for byte and verify here', () => {
    fc.assert(
      fc.property(
        key,
        fc.uint8Array({ minLength: 1, maxLength: 80 }),
        fc.oneof(fc.constant(''), fc.string({ minLength: 1, maxLength: 20 })),
        fc.array(caveatText, { maxLength: 3 }),
        (rootKey, identifier, location, caveats) => {
          const theirs = jsMacaroon.newMacaroon({ rootKey, identifier, location, version: 2 });
          for (const caveat of caveats) theirs.addFirstPartyCaveat(caveat);
          const wire = theirs.exportBinary();
          const ours = parseMacaroon(Buffer.from(wire).toString('base64url'));
          expect(ours.location).toBe(location);
          expect(firstPartyCaveats(ours)).toEqual(caveats);
          expect(Buffer.from(encodeMacaroon(ours)).equals(wire)).toBe(true);
          expect(verifyMacaroonSignature(ours, rootKey)).toBe(true);
          expect(verifyMacaroonSignature(ours, new Uint8Array([...rootKey, 1]))).toBe(false);
        },
      ),
      // Their exportBinary() doubles its buffer on every append: slow with 3 caveats, so few runs.
      { numRuns: 40 },
    );
  });

  it('attenuation agrees both ways', () => {
    const rootKey = new Uint8Array(32).fill(9);
    const theirs = jsMacaroon.newMacaroon({
      rootKey,
      identifier: 'id',
      location: 'lsat',
      version: 2,
    });
    theirs.addFirstPartyCaveat('services=svc:0');
    const attenuatedHere = addFirstPartyCaveat(
      parseMacaroon(Buffer.from(theirs.exportBinary()).toString('base64')),
      'svc_valid_until=4102444800',
    );
    theirs.addFirstPartyCaveat('svc_valid_until=4102444800');
    expect(Buffer.from(attenuatedHere.signature).equals(theirs.signature)).toBe(true);
    expect(
      verifyThere(formatMacaroon(attenuatedHere), rootKey, [
        'services=svc:0',
        'svc_valid_until=4102444800',
      ]),
    ).toBe(true);
  });
});
