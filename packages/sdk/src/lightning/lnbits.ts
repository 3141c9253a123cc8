/**
 * The LNbits backend: one LNbits wallet over its REST API (`/api/v1`).
 *
 * What LNbits does that shapes this file:
 * - The invoice (read) key creates invoices and reads; only the admin key pays (an invoice key that
 *   asks to pay gets 401 or 403). Without an admin key, `canPay` is false.
 * - `POST /api/v1/payments` both creates and pays, and its `out` field defaults to `true`, meaning
 *   pay: creating always sends `out: false`.
 * - Requests take sats (`amount` with `unit: "sat"`), so amounts that are not whole sats are refused
 *   (see whole-sats.ts). Responses give msat, negative for outgoing payments (`amount`, `fee`).
 * - A refused or failed payment is answered 520 `{detail, status}`. A payment the node has not
 *   finished within LNbits' own wait (5 s by default) is answered 201 with status `pending`; it is then
 *   looked up until it is final or `timeoutMs` has passed.
 * - LNbits takes no fee limit. It reserves its own (`/payments/fee-reserve`), and a reserve above
 *   `maxFeeMsat` is refused before paying.
 * - LNbits neither creates nor pays amountless invoices, records the invoice amount rather than the
 *   amount received, and does not say which network it runs on: pass `network` (default mainnet).
 *   It writes its site title into invoices created without a memo.
 * - A lookup shows `details` only to a key of the wallet that owns the payment.
 * - Times are ISO 8601 (without a zone meaning UTC) in recent versions, unix seconds in old ones.
 */
import { z } from 'zod';
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { type DecodedInvoice, decodeInvoice } from './bolt11.js';
import { decodeCreatedInvoice } from './created-invoice.js';
import { paymentTimeout, SOCKET_GRACE_MS, withDeadline } from './deadline.js';
import {
  assertPaymentHash,
  createBodyParser,
  createHttpClient,
  type HttpRequestOptions,
  type HttpResponse,
  PAYMENT_HASH,
} from './http.js';
import { pollForSettlement, pollUntil } from './poll.js';
import type {
  InvoiceStatus,
  LightningBackend,
  LightningNetwork,
  PaymentResult,
  PaymentStatus,
} from './types.js';
import { msatToWholeSats } from './whole-sats.js';

/** Options of {@link createLnbitsBackend}. */
export interface LnbitsOptions {
  /** Base URL of the LNbits server, e.g. `https://lnbits.example.com`. */
  url: string;
  /** The wallet's invoice (read) key: creates invoices and reads. */
  invoiceKey: string;
  /** The wallet's admin key: needed to pay. */
  adminKey?: string;
  /** Network of the node behind LNbits, which LNbits does not report; default `mainnet`. */
  network?: LightningNetwork;
  /** Per-request timeout; default 30 000 ms. */
  timeoutMs?: number;
  /** Delay between look-ups while waiting for an invoice or a pending payment; default 1 000 ms. */
  pollIntervalMs?: number;
  /** Pins the server certificate (PEM) of a self-signed LNbits. */
  tls?: { certPem?: string };
}

const parse = createBodyParser('LNbits');
const time = z.union([z.number(), z.string()]);

/** LNbits' `Payment` model, the fields this backend reads. */
const paymentSchema = z.object({
  payment_hash: z.string().regex(PAYMENT_HASH),
  amount: z.number().int(),
  fee: z.number().int().nullish(),
  status: z.string().nullish(),
  preimage: z.string().nullish(),
  expiry: time.nullish(),
  updated_at: time.nullish(),
});
type LnbitsPayment = z.infer<typeof paymentSchema>;

const lookupSchema = z.object({
  paid: z.boolean(),
  status: z.string().nullish(),
  preimage: z.string().nullish(),
  details: paymentSchema.nullish(),
});
type LnbitsLookup = z.infer<typeof lookupSchema> & { details: LnbitsPayment };

/** A `Payment` (recent versions) or `{payment_hash, payment_request, checking_id}` (old ones). */
const createdSchema = z.object({
  payment_hash: z.string().regex(PAYMENT_HASH),
  payment_request: z.string().nullish(),
  bolt11: z.string().nullish(),
});
/** A `Payment` (recent versions) or `{payment_hash, checking_id}` (old ones). */
const paidSchema = paymentSchema.partial().extend({ payment_hash: z.string().regex(PAYMENT_HASH) });
const walletSchema = z.object({ name: z.string().nullish(), balance: z.number().int() });
const feeReserveSchema = z.object({ fee_reserve: z.number().int().nonnegative() });
const errorSchema = z.object({ detail: z.unknown(), status: z.string().nullish() });

/**
 * Creates a backend for one LNbits wallet. Prefer `connectLightning('lnbits+https://…')`, which also
 * wraps it in the shared safety layer.
 *
 * @example
 * ```ts
 * const ln = createLnbitsBackend({ url: 'https://lnbits.example.com', invoiceKey, adminKey });
 * const inv = await ln.createInvoice({ amountMsat: 21_000n, memo: 'forecast' });
 * ```
 */
export function createLnbitsBackend(options: LnbitsOptions): LightningBackend {
  if (!options.invoiceKey) {
    throw new TollwayError('invalid_connection_string', 'LNbits needs the wallet invoice key');
  }
  const network = options.network ?? 'mainnet';
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const readKey = options.invoiceKey;
  const adminKey = options.adminKey;
  const http = createHttpClient({
    baseUrl: options.url,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
  });

  function call(
    method: string,
    path: string,
    key: string,
    extra: HttpRequestOptions = {},
  ): Promise<HttpResponse> {
    return http.request(method, path, { ...extra, headers: { 'x-api-key': key } });
  }

  async function fetchPayment(paymentHash: string): Promise<LnbitsLookup> {
    assertPaymentHash(paymentHash);
    const res = await call('GET', `/api/v1/payments/${paymentHash}`, readKey);
    if (res.status === 404) throw notFound(paymentHash);
    const found = parse(lookupSchema, ok(res, 'a payment lookup'), 'payment lookup');
    if (!found.details) {
      // LNbits answers a key of another wallet (or no valid key) without the details.
      throw new TollwayError('unauthorized', 'LNbits did not show the payment to this wallet key', {
        details: { paymentHash },
      });
    }
    return { ...found, details: found.details };
  }

  async function lookupInvoice(paymentHash: string): Promise<InvoiceStatus> {
    const found = await fetchPayment(paymentHash);
    const payment = found.details;
    if (payment.amount <= 0) throw notFound(paymentHash);
    const status: InvoiceStatus = {
      paymentHash,
      state: 'open',
      amountMsat: BigInt(payment.amount),
    };
    const outcome = outcomeOf(found);
    if (outcome === 'success') {
      status.state = 'settled';
      status.amountPaidMsat = BigInt(payment.amount);
      const preimage = preimageOf(found);
      if (preimage !== undefined) status.preimage = preimage;
      const settledAt = unixMs(payment.updated_at);
      if (settledAt !== undefined) status.settledAt = settledAt;
      return status;
    }
    const expiresAt = unixMs(payment.expiry);
    const expired = expiresAt !== undefined && expiresAt <= Date.now();
    if (expired) status.state = 'expired';
    else if (outcome === 'failed') status.state = 'canceled';
    return status;
  }

  async function lookupPayment(paymentHash: string): Promise<PaymentStatus> {
    const found = await fetchPayment(paymentHash);
    const payment = found.details;
    if (payment.amount >= 0) throw notFound(paymentHash);
    const outcome = outcomeOf(found);
    const status: PaymentStatus = {
      paymentHash,
      state: outcome === 'success' ? 'succeeded' : outcome,
      amountMsat: BigInt(-payment.amount),
    };
    if (outcome === 'success') {
      const preimage = preimageOf(found);
      if (preimage !== undefined) status.preimage = preimage;
      status.feeMsat = BigInt(Math.abs(payment.fee ?? 0));
    }
    return status;
  }

  async function feeReserve(paymentRequest: string, key: string): Promise<bigint> {
    const res = await call('GET', '/api/v1/payments/fee-reserve', key, {
      query: { invoice: paymentRequest },
    });
    return BigInt(parse(feeReserveSchema, ok(res, 'the fee reserve'), 'fee reserve').fee_reserve);
  }

  /** Looks a payment up until it is final or the deadline passes. */
  async function follow(invoice: DecodedInvoice, deadline: number): Promise<PaymentResult> {
    const paymentHash = invoice.paymentHash;
    const status = await pollUntil(
      () =>
        lookupPayment(paymentHash).catch((error: unknown) => {
          // Old LNbits versions delete an outgoing payment that failed.
          if (!isTollwayError(error, 'invoice_not_found')) throw error;
          throw new TollwayError('payment_failed', 'LNbits dropped the payment: it failed', {
            details: { paymentHash },
          });
        }),
      (s) => s.state !== 'pending',
      {
        timeoutMs: Math.max(deadline - Date.now(), 0),
        intervalMs: pollIntervalMs,
        timeoutMessage:
          'LNbits still reports the payment pending; look it up by payment hash later',
        details: { paymentHash, pending: true },
      },
    );
    if (status.state === 'failed') {
      throw new TollwayError('payment_failed', 'LNbits reports the payment failed', {
        details: { paymentHash },
      });
    }
    if (status.preimage === undefined) {
      throw new TollwayError('preimage_mismatch', 'LNbits reports success without a preimage', {
        details: { paymentHash },
      });
    }
    return {
      paymentHash,
      preimage: status.preimage,
      amountMsat: invoice.amountMsat ?? status.amountMsat ?? 0n,
      feeMsat: status.feeMsat ?? 0n,
    };
  }

  return {
    kind: 'lnbits',
    capabilities: { canReceive: true, canPay: adminKey !== undefined },

    async getInfo() {
      const res = await call('GET', '/api/v1/wallet', readKey);
      const wallet = parse(walletSchema, ok(res, 'the wallet'), 'wallet');
      return wallet.name ? { network, alias: wallet.name } : { network };
    },

    async createInvoice(params) {
      const sats = msatToWholeSats(params.amountMsat, 'LNbits');
      const description =
        params.descriptionHash !== undefined
          ? { description_hash: params.descriptionHash }
          : { memo: params.memo ?? '' };
      const res = await call('POST', '/api/v1/payments', readKey, {
        // `out` defaults to true (pay) in LNbits: never leave it out.
        json: {
          out: false,
          amount: Number(sats),
          unit: 'sat',
          expiry: params.expirySeconds ?? 3600,
          ...description,
        },
        acceptStatuses: [520],
      });
      if (res.status !== 200 && res.status !== 201) {
        const { detail } = detailOf(res);
        throw new TollwayError('backend_error', `LNbits refused to create the invoice: ${detail}`, {
          details: { status: res.status },
        });
      }
      const created = parse(createdSchema, res.body, 'created invoice');
      const paymentRequest = created.payment_request ?? created.bolt11;
      if (!paymentRequest) {
        throw new TollwayError(
          'backend_error',
          'LNbits created an invoice without a payment request',
        );
      }
      return decodeCreatedInvoice(
        'LNbits',
        { paymentRequest, paymentHash: created.payment_hash },
        params.amountMsat,
        network,
      );
    },

    lookupInvoice,

    waitForSettlement: pollForSettlement(lookupInvoice, pollIntervalMs),

    async payInvoice(params): Promise<PaymentResult> {
      if (adminKey === undefined) {
        throw new TollwayError('capability_unsupported', 'paying with LNbits needs the admin key');
      }
      const invoice = decodeInvoice(params.paymentRequest, { network });
      if (invoice.amountMsat === undefined) {
        throw new TollwayError('capability_unsupported', 'LNbits cannot pay amountless invoices');
      }
      const paymentHash = invoice.paymentHash;
      const timeoutMs = params.timeoutMs ?? 60_000;
      const deadline = Date.now() + timeoutMs;
      const maxFeeMsat = params.maxFeeMsat ?? invoice.amountMsat / 100n + 10_000n;
      const reserve = await feeReserve(invoice.paymentRequest, adminKey);
      if (reserve > maxFeeMsat) {
        throw new TollwayError(
          'no_route',
          `LNbits reserves up to ${reserve} msat for fees, above the limit of ${maxFeeMsat} msat`,
          { details: { paymentHash, feeReserveMsat: reserve.toString() } },
        );
      }
      const remaining = Math.max(deadline - Date.now(), 1);
      const res = await withDeadline(
        remaining,
        () => paymentTimeout(paymentHash, timeoutMs),
        (signal) =>
          call('POST', '/api/v1/payments', adminKey, {
            json: { out: true, bolt11: invoice.paymentRequest },
            acceptStatuses: [520],
            signal,
            timeoutMs: remaining + SOCKET_GRACE_MS,
          }),
      );
      if (res.status !== 200 && res.status !== 201) throw paymentError(res, paymentHash);
      const paid = parse(paidSchema, res.body, 'payment');
      if (paid.status === 'failed') {
        throw new TollwayError('payment_failed', 'LNbits reports the payment failed', {
          details: { paymentHash },
        });
      }
      const preimage = paid.status === 'success' ? hexOrUndefined(paid.preimage) : undefined;
      if (preimage === undefined) return follow(invoice, deadline);
      return {
        paymentHash,
        preimage,
        amountMsat: invoice.amountMsat,
        feeMsat: BigInt(Math.abs(paid.fee ?? 0)),
      };
    },

    lookupPayment,

    async getBalance() {
      const res = await call('GET', '/api/v1/wallet', readKey);
      return { msat: BigInt(parse(walletSchema, ok(res, 'the wallet'), 'wallet').balance) };
    },

    close: () => http.close(),
  };
}

function notFound(paymentHash: string): TollwayError {
  return new TollwayError('invoice_not_found', 'LNbits knows no such payment in this wallet', {
    details: { paymentHash },
  });
}

/** The body of a 2xx answer; any other status is a `backend_error` naming LNbits' detail. */
function ok(res: HttpResponse, what: string): unknown {
  if (res.status >= 200 && res.status < 300) return res.body;
  const { detail } = detailOf(res);
  throw new TollwayError(
    'backend_error',
    `LNbits answered HTTP ${res.status} for ${what}: ${detail}`,
    {
      details: { status: res.status },
    },
  );
}

function detailOf(res: HttpResponse): { detail: string; status?: string } {
  const parsed = errorSchema.safeParse(res.body);
  if (!parsed.success) return { detail: res.text.slice(0, 200) };
  const { detail, status } = parsed.data;
  const text = typeof detail === 'string' ? detail : (JSON.stringify(detail) ?? '');
  return status ? { detail: text.slice(0, 200), status } : { detail: text.slice(0, 200) };
}

/** Maps LNbits' answer to a refused or failed payment (400, 404, 520 `{detail, status}`). */
function paymentError(res: HttpResponse, paymentHash: string): TollwayError {
  const { detail, status } = detailOf(res);
  let code: TollwayErrorCode = 'payment_failed';
  if (/insufficient balance|must reserve/i.test(detail)) code = 'insufficient_balance';
  else if (status === 'success' || /already paid/i.test(detail)) code = 'already_paid';
  else if (status === 'pending') code = 'payment_timeout';
  else if (/limit/i.test(detail)) code = 'quota_exceeded';
  else if (/route|path/i.test(detail)) code = 'no_route';
  else if (/decod|bolt11/i.test(detail)) code = 'invalid_invoice';
  return new TollwayError(code, `LNbits: ${detail}`, {
    details: { paymentHash, status: res.status, ...(status ? { lnbitsStatus: status } : {}) },
  });
}

function outcomeOf(found: LnbitsLookup): 'success' | 'failed' | 'pending' {
  if (found.paid) return 'success';
  if (found.status === 'failed' || found.details.status === 'failed') return 'failed';
  return 'pending';
}

function preimageOf(found: LnbitsLookup): string | undefined {
  return hexOrUndefined(found.preimage) ?? hexOrUndefined(found.details.preimage);
}

function hexOrUndefined(value: string | null | undefined): string | undefined {
  return value && /^[0-9a-fA-F]{64}$/.test(value) ? value.toLowerCase() : undefined;
}

/** Unix seconds (old LNbits) or ISO 8601, where a time without a zone is UTC. */
function unixMs(value: string | number | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') return Math.round(value * 1000);
  const zoned = /(?:z|[+-]\d\d:?\d\d)$/i.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isNaN(ms) ? undefined : ms;
}
