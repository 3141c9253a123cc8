import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createDevSetup,
  createMemoryLogger,
  headerValues,
  offersOf,
  paymentOf,
  paywallRequest,
  problemOf,
  responseOf,
} from '../../test/support/paywall.js';
import { decodeInvoice } from '../lightning/bolt11.js';
import { type PaymentChallenge, parsePaymentChallenges } from '../mpp/challenge.js';
import { formatPaymentCredential, type PaymentPayload } from '../mpp/credential.js';
import { parsePaymentReceipt } from '../mpp/receipt.js';
import { decodeSessionRequest } from '../mpp/session-request.js';
import { createMemoryStore } from '../stores/memory.js';
import { createPaywall } from './paywall.js';
import { createMasterSecret } from './root-keys.js';
import type { PaywallResponse } from './types.js';

let dev: ReturnType<typeof createDevSetup>;
beforeEach(() => {
  dev = createDevSetup();
});
afterEach(async () => {
  await dev.network.close();
});

function setup() {
  const store = createMemoryStore();
  const paywall = createPaywall({
    lightning: dev.shop,
    store,
    secrets: [createMasterSecret()],
    logger: createMemoryLogger(),
    rateLimits: { challenges: false },
    sessions: { idleTimeout: 2 },
  });
  const route = paywall.route({ service: 'llm', price: '10 sat', balance: '50 sat' });
  const handle = (authorization?: string) =>
    paywall.handle(
      paywallRequest('/chat', authorization === undefined ? {} : { headers: { authorization } }),
      route,
    );
  return { store, paywall, route, handle };
}

/** The session challenge of a 402. */
function sessionOf(response: PaywallResponse): PaymentChallenge {
  const found = parsePaymentChallenges(headerValues(response, 'www-authenticate')).find(
    (challenge) => challenge.intent === 'session',
  );
  if (found === undefined) throw new Error('no session challenge');
  return found;
}

function credential(challenge: PaymentChallenge, payload: PaymentPayload): string {
  return formatPaymentCredential({ challenge, payload });
}

/** Pays a session challenge's deposit invoice from the agent; returns the preimage. */
async function payDeposit(challenge: PaymentChallenge): Promise<string> {
  const invoice = decodeSessionRequest(challenge.request).depositInvoice ?? '';
  return (await dev.agent.payInvoice({ paymentRequest: invoice })).preimage;
}

/** An amountless invoice of the agent's, for refunds. */
async function returnInvoice(): Promise<string> {
  return (await dev.agent.createInvoice({ amountMsat: 0n, expirySeconds: 86_400 })).paymentRequest;
}

describe('MPP sessions', () => {
  it('offers a session on a route that sells a balance, its deposit the 402’s shared invoice', async () => {
    const { handle } = setup();
    const offer = responseOf(await handle());
    const session = sessionOf(offer);
    const request = decodeSessionRequest(session.request);
    expect(request).toMatchObject({ amountSat: 10n, depositAmountSat: 50n, idleTimeoutSeconds: 2 });
    expect(request.depositInvoice).toBe(offersOf(offer).l402.invoice);
    expect(decodeInvoice(request.depositInvoice ?? '').amountMsat).toBe(50_000n);
  });

  it('opens, draws, tops up and closes with the unspent deposit refunded to the return invoice', async () => {
    const { handle, store } = setup();
    const offer = responseOf(await handle());
    const challenge = sessionOf(offer);
    const preimage = await payDeposit(challenge);
    const sessionId = decodeSessionRequest(challenge.request).paymentHash;
    const open = credential(challenge, {
      action: 'open',
      preimage,
      returnInvoice: await returnInvoice(),
    });
    expect(paymentOf(await handle(open)).remainingBalanceMsat).toBe(40_000n);
    const bearer = credential(challenge, { action: 'bearer', sessionId, preimage });
    expect(paymentOf(await handle(bearer)).remainingBalanceMsat).toBe(30_000n);
    // A repeated open draws from the session it opened.
    expect(paymentOf(await handle(open)).remainingBalanceMsat).toBe(20_000n);

    const fresh = sessionOf(responseOf(await handle()));
    const topUpPreimage = await payDeposit(fresh);
    const topUp = credential(fresh, { action: 'topUp', sessionId, topUpPreimage });
    const credited = responseOf(await handle(topUp));
    expect([credited.status, JSON.parse(credited.body)]).toEqual([200, { status: 'ok' }]);
    // The same top-up again credits nothing.
    expect(responseOf(await handle(topUp)).status).toBe(200);
    expect((await store.getSession(sessionId))?.depositMsat).toBe(100_000n);
    expect(paymentOf(await handle(bearer)).remainingBalanceMsat).toBe(60_000n);

    const before = (await dev.agent.getBalance()).msat;
    const closed = responseOf(
      await handle(credential(challenge, { action: 'close', sessionId, preimage })),
    );
    expect(JSON.parse(closed.body)).toEqual({
      status: 'closed',
      refundSats: 60,
      refundStatus: 'succeeded',
    });
    expect(parsePaymentReceipt(headerValues(closed, 'payment-receipt')[0] ?? '')).toMatchObject({
      reference: sessionId,
      refundSats: 60n,
      refundStatus: 'succeeded',
    });
    expect((await dev.agent.getBalance()).msat).toBe(before + 60_000n);
    const after = responseOf(await handle(bearer));
    expect([after.status, problemOf(after).code]).toEqual([401, 'session_closed']);
    // The L402 token of the same deposit cannot draw what was refunded.
    const token = responseOf(await handle(`L402 ${offersOf(offer).l402.macaroon}:${preimage}`));
    expect([token.status, problemOf(token).code]).toEqual([402, 'balance_exhausted']);
    expect((await store.getUsage(sessionId)).spentMsat).toBe(100_000n);
    // Closing again tells how the refund went, and refunds nothing more.
    const again = responseOf(
      await handle(credential(challenge, { action: 'close', sessionId, preimage })),
    );
    expect(JSON.parse(again.body)).toMatchObject({ refundSats: 60, refundStatus: 'succeeded' });
    expect((await dev.agent.getBalance()).msat).toBe(before + 60_000n);
  });

  it('closes an idle session and refunds it, exactly the unspent deposit', async () => {
    const { handle, paywall, store } = setup();
    await paywall.init();
    const challenge = sessionOf(responseOf(await handle()));
    const preimage = await payDeposit(challenge);
    const sessionId = decodeSessionRequest(challenge.request).paymentHash;
    const before = (await dev.agent.getBalance()).msat;
    await handle(
      credential(challenge, { action: 'open', preimage, returnInvoice: await returnInvoice() }),
    );
    await vi.waitFor(
      async () => expect((await store.getSession(sessionId))?.refundStatus).toBe('succeeded'),
      {
        timeout: 6000,
        interval: 200,
      },
    );
    expect((await dev.agent.getBalance()).msat).toBe(before + 40_000n);
    await paywall.close();
  });

  it('refuses a return invoice with an amount, and bearer credentials of sessions never opened', async () => {
    const { handle } = setup();
    const challenge = sessionOf(responseOf(await handle()));
    const preimage = await payDeposit(challenge);
    const priced = (await dev.agent.createInvoice({ amountMsat: 1000n })).paymentRequest;
    const refused = responseOf(
      await handle(credential(challenge, { action: 'open', preimage, returnInvoice: priced })),
    );
    expect([refused.status, problemOf(refused).code]).toEqual([400, 'invalid_return_invoice']);
    const sessionId = decodeSessionRequest(challenge.request).paymentHash;
    const unknown = responseOf(
      await handle(credential(challenge, { action: 'bearer', sessionId, preimage })),
    );
    expect([unknown.status, problemOf(unknown).code]).toEqual([401, 'session_not_found']);
  });

  it('credits a top-up with what its payment has left: its own L402 token cannot spend it again', async () => {
    const { handle, store } = setup();
    const challenge = sessionOf(responseOf(await handle()));
    const preimage = await payDeposit(challenge);
    const sessionId = decodeSessionRequest(challenge.request).paymentHash;
    await handle(
      credential(challenge, { action: 'open', preimage, returnInvoice: await returnInvoice() }),
    );
    const offer = responseOf(await handle());
    const fresh = sessionOf(offer);
    const topUpPreimage = await payDeposit(fresh);
    const topUp = credential(fresh, { action: 'topUp', sessionId, topUpPreimage });
    expect(responseOf(await handle(topUp)).status).toBe(200);
    expect((await store.getSession(sessionId))?.depositMsat).toBe(100_000n);
    // The top-up's invoice is also the 402's L402 balance: what it bought is in the session now.
    const token = responseOf(
      await handle(`L402 ${offersOf(offer).l402.macaroon}:${topUpPreimage}`),
    );
    expect([token.status, problemOf(token).code]).toEqual([402, 'balance_exhausted']);
  });

  it('credits a top-up whose L402 token already drew from it with what is left of it', async () => {
    const { handle, store } = setup();
    const challenge = sessionOf(responseOf(await handle()));
    const preimage = await payDeposit(challenge);
    const sessionId = decodeSessionRequest(challenge.request).paymentHash;
    await handle(
      credential(challenge, { action: 'open', preimage, returnInvoice: await returnInvoice() }),
    );
    const offer = responseOf(await handle());
    const fresh = sessionOf(offer);
    const topUpPreimage = await payDeposit(fresh);
    const token = `L402 ${offersOf(offer).l402.macaroon}:${topUpPreimage}`;
    expect(paymentOf(await handle(token)).remainingBalanceMsat).toBe(40_000n);
    const topUp = credential(fresh, { action: 'topUp', sessionId, topUpPreimage });
    expect(responseOf(await handle(topUp)).status).toBe(200);
    expect((await store.getSession(sessionId))?.depositMsat).toBe(90_000n);
  });
});
