/**
 * Helpers for paywall engine tests: a dev Lightning network in memory (the shop's backend creates
 * invoices, an agent's backend pays them), request views, and the client side of L402 and MPP.
 */
import { expect } from 'vitest';
import { hexToBytes } from '../../src/internal/bytes.js';
import { parseL402Challenges } from '../../src/l402/challenge.js';
import { formatL402Credential } from '../../src/l402/credential.js';
import { parseMacaroon } from '../../src/l402/macaroon.js';
import { createDevNetwork } from '../../src/lightning/dev/node.js';
import type { LightningBackend } from '../../src/lightning/types.js';
import { type PaymentChallenge, parsePaymentChallenges } from '../../src/mpp/challenge.js';
import { formatPaymentCredential } from '../../src/mpp/credential.js';
import type { PaywallDecision, PaywallRequest, PaywallResponse } from '../../src/server/types.js';

/** A dev network with a funded `shop` (the paywall's node) and `agent` (the payer). */
export function createDevSetup() {
  const network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  network.openWallet('agent');
  return { network, shop: network.backend('shop'), agent: network.backend('agent') };
}

/** Options of {@link paywallRequest}. */
export interface RequestInit {
  method?: string;
  headers?: Record<string, string> | Array<[string, string]>;
  /** Every Authorization value, when the test wants to send several. */
  authorization?: string[];
  ip?: string;
  body?: unknown;
}

/** A request view as an adapter would build it. */
export function paywallRequest(url: string, init: RequestInit = {}): PaywallRequest {
  const headers = new Headers(init.headers);
  for (const value of init.authorization ?? []) headers.append('authorization', value);
  return {
    method: init.method ?? 'GET',
    url,
    headers,
    ...(init.authorization === undefined ? {} : { authorization: init.authorization }),
    clientIp: init.ip ?? '203.0.113.7',
    ...(init.body === undefined ? {} : { jsonBody: async () => init.body }),
  };
}

/** The response of a decision that must be one. */
export function responseOf(decision: PaywallDecision): PaywallResponse {
  if (decision.kind !== 'respond') throw new Error(`expected a response, got ${decision.kind}`);
  return decision.response;
}

/** The payment context of a decision that must be a pass. */
export function paymentOf(decision: PaywallDecision) {
  if (decision.kind !== 'pass') {
    throw new Error(`expected a pass, got ${decision.response.status} ${decision.response.body}`);
  }
  return decision.payment;
}

/** Every value of a response header (case-insensitive). */
export function headerValues(response: PaywallResponse, name: string): string[] {
  return response.headers
    .filter(([key]) => key.toLowerCase() === name.toLowerCase())
    .map(([, value]) => value);
}

/** The parsed problem body of a response. */
export function problemOf(response: PaywallResponse): Record<string, unknown> & { code: string } {
  const body = JSON.parse(response.body) as Record<string, unknown> & { code: string };
  expect(typeof body.code).toBe('string');
  return body;
}

/** The offers of a 402 or 401: the L402 challenge and, when offered, the MPP one. */
export function offersOf(response: PaywallResponse) {
  const values = headerValues(response, 'www-authenticate');
  const l402 = parseL402Challenges(values).find((challenge) => challenge.scheme === 'L402');
  if (l402 === undefined) throw new Error('no L402 challenge');
  const payment = values.some((value) => value.startsWith('Payment '))
    ? parsePaymentChallenges(values)[0]
    : undefined;
  return { l402, payment, values };
}

/** Pays the L402 offer of a 402 from `payer`; returns the Authorization value. */
export async function payL402(response: PaywallResponse, payer: LightningBackend) {
  const { l402 } = offersOf(response);
  const paid = await payer.payInvoice({ paymentRequest: l402.invoice });
  return formatL402Credential({
    macaroons: [parseMacaroon(l402.macaroon)],
    preimage: hexToBytes(paid.preimage),
  });
}

/** Pays the MPP offer of a 402 from `payer`; returns the Authorization value. */
export async function payMpp(response: PaywallResponse, payer: LightningBackend) {
  const { payment } = offersOf(response);
  if (payment === undefined) throw new Error('no MPP offer');
  return mppCredential(
    payment,
    (await payer.payInvoice({ paymentRequest: invoiceOf(payment) })).preimage,
  );
}

/** An MPP charge credential answering `challenge` with `preimage`. */
export function mppCredential(challenge: PaymentChallenge, preimage: string): string {
  return formatPaymentCredential({ challenge, payload: { preimage } });
}

/** The invoice of an MPP charge challenge. */
export function invoiceOf(challenge: PaymentChallenge): string {
  const json = JSON.parse(Buffer.from(challenge.request, 'base64url').toString('utf8')) as {
    methodDetails: { invoice: string };
  };
  return json.methodDetails.invoice;
}

/** A logger that keeps what it is told, so tests can check that failures were reported. */
export function createMemoryLogger() {
  const lines: Array<{ level: string; message: string; context: Record<string, unknown> }> = [];
  return {
    lines,
    warn: (context: Record<string, unknown>, message: string) =>
      lines.push({ level: 'warn', message, context }),
    error: (context: Record<string, unknown>, message: string) =>
      lines.push({ level: 'error', message, context }),
  };
}
