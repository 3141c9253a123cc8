import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  payL402,
  paywallRequest,
  responseOf,
} from '../../test/support/paywall.js';
import { bytesToHex } from '../internal/bytes.js';
import { decodeIdentifier } from '../l402/identifier.js';
import { parseMacaroon } from '../l402/macaroon.js';
import { createMemoryStore } from '../stores/memory.js';
import { createPaywall, type Paywall } from './paywall.js';
import { createMasterSecret } from './root-keys.js';
import type { Store } from './store.js';
import type { PaywallDecision } from './types.js';

let dev: ReturnType<typeof createDevSetup>;
let store: Store;
let paywall: Paywall;

beforeEach(() => {
  dev = createDevSetup();
  store = createMemoryStore();
  paywall = createPaywall({
    lightning: dev.shop,
    store,
    secrets: [createMasterSecret()],
    logger: createMemoryLogger(),
    rateLimits: { challenges: false },
  });
});
afterEach(async () => {
  await paywall.close();
  await dev.network.close();
});

/** The account of an L402 credential: its invoice's payment hash. */
function accountOf(authorization: string): string {
  const macaroon = parseMacaroon(authorization.slice('L402 '.length).split(':')[0] ?? '');
  return bytesToHex(decodeIdentifier(macaroon.identifier).paymentHash);
}

function passed(decision: PaywallDecision) {
  if (decision.kind !== 'pass') throw new Error(`expected a pass: ${decision.response.body}`);
  return decision;
}

describe('draws on a balance after the answer', () => {
  it('holds and settles further amounts against the credential account, exactly', async () => {
    const route = paywall.route({ service: 'socket', balance: '10 sat', price: '1 sat' });
    const unpaid = responseOf(await paywall.handle(paywallRequest('/socket'), route));
    const authorization = await payL402(unpaid, dev.agent);
    const request = {
      ...paywallRequest('/socket', { authorization: [authorization] }),
      reportsOutcome: true,
    };
    const decision = passed(await paywall.handle(request, route));
    decision.charge?.commit(101);
    const draw = decision.draw;
    expect(draw?.initialMsat).toBe(10_000n);
    const first = await draw?.hold(4_000n);
    expect(first?.remainingMsat).toBe(5_000n);
    // What is held counts: 1 sat charged, 4 held, so 6 do not fit, 5 do.
    expect(await draw?.hold(6_000n)).toBeUndefined();
    const second = await draw?.hold(5_000n);
    expect(second?.remainingMsat).toBe(0n);
    await first?.settle(2_500n);
    await second?.release();
    const usage = await store.getUsage(accountOf(authorization));
    expect(usage.spentMsat).toBe(3_500n);
    expect(usage.heldMsat).toBe(0n);
  });

  it('is absent for credentials that carry no balance', async () => {
    const route = paywall.route({ service: 'plain', price: '1 sat', uses: 2 });
    const unpaid = responseOf(await paywall.handle(paywallRequest('/plain'), route));
    const authorization = await payL402(unpaid, dev.agent);
    const request = {
      ...paywallRequest('/plain', { authorization: [authorization] }),
      reportsOutcome: true,
    };
    const decision = passed(await paywall.handle(request, route));
    expect(decision.draw).toBeUndefined();
    decision.charge?.release();
  });
});
