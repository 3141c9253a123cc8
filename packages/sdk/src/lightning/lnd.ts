/**
 * LND over its REST gateway (grpc-gateway, default `https://<host>:8080`): the macaroon travels in the
 * `Grpc-Metadata-macaroon` header as hex, and the node's self-signed `tls.cert` is pinned.
 *
 * What the wire looks like, and what bites:
 *
 * - protojson: int64 values are JSON strings (parsed here into `bigint`), bytes are standard base64
 *   in bodies;
 * - bytes in a URL path or query are decoded by Go's *padded* base64 decoders, so they must be sent
 *   as padded base64url: standard base64 breaks on `/` (another route) and `+` (a space in a query),
 *   and unpadded base64url is refused;
 * - server streams are newline-delimited `{"result": …}` objects, or one `{"error": …}`;
 * - most failures, a rejected macaroon included, are HTTP 500 with a gRPC status `{code, message}`;
 * - `fee_limit_msat` of 0 means "zero-fee routes only", so a limit is always sent explicitly;
 * - lnd 0.21 removed `POST /v1/channels/transactions`: paying uses the streaming `/v2/router/send`
 *   and a payment is looked up with `/v2/router/track/{hash}`.
 */
import { z } from 'zod';
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import {
  base64ToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  hexToBytes,
} from '../internal/bytes.js';
import { decodeInvoice } from './bolt11.js';
import { decodeCreatedInvoice } from './created-invoice.js';
import { paymentTimeout, SOCKET_GRACE_MS, withDeadline } from './deadline.js';
import {
  createBodyParser,
  createNodeRestClient,
  type HttpRequestOptions,
  type HttpResponse,
  type NodeRestOptions,
} from './http.js';
import type {
  InvoiceStatus,
  LightningBackend,
  LightningNetwork,
  PaymentResult,
  PaymentStatus,
} from './types.js';

/** Options of {@link createLndBackend}: `url` is the REST endpoint, `certPem` the node's `tls.cert`. */
export interface LndOptions extends NodeRestOptions {
  /** A macaroon, hex: `invoice.macaroon` to receive, `admin.macaroon` (or one baked for `offchain:write`) to pay. */
  macaroonHex: string;
}

const DEFAULT_EXPIRY_SECONDS = 3600;
const DEFAULT_WAIT_MS = 60_000;
/**
 * Statuses grpc-gateway answers a gRPC error with, whose body is read here. 401/403 and 503/504 are
 * left to the HTTP client: it maps them as their gRPC codes (16/7, 14/4) are mapped here, and also
 * maps a proxy's pages with those statuses.
 */
const ERROR_STATUSES = [400, 404, 409, 429, 499, 500, 501];

const int64 = z
  .string()
  .regex(/^\d{1,20}$/, 'expected an int64 as a decimal string')
  .transform((text) => BigInt(text));

function base64Hash(text: string): string | undefined {
  try {
    const bytes = base64ToBytes(text);
    return bytes.length === 32 ? bytesToHex(bytes) : undefined;
  } catch {
    return undefined;
  }
}

const bytes32 = z.string().transform(base64Hash).pipe(z.string());
const hex32 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/)
  .transform((text) => text.toLowerCase());

const invoiceShape = z.object({
  r_hash: bytes32,
  r_preimage: z.string(),
  value_msat: int64,
  amt_paid_msat: int64,
  state: z.enum(['OPEN', 'ACCEPTED', 'SETTLED', 'CANCELED']),
  creation_date: int64,
  settle_date: int64,
  expiry: int64,
});

const paymentShape = z.object({
  payment_hash: hex32,
  payment_preimage: z.string(),
  value_msat: int64,
  fee_msat: int64,
  status: z.enum(['UNKNOWN', 'INITIATED', 'IN_FLIGHT', 'SUCCEEDED', 'FAILED']),
  failure_reason: z.string(),
});

/** A gRPC status: the body of an error answer, or the `error` of a stream line. */
const grpcStatusShape = z.object({ code: z.number().optional(), message: z.string() });

/** A stream's line; a stream that fails before it starts answers a bare gRPC status instead. */
const streamLineShape = z.union([
  z.object({ result: z.unknown() }).refine((line) => line.result !== undefined),
  z.object({ error: grpcStatusShape }),
  grpcStatusShape,
]);

const addInvoiceShape = z.object({ r_hash: bytes32, payment_request: z.string() });

const infoShape = z.object({
  identity_pubkey: z.string().regex(/^0[23][0-9a-f]{64}$/),
  alias: z.string(),
  chains: z.array(z.object({ chain: z.string(), network: z.string() })).min(1),
});

const balanceShape = z.object({ local_balance: z.object({ msat: int64 }) });

type GrpcStatus = z.output<typeof grpcStatusShape>;
type LndInvoice = z.output<typeof invoiceShape>;
type LndPayment = z.output<typeof paymentShape>;

const parse = createBodyParser('LND');

const NETWORKS: Record<string, LightningNetwork> = {
  mainnet: 'mainnet',
  testnet: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
};

const FAILURE_CODES: Record<string, TollwayErrorCode> = {
  FAILURE_REASON_NO_ROUTE: 'no_route',
  FAILURE_REASON_INSUFFICIENT_BALANCE: 'insufficient_balance',
};

/**
 * Maps an LND error to a typed error. `status` is the HTTP status (absent for an error that arrives
 * inside a stream); `lookup` marks calls where "not found" means an unknown hash.
 */
function lndError(status: number | undefined, grpc: GrpcStatus, lookup: boolean): TollwayError {
  const { code, message } = grpc;
  const fail = (errorCode: TollwayErrorCode) =>
    new TollwayError(errorCode, `LND: ${message}`, {
      details: { status, grpcCode: code, message },
    });
  // gRPC codes: 1 canceled, 4 deadline exceeded, 5 not found, 7 permission denied, 14 unavailable, 16 unauthenticated.
  if (code === 7 || code === 16) return fail('unauthorized');
  if (/macaroon|verification failed/i.test(message)) return fail('unauthorized');
  if (
    lookup &&
    (status === 404 ||
      code === 5 ||
      /unable to locate|no existing invoices|isn't initiated/i.test(message))
  ) {
    return fail('invoice_not_found');
  }
  if (/already paid/i.test(message)) return fail('already_paid');
  if (/in transition|in flight/i.test(message)) return fail('payment_timeout');
  if (/invoice expired/i.test(message)) return fail('invoice_expired');
  if (/not for current active network/i.test(message)) return fail('wrong_network');
  const transient =
    code === 1 ||
    code === 4 ||
    code === 14 ||
    /starting|not yet ready|locked|shutting down/i.test(message);
  if (transient || (code === undefined && (status ?? 0) >= 500)) return fail('backend_unavailable');
  return fail('backend_error');
}

/** Maps an error answer: a gRPC status, or a page that is not one (a proxy's). */
function answerError(response: HttpResponse, lookup: boolean): TollwayError {
  const grpc = grpcStatusShape.safeParse(response.body);
  return lndError(
    response.status,
    grpc.success ? grpc.data : { message: response.text.slice(0, 200) },
    lookup,
  );
}

/** Padded base64url, the form grpc-gateway decodes in a path or query. */
function urlHash(paymentHash: string): string {
  return `${bytesToBase64Url(hexToBytes(paymentHash, 32))}=`;
}

function invoiceStatus(invoice: LndInvoice, now: number): InvoiceStatus {
  const expiresAt = Number(invoice.creation_date + invoice.expiry) * 1000;
  const preimage = invoice.r_preimage === '' ? undefined : base64Hash(invoice.r_preimage);
  const status: InvoiceStatus = { paymentHash: invoice.r_hash, state: 'open' };
  if (invoice.value_msat > 0n) status.amountMsat = invoice.value_msat;
  if (preimage !== undefined) status.preimage = preimage;
  if (invoice.state === 'SETTLED') {
    status.state = 'settled';
    status.amountPaidMsat = invoice.amt_paid_msat;
    status.settledAt = Number(invoice.settle_date) * 1000;
  } else if (invoice.state === 'CANCELED') {
    // lnd cancels an invoice when it expires; only the clock tells the two apart.
    status.state = now >= expiresAt ? 'expired' : 'canceled';
  } else if (invoice.state === 'OPEN' && now >= expiresAt) {
    status.state = 'expired';
  }
  return status;
}

function paymentStatus(payment: LndPayment): PaymentStatus {
  const status: PaymentStatus = {
    paymentHash: payment.payment_hash,
    state: 'pending',
    amountMsat: payment.value_msat,
    feeMsat: payment.fee_msat,
  };
  if (payment.status === 'SUCCEEDED') {
    status.state = 'succeeded';
    status.preimage = parse(hex32, payment.payment_preimage, 'payment preimage');
  } else if (payment.status === 'FAILED') {
    status.state = 'failed';
    status.failureReason = payment.failure_reason;
  }
  return status;
}

/**
 * Creates a raw LND REST backend. Wrap it with `wrapBackend` (as `connectLightning` does) before
 * paying: the wrapper adds invoice checks, idempotency and preimage verification.
 *
 * An invoice amount of 0 creates an amountless invoice. `payInvoice` sends an explicit fee limit
 * (default 1% + 10 sat) and `timeout_seconds` derived from `timeoutMs`; when `timeoutMs` passes first
 * it fails with `payment_timeout` while lnd keeps trying, and `lookupPayment` tells the outcome.
 *
 * @example
 * ```ts
 * const lnd = createLndBackend({ url: 'https://127.0.0.1:8080', macaroonHex, certPem });
 * const invoice = await lnd.createInvoice({ amountMsat: 21_000n, memo: 'forecast' });
 * ```
 */
export function createLndBackend(options: LndOptions): LightningBackend {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(options.macaroonHex)) {
    throw new TollwayError('invalid_connection_string', 'LND macaroon must be hex');
  }
  const client = createNodeRestClient(options, { 'Grpc-Metadata-macaroon': options.macaroonHex });

  async function call(method: string, path: string, opts: HttpRequestOptions = {}, lookup = false) {
    const response = await client.request(method, path, {
      ...opts,
      acceptStatuses: ERROR_STATUSES,
    });
    if (response.status >= 300) throw answerError(response, lookup);
    return response.body;
  }

  /**
   * The `result` objects of a stream; an error line becomes a typed error. A stream that fails before
   * its first message answers an error status with one such line.
   */
  async function* stream(method: string, path: string, opts: HttpRequestOptions, lookup: boolean) {
    const lines = client.requestLines(method, path, { ...opts, acceptStatuses: ERROR_STATUSES });
    for await (const line of lines) {
      const parsed = parse(streamLineShape, line, 'stream line');
      if (!('result' in parsed)) {
        throw lndError(undefined, 'error' in parsed ? parsed.error : parsed, lookup);
      }
      yield parsed.result;
    }
  }

  async function lookupInvoice(paymentHash: string): Promise<InvoiceStatus> {
    const body = await call(
      'GET',
      '/v2/invoices/lookup',
      { query: { payment_hash: urlHash(paymentHash) } },
      true,
    );
    return invoiceStatus(parse(invoiceShape, body, 'invoice'), Date.now());
  }

  return {
    kind: 'lnd',
    capabilities: { canReceive: true, canPay: true },

    async getInfo() {
      const info = parse(infoShape, await call('GET', '/v1/getinfo'), 'node info');
      const name = info.chains[0]?.network ?? '';
      const network = NETWORKS[name];
      if (network === undefined) {
        throw new TollwayError(
          'unsupported_network',
          `LND runs on ${name}, which Tollway does not know`,
        );
      }
      return { pubkey: info.identity_pubkey, network, alias: info.alias };
    },

    async createInvoice(params) {
      const body: Record<string, string> = {
        value_msat: params.amountMsat.toString(),
        expiry: String(params.expirySeconds ?? DEFAULT_EXPIRY_SECONDS),
      };
      if (params.descriptionHash !== undefined) {
        body.description_hash = bytesToBase64(hexToBytes(params.descriptionHash, 32));
      } else if (params.memo !== undefined) {
        body.memo = params.memo;
      }
      const added = parse(
        addInvoiceShape,
        await call('POST', '/v1/invoices', { json: body }),
        'invoice',
      );
      return decodeCreatedInvoice(
        'LND',
        { paymentRequest: added.payment_request, paymentHash: added.r_hash },
        params.amountMsat,
      );
    },

    lookupInvoice,

    async waitForSettlement(paymentHash, waitOptions = {}) {
      const current = await lookupInvoice(paymentHash);
      if (current.state !== 'open') return current;
      const timeoutMs = waitOptions.timeoutMs ?? DEFAULT_WAIT_MS;
      const path = `/v2/invoices/subscribe/${urlHash(paymentHash)}`;
      const final = await withDeadline(
        timeoutMs,
        () =>
          new TollwayError('payment_timeout', `invoice not settled within ${timeoutMs} ms`, {
            details: { paymentHash },
          }),
        async (signal) => {
          // lnd sends the current state first, then every change.
          for await (const result of stream(
            'GET',
            path,
            { signal, timeoutMs: timeoutMs + SOCKET_GRACE_MS },
            true,
          )) {
            const status = invoiceStatus(parse(invoiceShape, result, 'invoice'), Date.now());
            if (status.state !== 'open') return status;
          }
          return undefined;
        },
        waitOptions.signal,
      );
      if (final !== undefined) return final;
      const last = await lookupInvoice(paymentHash);
      if (last.state !== 'open') return last;
      throw new TollwayError(
        'backend_unavailable',
        'LND ended the invoice subscription before a final state',
        {
          details: { paymentHash },
        },
      );
    },

    async payInvoice(params): Promise<PaymentResult> {
      const invoice = decodeInvoice(params.paymentRequest);
      const amountMsat = invoice.amountMsat ?? params.amountMsat;
      if (amountMsat === undefined)
        throw new TollwayError('amount_required', 'invoice has no amount; pass amountMsat');
      const timeoutMs = params.timeoutMs ?? DEFAULT_WAIT_MS;
      const body: Record<string, unknown> = {
        payment_request: invoice.paymentRequest,
        // Never left out: an absent or zero fee limit means zero-fee routes only.
        fee_limit_msat: (params.maxFeeMsat ?? amountMsat / 100n + 10_000n).toString(),
        timeout_seconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
        no_inflight_updates: false,
      };
      if (invoice.amountMsat === undefined) body.amt_msat = amountMsat.toString();
      const paymentHash = invoice.paymentHash;
      const payment = await withDeadline(
        timeoutMs,
        () => paymentTimeout(paymentHash, timeoutMs),
        async (signal) => {
          let updates = 0;
          try {
            const opts = { json: body, signal, timeoutMs: timeoutMs + SOCKET_GRACE_MS };
            for await (const result of stream('POST', '/v2/router/send', opts, false)) {
              updates += 1;
              const update = parse(paymentShape, result, 'payment');
              if (update.status === 'SUCCEEDED' || update.status === 'FAILED') return update;
            }
          } catch (error) {
            if (updates === 0 || !isTollwayError(error, 'backend_unavailable')) throw error;
          }
          // Once lnd has reported the payment, a lost or ended stream does not mean it failed.
          throw new TollwayError(
            updates > 0 ? 'payment_timeout' : 'backend_unavailable',
            'LND ended the payment stream before a final state; look the payment up by hash',
            { details: { paymentHash } },
          );
        },
      );
      if (payment.status === 'FAILED') {
        const reason = payment.failure_reason;
        throw new TollwayError(
          FAILURE_CODES[reason] ?? 'payment_failed',
          `LND: payment failed (${reason})`,
          {
            details: { paymentHash, failureReason: reason },
          },
        );
      }
      return {
        paymentHash,
        preimage: parse(hex32, payment.payment_preimage, 'payment preimage'),
        amountMsat: payment.value_msat,
        feeMsat: payment.fee_msat,
      };
    },

    async lookupPayment(paymentHash) {
      // The first update of a track stream is the current state; the stream stays open while in flight.
      for await (const result of stream(
        'GET',
        `/v2/router/track/${urlHash(paymentHash)}`,
        {},
        true,
      )) {
        return paymentStatus(parse(paymentShape, result, 'payment'));
      }
      throw new TollwayError('backend_error', 'LND ended the payment stream without a state', {
        details: { paymentHash },
      });
    },

    async getBalance() {
      const balance = parse(
        balanceShape,
        await call('GET', '/v1/balance/channels'),
        'channel balance',
      );
      return { msat: balance.local_balance.msat };
    },

    close: () => client.close(),
  };
}
