import { describe, expect, it } from 'vitest';
import { ok } from '../errors.js';
import { sha256 } from '../internal/crypto.js';
import { createTokenId, encodeIdentifier } from './identifier.js';
import {
  addFirstPartyCaveat,
  computeMacaroonSignature,
  createMacaroon,
  decodeMacaroon,
  encodeMacaroon,
} from './macaroon.js';
import type { L402Credential, Macaroon, TokenIdentifier } from './types.js';
import { type VerifyL402Options, verifyL402 } from './verify.js';

const preimage = new Uint8Array(32).fill(1);
const paymentHash = sha256(preimage);
const tokenId = createTokenId();
const rootKey = new Uint8Array(32).fill(0x40);
const identifier = encodeIdentifier({ version: 0, paymentHash, tokenId });
const token = createMacaroon({
  rootKey,
  identifier,
  caveats: ['services=forecast:0', 'forecast_capabilities=daily', 'forecast_valid_until=2000'],
});

const credential = (macaroon: Macaroon, proof = preimage): L402Credential => ({
  scheme: 'L402',
  macaroons: [macaroon],
  preimage: proof,
});
const seen: TokenIdentifier[] = [];
const options: VerifyL402Options = {
  service: 'forecast',
  now: 1000,
  resolveRootKey: (id, raw) => {
    seen.push(id);
    return Buffer.from(raw).equals(identifier) ? rootKey : undefined;
  },
};
const code = (c: L402Credential, extra: Partial<VerifyL402Options> = {}) => {
  const result = verifyL402(c, { ...options, ...extra });
  return result.ok ? 'ok' : result.code;
};

describe('verifyL402', () => {
  it('accepts a paid token and reports its identity and scope', () => {
    expect(verifyL402(credential(token), { ...options, capability: 'daily' })).toEqual(
      ok({
        tokenId: Buffer.from(tokenId).toString('hex'),
        paymentHash: Buffer.from(paymentHash).toString('hex'),
        services: [{ name: 'forecast', tier: 0 }],
        capabilities: ['daily'],
        validUntil: 2000,
      }),
    );
  });

  it('accepts client-appended caveats, which only narrow', () => {
    const narrowed = addFirstPartyCaveat(
      addFirstPartyCaveat(token, `preimage=${Buffer.from(preimage).toString('hex')}`),
      'tollway_uses=3',
    );
    const result = verifyL402(credential(narrowed), options);
    expect(result.ok && result.value.uses).toBe(3);
    expect(code(credential(addFirstPartyCaveat(token, 'forecast_valid_until=3000')))).toBe(
      'caveat_not_satisfied',
    );
  });

  it('takes now as unix seconds or a Date, and defaults to the clock', () => {
    expect(code(credential(token), { now: new Date(1_999_000) })).toBe('ok');
    expect(code(credential(token), { now: new Date(2_000_000) })).toBe('token_expired');
    const { now: _now, ...withoutNow } = options;
    expect(verifyL402(credential(token), withoutNow)).toMatchObject({ code: 'token_expired' });
  });

  it('rejects a wrong or short preimage before looking up the root key', () => {
    seen.length = 0;
    expect(code(credential(token, new Uint8Array(32).fill(2)))).toBe('preimage_mismatch');
    expect(code(credential(token, new Uint8Array(12)))).toBe('invalid_preimage');
    expect(seen).toHaveLength(0);
  });

  it('rejects identifiers that are not L402 v0', () => {
    const boltwall = createMacaroon({
      rootKey,
      identifier: new TextEncoder().encode(Buffer.from(identifier).toString('hex')),
    });
    expect(code(credential(boltwall))).toBe('unknown_identifier_version');
    const short = createMacaroon({ rootKey, identifier: identifier.subarray(0, 65) });
    expect(code(credential(short))).toBe('invalid_identifier');
  });

  it('reports unknown root keys and bad signatures', () => {
    expect(code(credential(token), { resolveRootKey: () => undefined })).toBe('root_key_not_found');
    expect(code(credential(token), { resolveRootKey: () => new Uint8Array(32) })).toBe(
      'invalid_signature',
    );
    const forged = { ...token, caveats: token.caveats.slice(0, 1) };
    expect(code(credential(forged))).toBe('invalid_signature');
  });

  it('refuses third-party caveats: discharges are not verified', () => {
    const wire = encodeMacaroon({
      ...token,
      caveats: [
        ...token.caveats,
        { identifier: new Uint8Array([1]), verificationId: new Uint8Array(72), location: 'x' },
      ],
    });
    const withThirdParty = decodeMacaroon(wire);
    const discharge = createMacaroon({
      rootKey: new Uint8Array(32),
      identifier: new Uint8Array([1]),
    });
    expect(code({ scheme: 'LSAT', macaroons: [withThirdParty, discharge], preimage })).toBe(
      'third_party_caveat',
    );
  });

  it('checks caveats last, with the request details', () => {
    expect(code(credential(token), { service: 'other' })).toBe('wrong_service');
    expect(code(credential(token), { capability: 'hourly' })).toBe('caveat_not_satisfied');
    const scoped = addFirstPartyCaveat(token, 'tollway_paths=/v1');
    expect(code(credential(scoped), { path: '/v1/forecast' })).toBe('ok');
    expect(code(credential(scoped), { path: '/v10' })).toBe('caveat_not_satisfied');
    const methods = addFirstPartyCaveat(token, 'tollway_methods=GET');
    expect(code(credential(methods), { method: 'get' })).toBe('ok');
    expect(code(credential(methods), { method: 'DELETE' })).toBe('caveat_not_satisfied');
    const unknown = addFirstPartyCaveat(token, 'colour=blue');
    expect(code(credential(unknown))).toBe('ok');
    expect(code(credential(unknown), { strict: true })).toBe('unknown_caveat');
    const caveats = [...token.caveats, { identifier: new Uint8Array([0xff]) }];
    const signature = computeMacaroonSignature(rootKey, identifier, caveats);
    expect(code(credential({ ...token, caveats, signature }))).toBe('invalid_caveat');
  });

  it('reports a credential without a macaroon', () => {
    expect(code({ scheme: 'L402', macaroons: [], preimage })).toBe('invalid_credential');
  });
});
