/**
 * The demo agent of `tollway dev`: buys one paid request through the gateway the long way round,
 * printing each step of the L402 exchange so a person can follow it: request, 402 with offers,
 * invoice decoded, invoice paid, retry with the credential, 200. Then one metered LLM call: a
 * balance bought, what the call held, what it was charged, what is left.
 */
import { formatMsat, isTollwayError } from '@tollway/sdk';
import { parseL402Challenges } from '@tollway/sdk/l402';
import { decodeInvoice, type LightningBackend, preimageMatches } from '@tollway/sdk/lightning';
import { parsePaymentChallenges } from '@tollway/sdk/mpp';
import type { LocalChain as DevChain } from '@tollway/sdk/x402/local-chain';
import { describe, MAX_FEE_MSAT, msatOf, narrator, StepFailure } from './demo-steps.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** The paid URL to buy, e.g. `http://127.0.0.1:8402/v1/forecast?city=Lisbon`. */
  url: string;
  /** The agent's wallet: pays the invoice. */
  wallet: LightningBackend;
  /** The wallet's name, for the printout. */
  walletName: string;
  /** Receives the printout, one line at a time (no trailing newline). */
  print: (line: string) => void;
  /** The most the agent pays for the request; default 100 sat. */
  maxCostMsat?: bigint;
}

/** What the demo bought, or the step where it stopped and why. */
export type DemoResult =
  | {
      ok: true;
      /** The paid response's body. */
      body: string;
      paymentHash: string;
      preimage: string;
      amountMsat: bigint;
      feeMsat: bigint;
      /** The `Authorization` value that opened the route. */
      authorization: string;
    }
  | { ok: false; step: number; message: string };

const DEFAULT_MAX_COST_MSAT = 100_000n;
const MAX_BODY_SHOWN = 400;

/** `AgEEbHNh…(312 chars)`: long tokens are shown by their start and length. */
function abbreviate(text: string, keep = 16): string {
  return text.length <= keep * 2 ? text : `${text.slice(0, keep)}…(${text.length} chars)`;
}

/** The price the 402 body states (`price.display`), when it is a Tollway-style problem body. */
function statedPrice(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== 'object' || parsed === null || !('price' in parsed)) return undefined;
    const { price } = parsed;
    if (typeof price !== 'object' || price === null || !('display' in price)) return undefined;
    return typeof price.display === 'string' ? price.display : undefined;
  } catch {
    return undefined;
  }
}

/** One line per offer in the `WWW-Authenticate` header. */
function describeOffers(header: string): string[] {
  const lines: string[] = [];
  try {
    const schemes = parseL402Challenges(header).map((challenge) => challenge.scheme);
    lines.push(`L402    macaroon + BOLT11 invoice (${[...new Set(schemes)].join(' and ')} lines)`);
  } catch (error) {
    if (!isTollwayError(error, 'invalid_challenge')) throw error;
  }
  try {
    for (const challenge of parsePaymentChallenges(header)) {
      lines.push(`Payment MPP, method=${challenge.method}, intent=${challenge.intent}`);
    }
  } catch (error) {
    if (!isTollwayError(error, 'invalid_challenge')) throw error;
  }
  return lines;
}

/**
 * Buys `url` with an L402 payment from `wallet`, printing each step. Never throws: a failure is
 * printed and returned as `{ ok: false, step, message }`.
 *
 * @example
 * ```ts
 * const result = await runDemo({
 *   url: `${gateway.url}/v1/forecast?city=Lisbon`,
 *   wallet: network.backend('demo-agent'),
 *   walletName: 'demo-agent',
 *   print: (line) => console.log(line),
 * });
 * if (!result.ok) process.exitCode = 1;
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { url, wallet, print } = options;
  const maxCostMsat = options.maxCostMsat ?? DEFAULT_MAX_COST_MSAT;
  const steps = narrator(print);
  const { next, more } = steps;

  try {
    next('Request', `GET ${url}  (no credential)`);
    const first = await fetch(url);
    const firstBody = await first.text();
    if (first.status !== 402) {
      throw new StepFailure(`expected 402 Payment Required, got ${first.status}`);
    }
    const header = first.headers.get('www-authenticate') ?? '';
    const challenge = parseL402Challenges(header).find((c) => c.scheme === 'L402');
    if (challenge === undefined) throw new StepFailure('the 402 offers no L402 challenge');
    const invoice = decodeInvoice(challenge.invoice);
    const invoicePrice =
      invoice.amountMsat === undefined ? 'not stated' : formatMsat(invoice.amountMsat);
    next('402 Payment Required', `price ${statedPrice(firstBody) ?? invoicePrice}`);
    more('offers (WWW-Authenticate):');
    for (const line of describeOffers(header)) more(`  ${line}`);

    if (invoice.amountMsat === undefined) {
      throw new StepFailure('the invoice has no amount; the demo pays fixed prices only');
    }
    if (invoice.amountMsat > maxCostMsat) {
      throw new StepFailure(
        `the invoice asks ${formatMsat(invoice.amountMsat)}, above the demo's limit of ${formatMsat(maxCostMsat)}`,
      );
    }
    next(
      'Invoice decoded',
      `${formatMsat(invoice.amountMsat)} on ${invoice.network} (SANDBOX), signature checked`,
    );
    more(`invoice       ${abbreviate(invoice.paymentRequest, 24)}`);
    more(`payment hash  ${invoice.paymentHash}`);
    more(`expires       ${new Date(invoice.expiresAt).toISOString()}`);

    const paid = await wallet.payInvoice({
      paymentRequest: invoice.paymentRequest,
      maxFeeMsat: MAX_FEE_MSAT,
    });
    if (!preimageMatches(paid.preimage, invoice.paymentHash))
      throw new StepFailure('the preimage does not hash to the payment hash');
    next(
      'Paid',
      `${formatMsat(paid.amountMsat)} + fee ${formatMsat(paid.feeMsat)} from dev wallet "${options.walletName}" (play money)`,
    );
    more(`preimage      ${paid.preimage}`);
    more('check         sha256(preimage) = payment hash  ✓');

    const authorization = `L402 ${challenge.macaroon}:${paid.preimage}`;
    next('Retry', `GET ${url}`);
    more(`Authorization: L402 ${abbreviate(challenge.macaroon)}:${abbreviate(paid.preimage, 8)}`);
    const second = await fetch(url, { headers: { authorization } });
    const body = await second.text();
    if (second.status !== 200) {
      throw new StepFailure(
        `expected 200 after paying, got ${second.status}: ${body.slice(0, 200)}`,
      );
    }
    next('200 OK', `${second.headers.get('content-type') ?? 'no content type'}`);
    const shown = body.trim();
    more(shown.length > MAX_BODY_SHOWN ? `${shown.slice(0, MAX_BODY_SHOWN)}…` : shown);
    return {
      ok: true,
      body,
      paymentHash: paid.paymentHash,
      preimage: paid.preimage,
      amountMsat: paid.amountMsat,
      feeMsat: paid.feeMsat,
      authorization,
    };
  } catch (error) {
    const message = describe(error);
    print(`  ✗ step ${steps.step} failed: ${message}`);
    return { ok: false, step: steps.step, message };
  }
}

/** Options of {@link runMeteredDemo}. */
export interface MeteredDemoOptions {
  /** An OpenAI-compatible chat completions URL of the gateway, metered per token. */
  url: string;
  /** The model to ask, as the gateway's table names it. */
  model: string;
  /** The agent's wallet: buys the balance. */
  wallet: LightningBackend;
  /** The wallet's name, for the printout. */
  walletName: string;
  /** Receives the printout, one line at a time (no trailing newline). */
  print: (line: string) => void;
  /** The most the agent pays for the balance; default 100 sat. */
  maxCostMsat?: bigint;
}

/** What the metered call bought and cost, or the step where it stopped and why. */
export type MeteredDemoResult =
  | {
      ok: true;
      /** The balance one payment bought, msat. */
      boughtMsat: bigint;
      /** What the call held from the balance while it ran (its reservation). */
      reservedMsat: bigint;
      /** What the call was charged: its usage at the model's prices. */
      chargedMsat: bigint;
      /** What the balance has left. */
      remainingMsat: bigint;
      usage: { promptTokens: number; completionTokens: number };
      /** The `Authorization` value of the balance. */
      authorization: string;
    }
  | { ok: false; step: number; message: string };

/**
 * Makes one metered LLM call the long way round, printing each step: the 402 offers a prepaid
 * balance, the agent buys it (L402), the call holds its most possible cost from the balance and is
 * charged what its answer's usage cost. Never throws.
 *
 * @example
 * ```ts
 * const result = await runMeteredDemo({ url: `${gateway.url}/v1/chat/completions`, model: 'tollway-mini', wallet, walletName: 'demo-agent', print: console.log });
 * ```
 */
export async function runMeteredDemo(options: MeteredDemoOptions): Promise<MeteredDemoResult> {
  const { url, wallet, print } = options;
  const maxCostMsat = options.maxCostMsat ?? DEFAULT_MAX_COST_MSAT;
  const steps = narrator(print);
  const { next, more } = steps;
  const body = JSON.stringify({
    model: options.model,
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Write a haiku about Lisbon.' }],
  });
  const post = (headers: Record<string, string>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
  try {
    next('Request', `POST ${url}  "model": "${options.model}"  (no credential)`);
    const first = await post({});
    const firstBody = await first.text();
    if (first.status !== 402) {
      throw new StepFailure(`expected 402 Payment Required, got ${first.status}`);
    }
    const challenge = parseL402Challenges(first.headers.get('www-authenticate') ?? '').find(
      (c) => c.scheme === 'L402',
    );
    if (challenge === undefined) throw new StepFailure('the 402 offers no L402 challenge');
    const invoice = decodeInvoice(challenge.invoice);
    if (invoice.amountMsat === undefined || invoice.amountMsat > maxCostMsat) {
      throw new StepFailure(
        `the invoice asks ${invoice.amountMsat === undefined ? 'no amount' : formatMsat(invoice.amountMsat)}, not a balance within the demo's limit of ${formatMsat(maxCostMsat)}`,
      );
    }
    next(
      '402 Payment Required',
      `a prepaid balance of ${formatMsat(invoice.amountMsat)}; this call may cost up to ${statedPrice(firstBody) ?? 'its price'}`,
    );
    const paid = await wallet.payInvoice({
      paymentRequest: invoice.paymentRequest,
      maxFeeMsat: MAX_FEE_MSAT,
    });
    if (!preimageMatches(paid.preimage, invoice.paymentHash))
      throw new StepFailure('the preimage does not hash to the payment hash');
    next(
      'Balance bought',
      `${formatMsat(paid.amountMsat)} from dev wallet "${options.walletName}" (play money)`,
    );
    const authorization = `L402 ${challenge.macaroon}:${paid.preimage}`;
    next('Call', `POST ${url} with the balance's credential`);
    const second = await post({ authorization });
    const answer = (await second.json()) as {
      usage?: { prompt_tokens?: number; completion_tokens?: number };
      choices?: Array<{ message?: { content?: string } }>;
    };
    if (second.status !== 200) {
      throw new StepFailure(`expected 200 after paying, got ${second.status}`);
    }
    const reservedMsat = msatOf(second, 'tollway-reserved');
    const chargedMsat = msatOf(second, 'tollway-charged');
    const remainingMsat = msatOf(second, 'tollway-remaining');
    const usage = {
      promptTokens: answer.usage?.prompt_tokens ?? 0,
      completionTokens: answer.usage?.completion_tokens ?? 0,
    };
    next('200 OK', `"${answer.choices?.[0]?.message?.content ?? ''}"`);
    more(
      `reserved      ${formatMsat(reservedMsat)}  (the most this call could cost, held while it ran)`,
    );
    more(
      `charged       ${formatMsat(chargedMsat)}  (${usage.promptTokens} tokens in, ${usage.completionTokens} out, at the model's prices)`,
    );
    more(
      `balance left  ${formatMsat(remainingMsat)}  (for the next calls with the same credential)`,
    );
    return {
      ok: true,
      boughtMsat: paid.amountMsat,
      reservedMsat,
      chargedMsat,
      remainingMsat,
      usage,
      authorization,
    };
  } catch (error) {
    const message = describe(error);
    print(`  ✗ step ${steps.step} failed: ${message}`);
    return { ok: false, step: steps.step, message };
  }
}

/** Options of {@link runX402Demo}. */
export interface X402DemoOptions {
  /** A dollar-priced URL of the gateway that offers x402. */
  url: string;
  /** The local chain: the payer's key, the token, balances. */
  chain: DevChain;
  /** USD per BTC, to count the token amount against the budget. */
  usdPerBtc: string;
  /** Receives the printout, one line at a time (no trailing newline). */
  print: (line: string) => void;
}

/** What the x402 demo settled, or the step where it stopped and why. */
export type X402DemoResult =
  | { ok: true; body: string; transaction: string; amount: bigint }
  | { ok: false; step: number; message: string };

/** Token base units (6 decimals) as `1.234567`. */
function formatUsdc(units: bigint): string {
  const whole = units / 1_000_000n;
  const fraction = (units % 1_000_000n).toString().padStart(6, '0');
  return `${whole}.${fraction} USDC`;
}

/**
 * Buys `url` with x402 (an EIP-3009 authorization signed by the payer, settled on the local chain
 * by the gateway's self-hosted facilitator), printing each step. Never throws.
 *
 * @example
 * ```ts
 * const result = await runX402Demo({ url: `${gateway.url}/v1/stream`, chain, usdPerBtc: '100000', print: console.log });
 * ```
 */
export async function runX402Demo(options: X402DemoOptions): Promise<X402DemoResult> {
  const { url, chain, print } = options;
  const steps = narrator(print);
  const { next, more } = steps;
  try {
    // Loaded only here: `tollway dev` without --x402 does not need the x402 code.
    const {
      createEvmWallet,
      parsePaymentRequiredHeader,
      parsePaymentResponseHeader,
      X402_HEADERS,
    } = await import('@tollway/sdk/x402');
    const { createPayingFetch } = await import('@tollway/sdk/client');
    const { fixedRate } = await import('@tollway/sdk');
    const payer = chain.accounts.payer.address;
    const payTo = chain.accounts.payTo.address;
    const before = { payer: await chain.balanceOf(payer), payTo: await chain.balanceOf(payTo) };
    more(`balances before  payer ${formatUsdc(before.payer)}, payTo ${formatUsdc(before.payTo)}`);

    next('Request', `GET ${url}  (no credential)`);
    const first = await fetch(url);
    await first.text();
    if (first.status !== 402) {
      throw new StepFailure(`expected 402 Payment Required, got ${first.status}`);
    }
    const header = first.headers.get(X402_HEADERS.paymentRequired) ?? '';
    if (header === '') throw new StepFailure('the 402 has no PAYMENT-REQUIRED header');
    const required = parsePaymentRequiredHeader(header);
    const offer = required.accepts.find((accept) => accept.network === chain.network);
    if (offer === undefined) throw new StepFailure(`the 402 offers no x402 on ${chain.network}`);
    next('402 Payment Required', `PAYMENT-REQUIRED: x402 v${required.x402Version} ${offer.scheme}`);
    more(`amount  ${formatUsdc(BigInt(offer.amount))} (test tokens) on ${offer.network}`);
    more(`asset   ${offer.asset}`);
    more(`payTo   ${offer.payTo}`);

    const wallet = createEvmWallet({
      privateKey: chain.accounts.payer.privateKey,
      allowedAssets: [{ network: chain.network, address: chain.token }],
    });
    let nonce = '';
    const payingFetch = createPayingFetch({
      wallets: [],
      preferences: ['x402'],
      x402: { wallet, rates: fixedRate(options.usdPerBtc) },
      onPayment: (payment) => {
        nonce = payment.paymentHash;
      },
    });
    const second = await payingFetch(url);
    const body = await second.text();
    next('Signed authorization', `EIP-3009 transferWithAuthorization from ${payer}`);
    more(`nonce   ${nonce || 'not reported'}`);
    if (second.status !== 200) {
      throw new StepFailure(
        `expected 200 after paying, got ${second.status}: ${body.slice(0, 200)}`,
      );
    }
    const settled = second.headers.get(X402_HEADERS.paymentResponse);
    if (settled === null) throw new StepFailure('the 200 has no PAYMENT-RESPONSE header');
    const response = parsePaymentResponseHeader(settled);
    if (!response.success || !response.transaction) {
      throw new StepFailure('the PAYMENT-RESPONSE reports no settled transaction');
    }
    next('Settled', `transaction ${response.transaction}`);
    next('200 OK', `${second.headers.get('content-type') ?? 'no content type'}`);
    const shown = body.trim().replace(/\s*\n\s*/g, ' ');
    more(shown.length > MAX_BODY_SHOWN ? `${shown.slice(0, MAX_BODY_SHOWN)}…` : shown);
    const after = { payer: await chain.balanceOf(payer), payTo: await chain.balanceOf(payTo) };
    more(`balances after   payer ${formatUsdc(after.payer)}, payTo ${formatUsdc(after.payTo)}`);
    return {
      ok: true,
      body,
      transaction: response.transaction,
      amount: before.payer - after.payer,
    };
  } catch (error) {
    const message = describe(error);
    print(`  ✗ step ${steps.step} failed: ${message}`);
    return { ok: false, step: steps.step, message };
  }
}
