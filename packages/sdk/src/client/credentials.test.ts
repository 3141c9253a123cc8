import { describe, expect, it } from 'vitest';
import { createMacaroon, formatMacaroon } from '../l402/macaroon.js';
import { type CredentialTarget, credentialApplies, tokenReach, tokenScope } from './credentials.js';
import { createPayingContext } from './paying-context.js';

const context = createPayingContext({ wallets: [] });
const applies = (header: { name: string; value: string }, target: CredentialTarget) =>
  credentialApplies(context, header, target);
const token = (...caveats: string[]) =>
  formatMacaroon(
    createMacaroon({ rootKey: new Uint8Array(32), identifier: new Uint8Array(66), caveats }),
  );
const l402 = (macaroon: string) => ({
  name: 'Authorization',
  value: `L402 ${macaroon}:${'ab'.repeat(32)}`,
});
const get = (path: string, services?: string[]) => ({
  path,
  method: 'GET',
  ...(services === undefined ? {} : { services: new Set(services) }),
});

describe('tokenReach', () => {
  it('reads paths, methods, services and the earliest expiry; the last of each list', () => {
    const reach = tokenReach(
      token(
        'services=forecast:0,maps:1',
        'forecast_capabilities=daily',
        'tollway_paths=/v1,/v2',
        'tollway_paths=/v1',
        'tollway_methods=get,post',
        'forecast_valid_until=2000000000',
        'maps_valid_until=1900000000',
        'preimage=00',
      ),
    );
    expect(reach).toEqual({
      services: ['forecast', 'maps'],
      paths: ['/v1'],
      methods: ['GET', 'POST'],
      expiresAt: 1_900_000_000_000,
    });
    expect(tokenReach(token())).toEqual({});
    expect(tokenReach('not a macaroon')).toBeUndefined();
  });

  it('saves a token under its paths, else under the scope it was bought for', () => {
    expect(tokenScope(token('tollway_paths=/a,/b'), '/x')).toEqual({ scopes: ['/a', '/b'] });
    expect(tokenScope(token('services=s:0'), '/x')).toEqual({ scopes: ['/x'] });
    expect(tokenScope('opaque', '/')).toEqual({ scopes: ['/'] });
  });
});

describe('credentialApplies', () => {
  it('refuses a token whose paths, methods or services rule the request out', () => {
    const scoped = l402(token('services=a:0', 'tollway_paths=/v1', 'tollway_methods=GET'));
    expect(applies(scoped, get('/v1/x'))).toBe(true);
    expect(applies(scoped, get('/v10'))).toBe(false);
    expect(applies(scoped, { path: '/v1', method: 'post' })).toBe(false);
    expect(applies(scoped, get('/v1', ['a', 'b']))).toBe(true);
    expect(applies(scoped, get('/v1', ['b']))).toBe(false);
    // No service named by the server: nothing to compare.
    expect(applies(scoped, get('/v1', []))).toBe(true);
  });

  it('lets through what says nothing: a token without caveats, an opaque one, other credentials', () => {
    expect(applies(l402(token()), get('/x', ['a']))).toBe(true);
    expect(applies(l402('b3BhcXVl'), get('/x', ['a']))).toBe(true);
    expect(applies({ name: 'Authorization', value: 'Payment eyJ9' }, get('/x'))).toBe(true);
    expect(applies({ name: 'PAYMENT-SIGNATURE', value: 'e30=' }, get('/x'))).toBe(true);
    const lsat = {
      name: 'authorization',
      value: l402(token('services=a:0')).value.replace('L402', 'LSAT'),
    };
    expect(applies(lsat, get('/x', ['b']))).toBe(false);
  });
});
