import { schnorr } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { formatNwcUri, parseNwcUri } from './nwc-uri.js';

// A valid x-only key (the generator's x) and a valid secret key.
const PUBKEY = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
const SECRET = '71bf1cd09c2cfa1b0dfb4bd8c5a8e1dbdfb5bb12db3cc0d0e3b6db2dc8b8a1c3';

function errorOf(uri: string): unknown {
  try {
    parseNwcUri(uri);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('parseNwcUri', () => {
  it('reads the standard URI, with several relays and a lightning address', () => {
    const uri = `nostr+walletconnect://${PUBKEY}?relay=wss%3A%2F%2Frelay.one&relay=wss://relay.two/path&secret=${SECRET.toUpperCase()}&lud16=me%40example.com`;
    expect(parseNwcUri(uri)).toEqual({
      walletPubkey: PUBKEY,
      relays: ['wss://relay.one', 'wss://relay.two/path'],
      secret: SECRET,
      lud16: 'me@example.com',
    });
  });

  it('accepts the form without slashes and the old scheme name', () => {
    const a = parseNwcUri(
      `nostr+walletconnect:${PUBKEY}?relay=ws://127.0.0.1:7000&secret=${SECRET}`,
    );
    const b = parseNwcUri(
      `nostrwalletconnect://${PUBKEY}?relay=ws://127.0.0.1:7000&secret=${SECRET}`,
    );
    expect(a).toEqual(b);
    expect(a.relays).toEqual(['ws://127.0.0.1:7000']);
  });

  it.each([
    ['a wrong scheme', `https://${PUBKEY}?relay=wss://r&secret=${SECRET}`],
    ['a short wallet key', `nostr+walletconnect://abcd?relay=wss://r&secret=${SECRET}`],
    [
      'a wallet key off the curve',
      `nostr+walletconnect://${'f'.repeat(64)}?relay=wss://r&secret=${SECRET}`,
    ],
    ['no relay', `nostr+walletconnect://${PUBKEY}?secret=${SECRET}`],
    ['an https relay', `nostr+walletconnect://${PUBKEY}?relay=https://r&secret=${SECRET}`],
    ['a relay that is no URL', `nostr+walletconnect://${PUBKEY}?relay=relay&secret=${SECRET}`],
    ['no secret', `nostr+walletconnect://${PUBKEY}?relay=wss://r`],
    ['a zero secret', `nostr+walletconnect://${PUBKEY}?relay=wss://r&secret=${'0'.repeat(64)}`],
    ['a short secret', `nostr+walletconnect://${PUBKEY}?relay=wss://r&secret=${SECRET.slice(2)}`],
  ])('refuses %s with invalid_connection_string, never echoing the secret', (_, uri) => {
    const error = errorOf(uri);
    expect(isTollwayError(error, 'invalid_connection_string')).toBe(true);
    expect((error as Error).message).not.toContain(SECRET.slice(0, 16));
  });

  it('round-trips every valid connection through formatNwcUri', () => {
    const key = fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .filter((bytes) => bytes.some((b) => b !== 0) && bytes[0] !== 0xff);
    const relay = fc.constantFrom(
      'wss://relay.example',
      'ws://127.0.0.1:4848',
      'wss://r.example/a?b=c&d',
    );
    fc.assert(
      fc.property(
        key,
        key,
        fc.array(relay, { minLength: 1, maxLength: 3 }),
        (walletKey, secret, relays) => {
          const connection = {
            walletPubkey: Buffer.from(schnorr.getPublicKey(walletKey)).toString('hex'),
            relays,
            secret: Buffer.from(secret).toString('hex'),
          };
          expect(parseNwcUri(formatNwcUri(connection))).toEqual(connection);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('throws only typed errors for arbitrary input', () => {
    fc.assert(
      fc.property(fc.string(), (tail) => {
        const error = errorOf(`nostr+walletconnect://${PUBKEY}?${tail}`);
        expect(error === undefined || isTollwayError(error)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
