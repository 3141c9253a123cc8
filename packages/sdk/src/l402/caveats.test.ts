import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fail, ok } from '../errors.js';
import {
  type CaveatRequest,
  type CaveatSatisfier,
  capabilitiesSatisfier,
  createServiceCaveats,
  formatCaveat,
  methodsSatisfier,
  parseCaveat,
  pathsSatisfier,
  servicesSatisfier,
  validUntilSatisfier,
  verifyCaveats,
} from './caveats.js';

const request: CaveatRequest = { service: 'svc', now: 1_000, path: '/v1/forecast', method: 'GET' };
const code = (caveats: string[], req: Partial<CaveatRequest> = {}, strict = false) => {
  const result = verifyCaveats(caveats, { ...request, ...req }, { strict });
  return result.ok ? 'ok' : result.code;
};

describe('parseCaveat / formatCaveat', () => {
  it('splits on the first "=" (Aperture caveat_test)', () => {
    expect(parseCaveat('expiration=1337')).toEqual({ condition: 'expiration', value: '1337' });
    expect(parseCaveat('expiration=1337=')).toEqual({ condition: 'expiration', value: '1337=' });
    expect(parseCaveat('meme_capabilities=')).toEqual({
      condition: 'meme_capabilities',
      value: '',
    });
    expect(formatCaveat(parseCaveat('a==b'))).toBe('a==b');
  });

  it.each(['expiration:1337', '=1', ''])('rejects %j', (text) => {
    expect(() => parseCaveat(text)).toThrow(expect.objectContaining({ code: 'invalid_caveat' }));
  });

  it('refuses to format a condition containing "="', () => {
    expect(() => formatCaveat({ condition: 'a=b', value: 'c' })).toThrow(
      expect.objectContaining({ code: 'invalid_caveat' }),
    );
  });
});

describe('services', () => {
  it.each([
    ['a:0', 'a'],
    ['a:0,b:1,c:0', 'c'],
    ['forecast/v1/daily:2', 'forecast/v1/daily'],
  ])('accepts the value %j for service %j', (value, service) => {
    expect(
      servicesSatisfier.satisfies({ condition: 'services', value }, { service, now: 0 }),
    ).toEqual(ok(true));
  });

  it.each(['', ':0', 'a', 'a:', 'a:b', ',,', 'a:0,a:1', 'a:-1'])(
    'rejects the value %j (Aperture service_test)',
    (value) => {
      expect(code([`services=${value}`])).toBe('invalid_caveat');
    },
  );

  it('requires the requested service', () => {
    expect(code(['services=svc:0'])).toBe('ok');
    expect(code(['services=other:0,svc:1'])).toBe('ok');
    expect(code(['services=other:0'])).toBe('wrong_service');
    // Caveats only restrict: without a services caveat nothing limits the service.
    expect(verifyCaveats([], request)).toEqual(ok({}));
  });

  it('allows repeats that drop services or lower a tier, not ones that add or raise', () => {
    expect(code(['services=svc:1,b:0', 'services=svc:1'])).toBe('ok');
    expect(code(['services=svc:1', 'services=svc:0'])).toBe('ok');
    expect(code(['services=svc:0', 'services=svc:0,b:0'])).toBe('caveat_not_satisfied');
    expect(code(['services=svc:0', 'services=svc:1'])).toBe('caveat_not_satisfied');
  });

  it('reports the narrowest service list with tiers', () => {
    const result = verifyCaveats(['services=svc:2,b:0', 'services=svc:1'], request);
    expect(result).toEqual(ok({ services: [{ name: 'svc', tier: 1 }] }));
  });
});

describe('<service>_capabilities', () => {
  it('checks the requested capability for the requested service only', () => {
    const caveats = ['services=svc:0,b:0', 'svc_capabilities=add,subtract', 'b_capabilities='];
    expect(code(caveats, { capability: 'add' })).toBe('ok');
    expect(code(caveats, { capability: 'divide' })).toBe('caveat_not_satisfied');
    expect(code(caveats)).toBe('ok');
    expect(code(['services=svc:0', 'svc_capabilities='], { capability: 'add' })).toBe(
      'caveat_not_satisfied',
    );
    expect(code(['services=svc:0', 'svc_capabilities=a,,b'])).toBe('invalid_caveat');
  });

  it('allows subsets only', () => {
    expect(capabilitiesSatisfier.narrows(cav('x_capabilities=a,b'), cav('x_capabilities=b'))).toBe(
      true,
    );
    expect(capabilitiesSatisfier.narrows(cav('x_capabilities=a'), cav('x_capabilities=a,b'))).toBe(
      false,
    );
    expect(
      code(['services=svc:0', 'svc_capabilities=a', 'svc_capabilities=a,b'], { capability: 'a' }),
    ).toBe('caveat_not_satisfied');
  });
});

describe('<service>_valid_until', () => {
  it('holds while now < value (Aperture satisfier_test)', () => {
    expect(code(['services=svc:0', 'svc_valid_until=2000'])).toBe('ok');
    expect(code(['services=svc:0', 'svc_valid_until=1000'])).toBe('token_expired');
    expect(code(['services=svc:0', 'svc_valid_until=2000', 'svc_valid_until=1500'])).toBe('ok');
    expect(code(['services=svc:0', 'svc_valid_until=1500', 'svc_valid_until=2000'])).toBe(
      'caveat_not_satisfied',
    );
    expect(code(['services=svc:0', 'svc_valid_until=soon'])).toBe('invalid_caveat');
  });

  it('ignores other services and reports the requested service expiry', () => {
    const result = verifyCaveats(
      ['services=svc:0,b:0', 'b_valid_until=10', 'svc_valid_until=5000', 'svc_valid_until=4000'],
      request,
    );
    expect(result.ok && result.value.validUntil).toBe(4000);
    expect(validUntilSatisfier.handles('_valid_until')).toBe(false);
  });
});

describe('tollway_paths', () => {
  const paths = (value: string, path: string | undefined) =>
    code(['services=svc:0', `tollway_paths=${value}`], path === undefined ? {} : { path });

  it('matches prefixes on a segment boundary', () => {
    expect(paths('/v1', '/v1')).toBe('ok');
    expect(paths('/v1', '/v1/x')).toBe('ok');
    expect(paths('/v1', '/v10')).toBe('caveat_not_satisfied');
    expect(paths('/v1/', '/v1')).toBe('caveat_not_satisfied');
    expect(paths('/v1/', '/v1/x')).toBe('ok');
    expect(paths('/', '/anything')).toBe('ok');
    expect(paths('/a,/v1', '/v1/forecast')).toBe('ok');
    expect(paths('', '/v1')).toBe('caveat_not_satisfied');
  });

  it('refuses dot segments and requests without a path', () => {
    expect(paths('/v1', '/v1/../admin')).toBe('caveat_not_satisfied');
    expect(paths('/v1', '/v1/%2E%2e/admin')).toBe('caveat_not_satisfied');
    const noPath = verifyCaveats(['services=svc:0', 'tollway_paths=/v1'], {
      service: 'svc',
      now: 0,
    });
    expect(noPath.ok).toBe(false);
    expect(paths('v1', '/v1')).toBe('invalid_caveat');
    expect(paths('/v1?x=1', '/v1')).toBe('invalid_caveat');
    expect(paths('/v1/..', '/v1')).toBe('invalid_caveat');
  });

  it('narrows only to prefixes inside earlier ones', () => {
    const n = (a: string, b: string) =>
      pathsSatisfier.narrows(cav(`tollway_paths=${a}`), cav(`tollway_paths=${b}`));
    expect(n('/v1', '/v1/forecast')).toBe(true);
    expect(n('/v1', '/v1/')).toBe(true);
    expect(n('/v1/', '/v1')).toBe(false);
    expect(n('/v1', '/v10')).toBe(false);
    expect(n('/a,/b', '/b/c')).toBe(true);
    expect(n('/a', '/a,/b')).toBe(false);
  });
});

describe('tollway_methods, tollway_uses, tollway_balance_msat', () => {
  it('checks methods case-insensitively and narrows to subsets', () => {
    expect(code(['services=svc:0', 'tollway_methods=get,head'])).toBe('ok');
    expect(code(['services=svc:0', 'tollway_methods=POST'])).toBe('caveat_not_satisfied');
    expect(code(['services=svc:0', 'tollway_methods=GET'], { method: 'get' })).toBe('ok');
    expect(
      methodsSatisfier.narrows(cav('tollway_methods=GET,POST'), cav('tollway_methods=post')),
    ).toBe(true);
    expect(
      methodsSatisfier.narrows(cav('tollway_methods=GET'), cav('tollway_methods=GET,POST')),
    ).toBe(false);
    expect(code(['services=svc:0', 'tollway_methods=G T'])).toBe('invalid_caveat');
  });

  it('surfaces the tightest limits and rejects raising them', () => {
    const result = verifyCaveats(
      [
        'services=svc:0',
        'tollway_uses=100',
        'tollway_uses=10',
        'tollway_balance_msat=5000000',
        'tollway_paths=/v1',
        'tollway_methods=get',
        'svc_capabilities=a',
      ],
      request,
    );
    expect(result).toEqual(
      ok({
        services: [{ name: 'svc', tier: 0 }],
        capabilities: ['a'],
        uses: 10,
        balanceMsat: 5_000_000n,
        paths: ['/v1'],
        methods: ['GET'],
      }),
    );
    expect(code(['services=svc:0', 'tollway_uses=10', 'tollway_uses=11'])).toBe(
      'caveat_not_satisfied',
    );
    expect(code(['services=svc:0', 'tollway_balance_msat=1', 'tollway_balance_msat=2'])).toBe(
      'caveat_not_satisfied',
    );
    expect(code(['services=svc:0', 'tollway_uses=-1'])).toBe('invalid_caveat');
    expect(code(['services=svc:0', 'tollway_balance_msat=1.5'])).toBe('invalid_caveat');
  });
});

describe('unknown caveats, strict mode, extra satisfiers', () => {
  const constraint = 'loop_out_monthly_volume_sats=200000000';

  it('skips unknown and malformed caveats by default, rejects them in strict mode', () => {
    expect(code(['services=svc:0', constraint, 'time<123'])).toBe('ok');
    expect(code(['services=svc:0', constraint], {}, true)).toBe('unknown_caveat');
    expect(code(['services=svc:0', 'time<123'], {}, true)).toBe('invalid_caveat');
  });

  it('ignores a client-appended preimage caveat, even in strict mode', () => {
    expect(code(['services=svc:0', `preimage=${'ab'.repeat(32)}`], {}, true)).toBe('ok');
  });

  it('runs extra satisfiers, including their narrowing rule', () => {
    const volume: CaveatSatisfier = {
      handles: (condition) => condition === 'loop_out_monthly_volume_sats',
      satisfies: (caveat) =>
        /^\d+$/.test(caveat.value) ? ok(true) : fail('invalid_caveat', 'bad volume'),
      narrows: (previous, next) => BigInt(next.value) <= BigInt(previous.value),
    };
    const run = (caveats: string[]) => {
      const result = verifyCaveats(caveats, request, { strict: true, satisfiers: [volume] });
      return result.ok ? 'ok' : result.code;
    };
    expect(run(['services=svc:0', constraint])).toBe('ok');
    expect(run(['services=svc:0', constraint, 'loop_out_monthly_volume_sats=300000000'])).toBe(
      'caveat_not_satisfied',
    );
    expect(run(['services=svc:0', 'loop_out_monthly_volume_sats=x'])).toBe('invalid_caveat');
  });

  it('never lets added caveats turn a failing request into a passing one', () => {
    const caveatText = fc.oneof(
      fc.constantFrom(
        'services=svc:0',
        'services=svc:1,b:0',
        'services=b:0',
        'svc_capabilities=a,b',
        'svc_capabilities=a',
        'svc_capabilities=',
        'svc_valid_until=900',
        'svc_valid_until=1500',
        'svc_valid_until=3000',
        'tollway_paths=/v1',
        'tollway_paths=/v2,/v1/forecast',
        'tollway_methods=GET',
        'tollway_methods=POST',
        'tollway_uses=5',
        'tollway_uses=50',
        `preimage=${'00'.repeat(32)}`,
        'other=1',
        'junk',
      ),
      fc.string(),
    );
    const requests = fc.record({
      service: fc.constantFrom('svc', 'b'),
      now: fc.constantFrom(0, 1000, 2000),
      capability: fc.constantFrom('a', 'b', 'c'),
      path: fc.constantFrom('/v1/forecast', '/v2', '/v10'),
      method: fc.constantFrom('GET', 'POST'),
    });
    fc.assert(
      fc.property(
        fc.array(caveatText, { maxLength: 6 }),
        fc.array(caveatText, { minLength: 1, maxLength: 4 }),
        requests,
        fc.boolean(),
        (caveats, added, req, strict) => {
          const before = verifyCaveats(caveats, req, { strict });
          const after = verifyCaveats([...caveats, ...added], req, { strict });
          if (!before.ok) expect(after.ok).toBe(false);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('createServiceCaveats', () => {
  it('mints in Aperture order with constraints sorted by key', () => {
    expect(
      createServiceCaveats([
        {
          name: 'svc',
          tier: 0,
          capabilities: ['add', 'subtract'],
          constraints: { tollway_uses: '10', a_limit: '5', tollway_methods: 'GET' },
          validUntil: 4_102_444_800,
        },
        { name: 'b', tier: 1, capabilities: [] },
      ]),
    ).toEqual([
      'services=svc:0,b:1',
      'svc_capabilities=add,subtract',
      'a_limit=5',
      'tollway_methods=GET',
      'tollway_uses=10',
      'svc_valid_until=4102444800',
      'b_capabilities=',
    ]);
  });

  it('mints caveats that verifyCaveats reads back', () => {
    const caveats = createServiceCaveats([
      { name: 'svc', tier: 3, capabilities: ['a'], validUntil: 2000 },
    ]);
    expect(verifyCaveats(caveats, { ...request, capability: 'a' })).toEqual(
      ok({ services: [{ name: 'svc', tier: 3 }], capabilities: ['a'], validUntil: 2000 }),
    );
  });

  it.each([
    [[]],
    [[{ name: 'a,b', tier: 0 }]],
    [[{ name: 'a', tier: -1 }]],
    [[{ name: 'a', tier: 0, capabilities: ['x,y'] }]],
    [[{ name: 'a', tier: 0, constraints: { 'k=': 'v' } }]],
    [[{ name: 'a', tier: 0, validUntil: 1.5 }]],
  ])('rejects %j', (services) => {
    expect(() => createServiceCaveats(services)).toThrow(
      expect.objectContaining({ code: 'invalid_caveat' }),
    );
  });
});

function cav(text: string) {
  return parseCaveat(text);
}
