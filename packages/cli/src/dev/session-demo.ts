/**
 * The session demo of `tollway dev`: an MPP lightning session on the metered LLM route, the long
 * way round, each step printed — one deposit opens it, calls draw their metered cost from it, a
 * top-up adds a second deposit, and closing it refunds what was not spent to the agent's own
 * amountless invoice. What the agent paid in the end is the sum of what its calls were charged
 * (up to the part of a sat a refund in whole sats cannot carry).
 */
import { formatMsat } from '@tollway/sdk';
import type { LightningBackend } from '@tollway/sdk/lightning';
import {
  decodeSessionRequest,
  formatPaymentCredential,
  type PaymentChallenge,
  type PaymentPayload,
  parsePaymentChallenges,
} from '@tollway/sdk/mpp';
import { describe, MAX_FEE_MSAT, msatOf, narrator, StepFailure } from './demo-steps.js';

/** Options of {@link runSessionDemo}. */
export interface SessionDemoOptions {
  /** An OpenAI-compatible chat completions URL of the gateway that offers sessions. */
  url: string;
  /** The model to ask, as the gateway's table names it. */
  model: string;
  /** The agent's wallet: pays the deposits and receives the refund. */
  wallet: LightningBackend;
  /** The wallet's name, for the printout. */
  walletName: string;
  /** Receives the printout, one line at a time (no trailing newline). */
  print: (line: string) => void;
  /** Calls made on the session (the opening one included); default 3. */
  calls?: number;
}

/** What the session cost, or the step where it stopped and why. */
export type SessionDemoResult =
  | {
      ok: true;
      /** Both deposits, msat. */
      depositedMsat: bigint;
      /** What each call was charged, msat. */
      chargedMsat: bigint[];
      refundMsat: bigint;
      /** What the agent's wallet paid in the end: deposits less the refund. */
      netMsat: bigint;
    }
  | { ok: false; step: number; message: string };

const DEFAULT_CALLS = 3;

/** The session challenge of a 402 answer. */
function sessionChallengeOf(response: Response): PaymentChallenge {
  if (response.status !== 402) {
    throw new StepFailure(`expected 402 Payment Required, got ${response.status}`);
  }
  const challenge = parsePaymentChallenges(response.headers.get('www-authenticate') ?? '').find(
    (offered) => offered.intent === 'session',
  );
  if (challenge === undefined) throw new StepFailure('the 402 offers no MPP session');
  return challenge;
}

/** A chat completion request of the demo's, with a credential when given. */
function chat(options: SessionDemoOptions, authorization?: string): Promise<Response> {
  return fetch(options.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({
      model: options.model,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Write a haiku about Lisbon.' }],
    }),
  });
}

/** Pays the deposit invoice of a session challenge; the preimage and the amount paid. */
async function payDeposit(
  wallet: LightningBackend,
  challenge: PaymentChallenge,
): Promise<{ preimage: string; amountMsat: bigint }> {
  const { depositInvoice } = decodeSessionRequest(challenge.request);
  if (depositInvoice === undefined) throw new StepFailure('the session offers no deposit invoice');
  const paid = await wallet.payInvoice({
    paymentRequest: depositInvoice,
    maxFeeMsat: MAX_FEE_MSAT,
  });
  return { preimage: paid.preimage, amountMsat: paid.amountMsat + paid.feeMsat };
}

/**
 * Runs a session on `url`, printing each step. Never throws: a failure is printed and returned as
 * `{ ok: false, step, message }`.
 *
 * @example
 * ```ts
 * const result = await runSessionDemo({ url: `${gateway.url}/v1/chat/completions`, model: 'tollway-mini', wallet, walletName: 'demo-agent', print: console.log });
 * ```
 */
export async function runSessionDemo(options: SessionDemoOptions): Promise<SessionDemoResult> {
  const { wallet, print } = options;
  const calls = options.calls ?? DEFAULT_CALLS;
  const steps = narrator(print);
  const { next, more } = steps;
  try {
    const startMsat = (await wallet.getBalance()).msat;
    next('Request', `POST ${options.url}  "model": "${options.model}"  (no credential)`);
    const challenge = sessionChallengeOf(await chat(options));
    const {
      depositAmountSat,
      idleTimeoutSeconds,
      paymentHash: sessionId,
    } = decodeSessionRequest(challenge.request);
    next(
      '402 Payment Required',
      `an MPP session: a ${depositAmountSat ?? '?'} sat deposit, closed after ${idleTimeoutSeconds ?? '?'} s idle`,
    );
    const opening = await payDeposit(wallet, challenge);
    const returnInvoice = (await wallet.createInvoice({ amountMsat: 0n, expirySeconds: 86_400 }))
      .paymentRequest;
    next(
      'Deposit paid',
      `${formatMsat(opening.amountMsat)} from dev wallet "${options.walletName}"`,
    );
    more('with an amountless invoice of the agent’s own, for the refund');
    const credential = (payload: PaymentPayload) => formatPaymentCredential({ challenge, payload });
    const chargedMsat: bigint[] = [];
    for (let call = 1; call <= calls; call++) {
      const payload: PaymentPayload =
        call === 1
          ? { action: 'open', preimage: opening.preimage, returnInvoice }
          : { action: 'bearer', sessionId, preimage: opening.preimage };
      const answer = await chat(options, credential(payload));
      await answer.body?.cancel();
      if (answer.status !== 200) throw new StepFailure(`call ${call} got ${answer.status}`);
      chargedMsat.push(msatOf(answer, 'tollway-charged'));
      next(
        call === 1 ? 'Call (open)' : `Call ${call} (bearer)`,
        `charged ${formatMsat(msatOf(answer, 'tollway-charged'))}, ${formatMsat(msatOf(answer, 'tollway-remaining'))} left in the session`,
      );
    }
    const fresh = sessionChallengeOf(await chat(options));
    const topUp = await payDeposit(wallet, fresh);
    const credited = await fetch(options.url, {
      method: 'POST',
      headers: {
        authorization: formatPaymentCredential({
          challenge: fresh,
          payload: { action: 'topUp', sessionId, topUpPreimage: topUp.preimage },
        }),
      },
    });
    await credited.body?.cancel();
    if (credited.status !== 200) throw new StepFailure(`the top-up got ${credited.status}`);
    next('Top-up', `a second deposit of ${formatMsat(topUp.amountMsat)} credited to the session`);
    const closing = await fetch(options.url, {
      method: 'POST',
      headers: {
        authorization: credential({ action: 'close', sessionId, preimage: opening.preimage }),
      },
    });
    const closed = (await closing.json()) as { refundSats?: number; refundStatus?: string };
    if (closing.status !== 200 || closed.refundStatus === undefined) {
      throw new StepFailure(`closing got ${closing.status}`);
    }
    const refundMsat = BigInt(closed.refundSats ?? 0) * 1000n;
    next(
      'Close',
      `${formatMsat(refundMsat)} refunded to the agent's invoice (${closed.refundStatus})`,
    );
    const depositedMsat = opening.amountMsat + topUp.amountMsat;
    const netMsat = startMsat - (await wallet.getBalance()).msat;
    const sum = chargedMsat.reduce((total, charged) => total + charged, 0n);
    more(
      `net cost      ${formatMsat(netMsat)}  (deposits ${formatMsat(depositedMsat)} less the refund)`,
    );
    more(
      `calls charged ${formatMsat(sum)}  (the refund is in whole sats: what is under a sat stays)`,
    );
    return { ok: true, depositedMsat, chargedMsat, refundMsat, netMsat };
  } catch (error) {
    const message = describe(error);
    print(`  ✗ step ${steps.step} failed: ${message}`);
    return { ok: false, step: steps.step, message };
  }
}
