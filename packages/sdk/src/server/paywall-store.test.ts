import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  payL402,
  paymentOf,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { createMemoryStore } from '../stores/memory.js';
import { createSqliteStore } from '../stores/sqlite.js';
import { createPaywall } from './paywall.js';
import { createMasterSecret } from './root-keys.js';
import type { Store } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-paywall-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function sqlitePath(): string {
  files += 1;
  return join(dir, `paywall-${files}.sqlite`);
}

const secret = createMasterSecret();
let dev: ReturnType<typeof createDevSetup>;
const opened: Array<{ close(): Promise<void> }> = [];

beforeEach(() => {
  dev = createDevSetup();
});
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
  await dev.network.close();
});

function engine(store: Store) {
  const paywall = createPaywall({
    lightning: dev.shop,
    store,
    secrets: [secret],
    logger: createMemoryLogger(),
    rateLimits: { challenges: false },
  });
  opened.push(paywall);
  return paywall;
}

function sqlite(path: string): Store {
  const store = createSqliteStore({ path, revocationPollMs: 20 });
  opened.push(store);
  return store;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const stores = {
  memory: () => {
    const store = createMemoryStore();
    return { first: store, second: store };
  },
  sqlite: () => {
    const path = sqlitePath();
    return { first: sqlite(path), second: sqlite(path) };
  },
};

for (const [name, open] of Object.entries(stores)) {
  describe(`with the ${name} store`, () => {
    it('lets exactly 10 of 50 parallel requests through on a token with 10 uses, across two instances', async () => {
      const { first, second } = open();
      const [a, b] = [engine(first), engine(second)];
      const route = a.route({ price: '10 sat', uses: 10 });
      const challenge = responseOf(await a.handle(paywallRequest('/x'), route));
      const headers = { authorization: await payL402(challenge, dev.agent) };
      const decisions = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 === 0 ? a : b).handle(paywallRequest('/x', { headers }), route),
        ),
      );
      const passed = decisions.filter((decision) => decision.kind === 'pass');
      expect(passed).toHaveLength(10);
      const remaining = passed.map((decision) => paymentOf(decision).remainingUses).sort();
      expect(remaining).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const codes = decisions
        .filter((decision) => decision.kind === 'respond')
        .map((decision) => problemOf(responseOf(decision)).code);
      expect(new Set(codes)).toEqual(new Set(['uses_exhausted']));
    });

    it('refuses a token on this instance once another instance revoked it', async () => {
      const { first, second } = open();
      const [a, b] = [engine(first), engine(second)];
      const route = a.route({ price: '10 sat' });
      const challenge = responseOf(await a.handle(paywallRequest('/x'), route));
      const request = paywallRequest('/x', {
        headers: { authorization: await payL402(challenge, dev.agent) },
      });
      const { tokenId = '' } = paymentOf(await b.handle(request, route));
      await a.revoke(tokenId, 'refund');
      await waitFor(async () => (await b.handle(request, route)).kind === 'respond');
      expect(problemOf(responseOf(await b.handle(request, route))).code).toBe('token_revoked');

      // A fresh instance loads the revocation at start.
      const c = engine(second);
      expect(problemOf(responseOf(await c.handle(request, route))).code).toBe('token_revoked');
    });

    it('records the settlement and the token in the background, once', async () => {
      const { first } = open();
      const paywall = engine(first);
      const route = paywall.route({ service: 'forecast', price: '21 sat', validFor: '1h' });
      const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
      const request = paywallRequest('/x', {
        headers: { authorization: await payL402(challenge, dev.agent) },
      });
      const { tokenId = '' } = paymentOf(await paywall.handle(request, route));
      paymentOf(await paywall.handle(request, route));
      await paywall.close();
      const settlements = await first.listSettlements({ service: 'forecast' });
      expect(settlements).toHaveLength(1);
      expect(settlements[0]).toMatchObject({ tokenId, amount: 21_000n, protocol: 'l402' });
      const token = await first.getToken(tokenId);
      expect(token?.expiresAt).toBeGreaterThan(Date.now());
      const revenue = await first.revenue({ bucket: 'day' });
      expect(revenue.map((row) => row.amount)).toEqual([21_000n]);
    });

    it('records the settlement on a later request when the store failed on the first', async () => {
      const { first } = open();
      let failures = 1;
      const paywall = engine({
        ...first,
        recordSettlement: (settlement) =>
          failures-- > 0
            ? Promise.reject(new Error('the database system is shutting down'))
            : first.recordSettlement(settlement),
      });
      const route = paywall.route({ service: 'forecast', price: '21 sat', validFor: '1h' });
      const challenge = responseOf(await paywall.handle(paywallRequest('/x'), route));
      const request = paywallRequest('/x', {
        headers: { authorization: await payL402(challenge, dev.agent) },
      });
      paymentOf(await paywall.handle(request, route));
      await waitFor(async () => failures === 0);
      paymentOf(await paywall.handle(request, route));
      await paywall.close();
      expect(await first.listSettlements({ service: 'forecast' })).toHaveLength(1);
    });
  });
}
