import { describe, expect, it } from 'vitest';
import { verifyCaveats } from '../l402/caveats.js';
import { fixedRate } from '../money.js';
import { parsePrice } from './pricing.js';
import { createRoute, createRouteCaveats, type RouteOptions } from './route.js';

const rates = fixedRate('100000');

function codeOf(options: RouteOptions): string {
  try {
    createRoute(options, { rates });
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? 'other';
  }
}

describe('createRoute', () => {
  it('reads prices, services, durations and scope', () => {
    const route = createRoute(
      {
        service: { name: 'forecast', tier: 1 },
        price: '10 sat',
        validFor: '1h',
        uses: 5,
        capabilities: ['daily'],
        scope: { paths: ['/v1/forecast'], methods: ['get'] },
      },
      {},
    );
    expect(route).toMatchObject({
      service: 'forecast',
      tier: 1,
      free: false,
      price: { unit: 'msat', msat: 10_000n },
      description: 'forecast',
      validForSeconds: 3600,
      uses: 5,
      capabilities: ['daily'],
      paths: ['/v1/forecast'],
      methods: ['GET'],
    });
    expect(Object.isFrozen(route)).toBe(true);
    expect(createRoute({ price: 2500n }, {})).toMatchObject({ service: 'api', tier: 0 });
  });

  it('refuses bad prices with invalid_price', () => {
    expect(codeOf({})).toBe('invalid_price');
    expect(codeOf({ price: '0 sat' })).toBe('invalid_price');
    expect(codeOf({ price: 'ten sat' })).toBe('invalid_price');
    expect(codeOf({ price: -1n })).toBe('invalid_price');
    expect(codeOf({ price: '20 sat', balance: '10 sat' })).toBe('invalid_price');
    expect(() => createRoute({ price: '$0.01' }, {})).toThrowError(
      expect.objectContaining({ code: 'invalid_price' }),
    );
    expect(codeOf({ price: '$0.01' })).toBe('ok');
  });

  it('refuses contradictory or unmintable options with invalid_config', () => {
    expect(codeOf({ free: true, price: '1 sat' })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', uses: 0 })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', uses: 2, balance: '10 sat' })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', validFor: 'forever' })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', service: 'a:b' })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', capabilities: ['a,b'] })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', scope: { paths: ['relative'] } })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', scope: { paths: ['/a/../b'] } })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', scope: { paths: [] } })).toBe('invalid_config');
    expect(codeOf({ price: '1 sat', scope: { methods: ['GET POST'] } })).toBe('invalid_config');
    expect(codeOf({ free: true })).toBe('ok');
  });
});

describe('createRouteCaveats', () => {
  it('mints services, capabilities, sorted tollway constraints and the expiry, readable back', () => {
    const route = createRoute(
      {
        service: 'llm',
        price: () => '1 sat',
        balance: '1000 sat',
        validFor: 60,
        capabilities: ['chat'],
        scope: { paths: ['/v1'], methods: ['POST'] },
      },
      {},
    );
    const caveats = createRouteCaveats(route, {
      balanceMsat: 1_000_000n,
      price: { unit: 'msat', msat: 1000n },
      now: 1_700_000_000_000,
    });
    expect(caveats).toEqual([
      'services=llm:0',
      'llm_capabilities=chat',
      'tollway_balance_msat=1000000',
      'tollway_methods=POST',
      'tollway_paths=/v1',
      'llm_valid_until=1700000060',
    ]);
    const scope = verifyCaveats(caveats, {
      service: 'llm',
      path: '/v1/chat',
      method: 'POST',
      now: 1_700_000_000,
    });
    expect(scope).toMatchObject({
      ok: true,
      value: { balanceMsat: 1_000_000n, validUntil: 1_700_000_060 },
    });
  });

  it('carries the price a token paid per request, in the unit the route listed, except on balances', () => {
    const route = (price: string) => createRoute({ service: 'api', price }, { rates });
    const sale = (price: string) => ({ balanceMsat: undefined, price: parsePrice(price), now: 0 });
    expect(createRouteCaveats(route('5 sat'), sale('5 sat'))).toContain('tollway_price_msat=5000');
    expect(createRouteCaveats(route('$0.002'), sale('$0.002'))).toContain(
      'tollway_price_microusd=2000',
    );
    const scope = verifyCaveats(
      [...createRouteCaveats(route('5 sat'), sale('5 sat')), 'tollway_price_msat=4000'],
      { service: 'api', now: 0 },
    );
    expect(scope).toMatchObject({ ok: true, value: { priceMsat: 4000n } });
    const widened = verifyCaveats(
      [...createRouteCaveats(route('5 sat'), sale('5 sat')), 'tollway_price_msat=6000'],
      { service: 'api', now: 0 },
    );
    expect(widened).toMatchObject({ ok: false, code: 'caveat_not_satisfied' });
  });
});
