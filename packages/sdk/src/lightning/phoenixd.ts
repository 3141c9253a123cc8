/**
 * The phoenixd backend: ACINQ's headless Phoenix over its HTTP API (default `http://127.0.0.1:9740`).
 *
 * What phoenixd does that shapes this file:
 * - HTTP Basic auth where only the password counts (`http-password`, or the limited-access password,
 *   which can create invoices and read but gets 401 when paying). Request bodies are form-encoded.
 * - Requests take whole sats (`amountSat`): amounts that are not whole sats are refused (see
 *   whole-sats.ts). An invoice that names its amount is paid without `amountSat`, so it is paid to the
 *   msat. Answers give sats, truncated, except `fees`, which is msat.
 * - A description is at most 128 characters.
 * - An unknown payment is answered 404 "Not found" (204 No Content in some versions); an unknown
 *   endpoint is 404 "Unknown endpoint" (`/payments/outgoingbyhash` is missing in old versions).
 * - `POST /payinvoice` answers only when the payment is final, and a failure is a 200 with a
 *   `reason`. It has no timeout: the request is cut at `timeoutMs` and the payment looked up later.
 * - It takes no fee limit. Its fee is published: 4 sat + 0.4% of the amount; a limit below that is
 *   refused before paying. The fee of a payment is read back in msat from `/payments/outgoing/{id}`.
 * - It reports its chain in `/getinfo` (`mainnet`, `testnet3`, `testnet4`, `signet`, `regtest`).
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import { TollwayError, type TollwayErrorCode } from '../errors.js';
import { decodeInvoice } from './bolt11.js';
import { decodeCreatedInvoice } from './created-invoice.js';
import { paymentTimeout, SOCKET_GRACE_MS, withDeadline } from './deadline.js';
import {
  assertPaymentHash,
  createBodyParser,
  createHttpClient,
  type HttpResponse,
} from './http.js';
import { pollForSettlement } from './poll.js';
import type {
  InvoiceStatus,
  LightningBackend,
  LightningNetwork,
  PaymentResult,
  PaymentStatus,
} from './types.js';
import { msatToWholeSats } from './whole-sats.js';

/** Options of {@link createPhoenixdBackend}. */
export interface PhoenixdOptions {
  /** Base URL, e.g. `http://127.0.0.1:9740`. */
  url: string;
  /** `http-password` from phoenix.conf (the limited-access password cannot pay). */
  password: string;
  /** Per-request timeout; default 30 000 ms. */
  timeoutMs?: number;
  /** Delay between look-ups while waiting for an invoice; default 1 000 ms. */
  pollIntervalMs?: number;
  /** Pins the server certificate (PEM) when phoenixd sits behind TLS. */
  tls?: { certPem?: string };
}

/** phoenixd's published fee for a Lightning payment: 4 sat plus 0.4% of the amount. */
const FEE_BASE_MSAT = 4_000n;
const FEE_PER_MILLION = 4_000n;
const MAX_DESCRIPTION_LENGTH = 128;

const parse = createBodyParser('phoenixd');
const hex32 = z.string().regex(/^[0-9a-fA-F]{64}$/);
const sats = z.number().int().nonnegative();

const infoSchema = z.object({
  nodeId: z.string().regex(/^0[23][0-9a-fA-F]{64}$/),
  chain: z.string(),
});
const balanceSchema = z.object({ balanceSat: sats });
const createdSchema = z.object({ paymentHash: hex32, serialized: z.string() });
const incomingSchema = z.object({
  paymentHash: hex32,
  preimage: hex32.nullish(),
  isPaid: z.boolean(),
  isExpired: z.boolean().nullish(),
  requestedSat: sats.nullish(),
  receivedSat: sats,
  fees: sats,
  expiresAt: z.number().int().nullish(),
  completedAt: z.number().int().nullish(),
});
const outgoingSchema = z.object({
  paymentId: z.string(),
  paymentHash: hex32.nullish(),
  preimage: hex32.nullish(),
  isPaid: z.boolean(),
  sent: sats,
  fees: sats,
  invoice: z.string().nullish(),
  completedAt: z.number().int().nullish(),
});
type Outgoing = z.infer<typeof outgoingSchema>;
const paySchema = z.union([
  z.object({
    recipientAmountSat: sats,
    routingFeeSat: sats,
    paymentId: z.string(),
    paymentHash: hex32,
    paymentPreimage: hex32,
  }),
  z.object({ paymentHash: hex32.nullish(), reason: z.string() }),
]);

/**
 * Creates a phoenixd backend. Prefer `connectLightning('phoenixd+http://…')`, which also wraps it
 * in the shared safety layer.
 *
 * @example
 * ```ts
 * const ln = createPhoenixdBackend({ url: 'http://127.0.0.1:9740', password });
 * const inv = await ln.createInvoice({ amountMsat: 21_000n, memo: 'forecast' });
 * ```
 */
export function createPhoenixdBackend(options: PhoenixdOptions): LightningBackend {
  if (!options.password) {
    throw new TollwayError('invalid_connection_string', 'phoenixd needs its http password');
  }
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const http = createHttpClient({
    baseUrl: options.url,
    headers: { authorization: `Basic ${Buffer.from(`:${options.password}`).toString('base64')}` },
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
  });

  /** GETs a payment record: its body, or undefined when phoenixd knows no such payment. */
  async function fetchRecord(path: string): Promise<unknown> {
    const res = await http.request('GET', path);
    if (res.status === 204) return undefined;
    if (res.status === 404) {
      if (/unknown endpoint/i.test(res.text)) {
        throw new TollwayError(
          'capability_unsupported',
          `this phoenixd version does not know ${path.replace(/\/[^/]*$/, '')}; upgrade it`,
        );
      }
      return undefined;
    }
    return ok(res, path);
  }

  async function lookupInvoice(paymentHash: string): Promise<InvoiceStatus> {
    assertPaymentHash(paymentHash);
    const body = await fetchRecord(`/payments/incoming/${paymentHash}`);
    if (body === undefined) throw notFound(paymentHash);
    const found = parse(incomingSchema, body, 'incoming payment');
    const status: InvoiceStatus = { paymentHash, state: 'open' };
    if (found.requestedSat != null) status.amountMsat = BigInt(found.requestedSat) * 1000n;
    if (found.isPaid) {
      status.state = 'settled';
      // receivedSat is net of phoenixd's liquidity fees (msat) and truncated to whole sats.
      status.amountPaidMsat = BigInt(found.receivedSat) * 1000n + BigInt(found.fees);
      if (found.preimage) status.preimage = found.preimage.toLowerCase();
      if (found.completedAt != null) status.settledAt = found.completedAt;
      return status;
    }
    const expired = found.isExpired ?? (found.expiresAt != null && found.expiresAt <= Date.now());
    if (expired) status.state = 'expired';
    return status;
  }

  function toStatus(paymentHash: string, found: Outgoing): PaymentStatus {
    const state = found.isPaid ? 'succeeded' : found.completedAt != null ? 'failed' : 'pending';
    const status: PaymentStatus = { paymentHash, state };
    const amountMsat = recipientAmount(found);
    if (amountMsat !== undefined) status.amountMsat = amountMsat;
    if (state === 'succeeded') {
      status.feeMsat = BigInt(found.fees);
      if (found.preimage) status.preimage = found.preimage.toLowerCase();
    }
    return status;
  }

  async function lookupPayment(paymentHash: string): Promise<PaymentStatus> {
    assertPaymentHash(paymentHash);
    const body = await fetchRecord(`/payments/outgoingbyhash/${paymentHash}`);
    if (body === undefined) throw notFound(paymentHash);
    return toStatus(paymentHash, parse(outgoingSchema, body, 'outgoing payment'));
  }

  return {
    kind: 'phoenixd',
    capabilities: { canReceive: true, canPay: true },

    async getInfo() {
      const info = parse(
        infoSchema,
        ok(await http.request('GET', '/getinfo'), 'getinfo'),
        'node info',
      );
      return { pubkey: info.nodeId.toLowerCase(), network: networkOf(info.chain) };
    },

    async createInvoice(params) {
      const amountSat = msatToWholeSats(params.amountMsat, 'phoenixd');
      const form: Record<string, string> = {
        amountSat: amountSat.toString(),
        expirySeconds: String(params.expirySeconds ?? 3600),
      };
      if (params.descriptionHash !== undefined) {
        form.descriptionHash = params.descriptionHash;
      } else {
        const description = params.memo ?? '';
        if (description.length > MAX_DESCRIPTION_LENGTH) {
          throw new TollwayError(
            'capability_unsupported',
            `phoenixd takes descriptions of at most ${MAX_DESCRIPTION_LENGTH} characters; use descriptionHash`,
          );
        }
        form.description = description;
      }
      const res = await http.request('POST', '/createinvoice', { form });
      const created = parse(createdSchema, ok(res, 'createinvoice'), 'created invoice');
      return decodeCreatedInvoice(
        'phoenixd',
        { paymentRequest: created.serialized, paymentHash: created.paymentHash },
        params.amountMsat,
      );
    },

    lookupInvoice,

    waitForSettlement: pollForSettlement(lookupInvoice, pollIntervalMs),

    async payInvoice(params): Promise<PaymentResult> {
      const invoice = decodeInvoice(params.paymentRequest);
      const paymentHash = invoice.paymentHash;
      const amountMsat = invoice.amountMsat ?? params.amountMsat;
      if (amountMsat === undefined) {
        throw new TollwayError('amount_required', 'invoice has no amount; pass amountMsat');
      }
      const form: Record<string, string> = { invoice: invoice.paymentRequest };
      // Only an amountless invoice gets amountSat: it would override (and truncate) the invoice's own.
      if (invoice.amountMsat === undefined) {
        form.amountSat = msatToWholeSats(amountMsat, 'phoenixd').toString();
      }
      const fee = FEE_BASE_MSAT + ceilDiv(amountMsat * FEE_PER_MILLION, 1_000_000n);
      const maxFeeMsat = params.maxFeeMsat ?? amountMsat / 100n + 10_000n;
      if (fee > maxFeeMsat) {
        throw new TollwayError(
          'no_route',
          `phoenixd charges ${fee} msat (4 sat + 0.4%) for this payment, above the limit of ${maxFeeMsat} msat`,
          { details: { paymentHash, feeMsat: fee.toString() } },
        );
      }
      const timeoutMs = params.timeoutMs ?? 60_000;
      const res = await withDeadline(
        timeoutMs,
        () => paymentTimeout(paymentHash, timeoutMs),
        (signal) =>
          http.request('POST', '/payinvoice', {
            form,
            signal,
            timeoutMs: timeoutMs + SOCKET_GRACE_MS,
          }),
      );
      if (res.status === 400) {
        throw new TollwayError(
          /invoice/i.test(res.text) ? 'invalid_invoice' : 'payment_failed',
          `phoenixd refused the payment: ${res.text.slice(0, 200)}`,
          { details: { paymentHash } },
        );
      }
      const answer = parse(paySchema, ok(res, 'payinvoice'), 'payment');
      if ('reason' in answer) {
        throw new TollwayError(codeForReason(answer.reason), `phoenixd: ${answer.reason}`, {
          details: { paymentHash, reason: answer.reason },
        });
      }
      // The answer's fee is truncated to sats; the payment record has it in msat.
      const record = await fetchRecord(
        `/payments/outgoing/${encodeURIComponent(answer.paymentId)}`,
      );
      if (record === undefined) {
        throw new TollwayError('backend_error', 'phoenixd lost the payment it just made', {
          details: { paymentHash, paymentId: answer.paymentId },
        });
      }
      const sent = parse(outgoingSchema, record, 'outgoing payment');
      return {
        paymentHash,
        preimage: answer.paymentPreimage.toLowerCase(),
        amountMsat,
        feeMsat: BigInt(sent.fees),
      };
    },

    lookupPayment,

    async getBalance() {
      const res = await http.request('GET', '/getbalance');
      const balance = parse(balanceSchema, ok(res, 'getbalance'), 'balance');
      return { msat: BigInt(balance.balanceSat) * 1000n };
    },

    close: () => http.close(),
  };
}

/**
 * What was paid to the recipient. An invoice with an amount is paid exactly that; an amountless one
 * was paid whole sats R, and `sent` is R + fees truncated to sats, so R = sent - floor(fees / 1000).
 */
function recipientAmount(found: Outgoing): bigint | undefined {
  if (found.invoice) {
    try {
      const amount = decodeInvoice(found.invoice).amountMsat;
      if (amount !== undefined) return amount;
    } catch {
      return undefined;
    }
  }
  return (BigInt(found.sent) - BigInt(found.fees) / 1000n) * 1000n;
}

/** Maps phoenixd's failure reasons (lightning-kmp's FinalFailure and part failures) to codes. */
function codeForReason(reason: string): TollwayErrorCode {
  if (/not enough funds|insufficient|NotEnoughFunds|too big/i.test(reason))
    return 'insufficient_balance';
  if (/already been paid|AlreadyPaid/i.test(reason)) return 'already_paid';
  // Another attempt for the same invoice is still running: its outcome decides.
  if (/another payment is in progress|AlreadyInProgress/i.test(reason)) return 'payment_timeout';
  if (
    /offline|unreachable|liquidity|route|fees|exhausted|existing channels|Temporary/i.test(reason)
  ) {
    return 'no_route';
  }
  return 'payment_failed';
}

function networkOf(chain: string): LightningNetwork {
  const name = chain.toLowerCase();
  if (name === 'mainnet' || name === 'signet' || name === 'regtest') return name;
  if (name.startsWith('testnet')) return 'testnet';
  throw new TollwayError(
    'unsupported_network',
    `phoenixd runs on an unknown chain: ${chain.slice(0, 40)}`,
  );
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function notFound(paymentHash: string): TollwayError {
  return new TollwayError('invoice_not_found', 'phoenixd knows no such payment', {
    details: { paymentHash },
  });
}

/** The body of a 2xx answer; phoenixd explains other statuses in plain text. */
function ok(res: HttpResponse, what: string): unknown {
  if (res.status >= 200 && res.status < 300) return res.body;
  throw new TollwayError(
    'backend_error',
    `phoenixd answered HTTP ${res.status} to ${what}: ${res.text.slice(0, 200)}`,
    { details: { status: res.status } },
  );
}
