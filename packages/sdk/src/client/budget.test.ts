import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BASE, DAY, HOUR, rejects } from '../../test/client/store-suite.js';
import { isTollwayError } from '../errors.js';
import { fixedRate } from '../money.js';
import { createBudget } from './budget.js';
import { createMemoryClientStore } from './memory-store.js';
import type { SpendRequest } from './types.js';

const API = 'https://api.example.com';
const OTHER = 'https://other.example.org';

function request(amountMsat: bigint, fields: Partial<SpendRequest> = {}): SpendRequest {
  return {
    origin: API,
    url: `${API}/forecast`,
    protocol: 'l402',
    amountMsat,
    maxFeeMsat: 0n,
    ...fields,
  };
}

/** A clock the test moves by hand. */
function clock(start = BASE) {
  let t = start;
  return { now: () => t, set: (at: number) => (t = at), advance: (ms: number) => (t += ms) };
}

/** Reserves and commits `amountMsat` at once. */
async function spend(
  budget: ReturnType<typeof createBudget>,
  amountMsat: bigint,
  fields: Partial<SpendRequest> = {},
) {
  const held = await budget.reserve(request(amountMsat, fields));
  await budget.commit(held, { amountMsat, feeMsat: 0n });
}

describe('per-payment caps', () => {
  it('refuses a price above the per-request cap and a fee allowance above the fee cap', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { perRequest: '100 sat', maxFee: '10 sat' },
    });
    await expect(budget.reserve(request(100_000n, { maxFeeMsat: 10_000n }))).resolves.toMatchObject(
      {
        heldMsat: 110_000n,
      },
    );
    await rejects(budget.reserve(request(100_001n)), 'over_price');
    await rejects(budget.reserve(request(1n, { maxFeeMsat: 10_001n })), 'fee_too_high');
    await rejects(budget.reserve(request(-1n)), 'invalid_amount');
  });
});

describe('refusal messages', () => {
  /** The message of the refusal `promise` ends with. */
  async function refusal(promise: Promise<unknown>): Promise<string> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isTollwayError(error)) throw new Error('expected a refusal');
    return error.message;
  }

  it('speak in sats, or in dollars for a dollar cap, not in msat', async () => {
    const store = createMemoryClientStore();
    const sats = createBudget({
      store,
      limits: { perRequest: '10 sats', maxFee: 2000n, day: '15' },
    });
    expect(await refusal(sats.reserve(request(10_500n)))).toBe(
      'price 10.5 sat is above the per-request cap of agent (10 sats)',
    );
    expect(await refusal(sats.reserve(request(1000n, { maxFeeMsat: 3000n })))).toBe(
      'fee allowance 3 sat is above the fee cap of agent (2 sat)',
    );
    const dollars = createBudget({
      store,
      path: 'dollars',
      limits: { perRequest: '$0.01', day: '5 sat' },
      rates: fixedRate('100000'),
    });
    expect(await refusal(dollars.reserve(request(11_000n)))).toBe(
      'price 11 sat is above the per-request cap of dollars ($0.01, 10 sat now)',
    );
    await spend(dollars, 1000n);
    await spend(dollars, 1000n);
    await spend(dollars, 1000n);
    await spend(dollars, 1000n);
    expect(await refusal(dollars.reserve(request(2000n)))).toMatch(
      /^budget dollars has 1 sat left in its day window/,
    );
  });
});

describe('rolling windows with a controlled clock', () => {
  for (const [window, length] of [
    ['hour', HOUR],
    ['day', DAY],
    ['month', 30 * DAY],
  ] as const) {
    it(`frees ${window} spend exactly ${length} ms after it was committed`, async () => {
      const t = clock();
      const budget = createBudget({
        store: createMemoryClientStore(),
        limits: { [window]: '10 sat' },
        now: t.now,
      });
      await spend(budget, 10_000n);
      t.set(BASE + length - 1);
      await rejects(budget.reserve(request(1n)), 'budget_exceeded');
      expect(await budget.check(request(1n))).toMatchObject({ ok: false, code: 'budget_exceeded' });
      t.set(BASE + length);
      expect(await budget.check(request(10_000n))).toEqual({ ok: true });
      await spend(budget, 10_000n);
    });
  }

  it('never frees the total window', async () => {
    const t = clock();
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { total: '10 sat' },
      now: t.now,
    });
    await spend(budget, 10_000n);
    t.advance(365 * DAY);
    await rejects(budget.reserve(request(1n)), 'budget_exceeded');
  });

  it('counts a per-origin cap per origin and the global cap across origins', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '15 sat', perOrigin: { day: '10 sat' } },
      now: () => BASE,
    });
    await spend(budget, 8_000n);
    const error = await budget.reserve(request(3_000n)).catch((e: unknown) => e);
    expect(isTollwayError(error, 'budget_exceeded') && error.details).toEqual({
      budget: 'agent',
      window: 'day',
      origin: API,
      remainingMsat: 2_000n,
    });
    await spend(budget, 7_000n, { origin: OTHER });
    const global = await budget.reserve(request(1n)).catch((e: unknown) => e);
    expect(isTollwayError(global, 'budget_exceeded') && global.details).toEqual({
      budget: 'agent',
      window: 'day',
      remainingMsat: 0n,
    });
  });

  it('holds the price plus the fee allowance, and commit frees the fee not spent', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '100 sat' },
      now: () => BASE,
    });
    const held = await budget.reserve(request(50_000n, { maxFeeMsat: 5_000n }));
    expect(held.heldMsat).toBe(55_000n);
    expect(await budget.status()).toEqual([
      {
        budget: 'agent',
        window: 'day',
        limitMsat: 100_000n,
        spentMsat: 0n,
        heldMsat: 55_000n,
        remainingMsat: 45_000n,
      },
    ]);
    await budget.commit(held, { amountMsat: 50_000n, feeMsat: 1_200n });
    expect(await budget.status()).toEqual([
      {
        budget: 'agent',
        window: 'day',
        limitMsat: 100_000n,
        spentMsat: 51_200n,
        heldMsat: 0n,
        remainingMsat: 48_800n,
      },
    ]);
    // Idempotent: neither a second commit nor a late release changes anything.
    await budget.commit(held, { amountMsat: 50_000n, feeMsat: 5_000n });
    await budget.release(held);
    expect((await budget.status())[0]?.spentMsat).toBe(51_200n);
  });

  it('releases a hold once, however often release is called', async () => {
    const budget = createBudget({ store: createMemoryClientStore(), limits: { total: '10 sat' } });
    const held = await budget.reserve(request(10_000n));
    await budget.release(held);
    await budget.release(held);
    const again = await budget.reserve(request(10_000n));
    await budget.release(held);
    expect((await budget.status())[0]).toMatchObject({ heldMsat: 10_000n, remainingMsat: 0n });
    await budget.release(again);
  });

  it('holds under a property: committed spend plus holds never pass a window limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            amount: fc.bigInt({ min: 0n, max: 4_000n }),
            fee: fc.bigInt({ min: 0n, max: 500n }),
            outcome: fc.constantFrom('commit', 'release', 'open'),
            feeShare: fc.bigInt({ min: 0n, max: 100n }),
            wait: fc.integer({ min: 0, max: 2 * HOUR }),
          }),
          { maxLength: 40 },
        ),
        async (steps) => {
          const t = clock();
          const budget = createBudget({
            store: createMemoryClientStore(),
            limits: { hour: '5 sat', day: '20 sat' },
            now: t.now,
          });
          for (const step of steps) {
            t.advance(step.wait);
            const held = await budget
              .reserve(request(step.amount, { maxFeeMsat: step.fee }))
              .catch((e: unknown) => {
                if (!isTollwayError(e, 'budget_exceeded')) throw e;
                return undefined;
              });
            if (held !== undefined && step.outcome === 'commit') {
              await budget.commit(held, {
                amountMsat: step.amount,
                feeMsat: (step.fee * step.feeShare) / 100n,
              });
            }
            if (held !== undefined && step.outcome === 'release') await budget.release(held);
            for (const window of await budget.status()) {
              expect(window.spentMsat + window.heldMsat).toBeLessThanOrEqual(window.limitMsat);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('nesting', () => {
  it("counts a child's spend in its parent and blocks a sibling once the parent is spent", async () => {
    const store = createMemoryClientStore();
    const org = createBudget({ store, path: 'org', limits: { day: '10 sat' }, now: () => BASE });
    const a = org.child({ path: 'task-a', limits: { day: '8 sat' }, tags: { task: 'a' } });
    const b = org.child({ path: 'task-b' });
    expect(a.path).toBe('org/task-a');
    await spend(a, 8_000n);
    await rejects(a.reserve(request(1n)), 'budget_exceeded');
    await spend(b, 2_000n);
    const error = await b.reserve(request(1n)).catch((e: unknown) => e);
    expect(isTollwayError(error, 'budget_exceeded') && error.details).toMatchObject({
      budget: 'org',
      remainingMsat: 0n,
    });
    expect(await org.status()).toEqual([
      {
        budget: 'org',
        window: 'day',
        limitMsat: 10_000n,
        spentMsat: 10_000n,
        heldMsat: 0n,
        remainingMsat: 0n,
      },
    ]);
  });

  it('clamps a child limit that is larger than its parent', async () => {
    const org = createBudget({
      store: createMemoryClientStore(),
      path: 'org',
      limits: { day: '10 sat', perRequest: '4 sat', perOrigin: { hour: '6 sat' } },
    });
    const task = org.child({
      path: 'task',
      limits: { day: '50 sat', perRequest: '9 sat', hour: '7 sat', perOrigin: { hour: '60 sat' } },
    });
    expect(await task.status(API)).toEqual([
      {
        budget: 'org',
        window: 'request',
        limitMsat: 4_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 4_000n,
      },
      {
        budget: 'org',
        window: 'day',
        limitMsat: 10_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 10_000n,
      },
      {
        budget: 'org',
        window: 'hour',
        origin: API,
        limitMsat: 6_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 6_000n,
      },
      {
        budget: 'org/task',
        window: 'request',
        limitMsat: 4_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 4_000n,
      },
      {
        budget: 'org/task',
        window: 'hour',
        limitMsat: 7_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 7_000n,
      },
      {
        budget: 'org/task',
        window: 'day',
        limitMsat: 10_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 10_000n,
      },
      {
        budget: 'org/task',
        window: 'hour',
        origin: API,
        limitMsat: 6_000n,
        spentMsat: 0n,
        heldMsat: 0n,
        remainingMsat: 6_000n,
      },
    ]);
    await rejects(task.reserve(request(4_001n)), 'over_price');
  });

  it('holds in the child and every ancestor atomically: all or nothing', async () => {
    const store = createMemoryClientStore();
    const org = createBudget({ store, path: 'org', limits: { total: '10 sat' } });
    const agent = org.child({ path: 'agent', limits: { total: '20 sat' } });
    const task = agent.child({ path: 'task', limits: { total: '5 sat' } });
    await spend(agent, 6_000n);
    await rejects(task.reserve(request(5_000n)), 'budget_exceeded');
    expect((await task.status()).map((w) => [w.budget, w.heldMsat, w.spentMsat])).toEqual([
      ['org', 0n, 6_000n],
      ['org/agent', 0n, 6_000n],
      ['org/agent/task', 0n, 0n],
    ]);
  });

  it('merges tags into the reservation for the ledger, and refuses bad paths and stores', async () => {
    const store = createMemoryClientStore();
    const org = createBudget({ store, path: 'org', tags: { org: 'acme', agent: 'x' } });
    const task = org.child({ path: 'task-42', tags: { agent: 'agent-7', task: '42' } });
    const held = await task.reserve(request(1n, { tags: { tool: 'search' } }));
    expect(held.request.tags).toEqual({
      org: 'acme',
      agent: 'agent-7',
      task: '42',
      tool: 'search',
    });
    expect(() => org.child({ path: 'a/b' })).toThrow(/path/);
    expect(() => org.child({ path: '' })).toThrow(/path/);
    expect(() =>
      createBudget({ store: createMemoryClientStore(), parent: org, path: 'x' }),
    ).toThrow(/store/);
    await expect(
      createBudget({ store, parent: org, path: 'y' }).reserve(request(1n)),
    ).resolves.toBeDefined();
  });
});

describe('allow and deny lists', () => {
  const allowed = async (
    policy: Parameters<typeof createBudget>[0]['policy'],
    fields: Partial<SpendRequest>,
  ) => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      ...(policy ? { policy } : {}),
    });
    const result = await budget.check(request(1n, fields));
    return result.ok ? 'ok' : result.code;
  };

  it('matches origins exactly, by host, or by wildcard subdomain; deny wins', async () => {
    const policy = {
      allowOrigins: ['https://api.example.com', '*.trusted.dev', 'plain.example.net'],
    };
    expect(await allowed(policy, { origin: 'https://api.example.com' })).toBe('ok');
    expect(await allowed(policy, { origin: 'http://api.example.com' })).toBe('origin_denied');
    expect(await allowed(policy, { origin: 'https://api.example.com:8443' })).toBe('origin_denied');
    expect(await allowed(policy, { origin: 'https://a.b.trusted.dev' })).toBe('ok');
    expect(await allowed(policy, { origin: 'https://trusted.dev' })).toBe('origin_denied');
    expect(await allowed(policy, { origin: 'https://eviltrusted.dev' })).toBe('origin_denied');
    expect(await allowed(policy, { origin: 'http://plain.example.net:8080' })).toBe('ok');
    expect(
      await allowed(
        { ...policy, denyOrigins: ['https://*.trusted.dev'] },
        { origin: 'https://x.trusted.dev' },
      ),
    ).toBe('origin_denied');
    expect(
      await allowed({ denyOrigins: ['127.0.0.1:8080'] }, { origin: 'http://127.0.0.1:8080' }),
    ).toBe('origin_denied');
    expect(
      await allowed({ denyOrigins: ['127.0.0.1:8080'] }, { origin: 'http://127.0.0.1:9090' }),
    ).toBe('ok');
  });

  it('matches payees in any case; an unknown payee fails an allow list', async () => {
    const pubkey = `02${'ab'.repeat(32)}`;
    expect(await allowed({ allowPayees: [pubkey.toUpperCase()] }, { payee: pubkey })).toBe('ok');
    expect(await allowed({ allowPayees: [pubkey] }, { payee: `03${'ab'.repeat(32)}` })).toBe(
      'payee_denied',
    );
    expect(await allowed({ allowPayees: [pubkey] }, {})).toBe('payee_denied');
    expect(await allowed({ denyPayees: ['0xAbC'] }, { payee: '0xabc' })).toBe('payee_denied');
    expect(await allowed({ denyPayees: ['0xAbC'] }, {})).toBe('ok');
  });

  it("applies every ancestor's lists to a child", async () => {
    const org = createBudget({
      store: createMemoryClientStore(),
      policy: { denyOrigins: [OTHER] },
    });
    const task = org.child({ path: 't', policy: { allowOrigins: [OTHER, API] } });
    await rejects(task.reserve(request(1n, { origin: OTHER })), 'origin_denied');
    await expect(task.reserve(request(1n))).resolves.toBeDefined();
  });
});

describe('approval', () => {
  it('asks above the threshold, sync or async, and releases the hold when denied', async () => {
    const asked: bigint[] = [];
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { total: '200 sat' },
      policy: {
        approveAbove: '10 sat',
        approve: async (r) => {
          asked.push(r.amountMsat);
          return r.amountMsat <= 50_000n;
        },
      },
    });
    await budget.reserve(request(10_000n));
    await budget.reserve(request(50_000n));
    await rejects(budget.reserve(request(50_001n)), 'approval_denied');
    expect(asked).toEqual([50_000n, 50_001n]);
    expect((await budget.status())[0]?.heldMsat).toBe(60_000n);
    expect(await budget.check(request(40_000n))).toEqual({ ok: true });
    expect(asked).toHaveLength(2);
  });

  it('takes a sync answer, treats a throw or a missing callback as no, and asks every time without a threshold', async () => {
    const always = createBudget({
      store: createMemoryClientStore(),
      policy: { approve: (r) => r.origin === API },
    });
    await expect(always.reserve(request(1n))).resolves.toBeDefined();
    await rejects(always.reserve(request(1n, { origin: OTHER })), 'approval_denied');
    const throwing = createBudget({
      store: createMemoryClientStore(),
      policy: {
        approve: () => {
          throw new Error('operator unreachable');
        },
      },
    });
    const error = await throwing.reserve(request(1n)).catch((e: unknown) => e);
    expect(isTollwayError(error, 'approval_denied') && (error.cause as Error).message).toBe(
      'operator unreachable',
    );
    const missing = createBudget({
      store: createMemoryClientStore(),
      policy: { approveAbove: 1000n },
    });
    await expect(missing.reserve(request(1000n))).resolves.toBeDefined();
    await rejects(missing.reserve(request(1001n)), 'approval_denied');
  });
});

describe('kill switch', () => {
  it('stops a budget and its descendants until enabled again', async () => {
    const store = createMemoryClientStore();
    const org = createBudget({ store, path: 'org' });
    const task = org.child({ path: 'task' });
    await org.disable();
    await rejects(task.reserve(request(1n)), 'payments_disabled');
    expect(await org.check(request(1n))).toMatchObject({ ok: false, code: 'payments_disabled' });
    await task.disable();
    await org.enable();
    await expect(org.reserve(request(1n))).resolves.toBeDefined();
    await rejects(task.reserve(request(1n)), 'payments_disabled');
    await task.enable();
    await expect(task.reserve(request(1n))).resolves.toBeDefined();
  });
});

describe('limits in USD', () => {
  it('converts dollar limits with the rate source, rounding down, and records the rate', async () => {
    // $5 at 50,000 USD/BTC is 0.0001 BTC = 10,000 sat.
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '$5', perRequest: '$0.03' },
      rates: fixedRate('50000'),
      now: () => BASE,
    });
    const held = await budget.reserve(request(60_000n));
    expect(held.rate).toBe('usd_per_btc=50000');
    // $0.03 = 60 sat exactly at this rate: one msat more is over the cap.
    await rejects(budget.reserve(request(60_001n)), 'over_price');
    expect((await budget.status()).find((w) => w.window === 'day')?.limitMsat).toBe(10_000_000n);
    const fractional = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '$1' },
      rates: fixedRate('64250.75'),
    });
    expect((await fractional.reserve(request(1n))).rate).toBe('usd_per_btc=64250.75');
    // $1 / 64250.75 USD/BTC = 1556402.07… msat, rounded down.
    expect((await fractional.status())[0]?.limitMsat).toBe(1_556_402n);
  });

  it('needs a rate source, which a child inherits', () => {
    expect(() => createBudget({ store: createMemoryClientStore(), limits: { day: '$5' } })).toThrow(
      /rate/,
    );
    const store = createMemoryClientStore();
    const org = createBudget({ store, rates: fixedRate('50000') });
    expect(() => org.child({ path: 't', limits: { day: '$1' } })).not.toThrow();
    expect(() => createBudget({ store, limits: { day: '5 parsecs' } })).toThrow(/unit/);
    expect(() => createBudget({ store, limits: { day: -1n } })).toThrow(/negative/);
  });

  it('refuses to pay with price_unavailable when the rate source fails', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '$5' },
      rates: { usdPerBtc: () => Promise.reject(new Error('exchange down')) },
    });
    await rejects(budget.reserve(request(1n)), 'price_unavailable');
    expect(await budget.check(request(1n))).toMatchObject({ ok: false, code: 'price_unavailable' });
  });

  it('leaves requests without a dollar limit free of any rate', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { day: '10 sat' },
      rates: fixedRate('50000'),
    });
    expect((await budget.reserve(request(1n))).rate).toBeUndefined();
  });
});

describe('check (dry run)', () => {
  it('runs every check but holds nothing', async () => {
    const budget = createBudget({
      store: createMemoryClientStore(),
      limits: { total: '10 sat', perRequest: '8 sat' },
    });
    expect(await budget.check(request(8_000n))).toEqual({ ok: true });
    expect(await budget.check(request(9_000n))).toMatchObject({ ok: false, code: 'over_price' });
    expect(await budget.check(request(-1n))).toMatchObject({ ok: false, code: 'invalid_amount' });
    expect((await budget.status()).find((w) => w.window === 'total')?.heldMsat).toBe(0n);
    await budget.reserve(request(8_000n));
    expect(await budget.check(request(3_000n))).toMatchObject({
      ok: false,
      code: 'budget_exceeded',
      message: 'budget agent has 2 sat left in its total window',
    });
  });
});
