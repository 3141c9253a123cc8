/**
 * A protocol-faithful double of LND's REST gateway (grpc-gateway in front of lnd's gRPC services),
 * served over HTTPS with a self-signed certificate on loopback.
 *
 * Modelled on lnd's documented REST API and grpc-gateway's behaviour:
 *
 * - protojson bodies: snake_case, every field present, int64 as strings, bytes as standard base64;
 *   requests may send int64 as strings or numbers and bytes in either base64 alphabet;
 * - bytes in a path or query are decoded with Go's padded decoders (standard, then URL-safe): a
 *   standard-base64 hash with `/` misses the route (404), `+` in a query turns into a space, and
 *   unpadded base64url is refused (400);
 * - errors are a gRPC status `{code, message, details}`; most lnd errors are code 2 (HTTP 500), a
 *   bad macaroon included;
 * - server streams are chunked, one `{"result": …}` per line; an error before the first message
 *   sets the HTTP status and sends `{"error": …}`;
 * - `POST /v2/router/send` refuses a hash that is already paid or in flight (409), streams several
 *   IN_FLIGHT updates and then SUCCEEDED or FAILED; `payment_preimage` is hex, all zeros until
 *   the payment succeeds; `fee_limit_*` absent or 0 means zero-fee routes only;
 * - an unpaid invoice is CANCELED when it expires.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeInvoice } from '../../src/lightning/bolt11.js';
import type { FaultMode } from '../lightning/backend-suite.js';
import { createFakeNode, type FakeInvoice, type FakePayment } from './fake-node.js';
import { type NodeHttpsDouble, startNodeHttpsDouble } from './http-double.js';

/** One request the double received. */
export interface LndRequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** Lines streamed back, for streaming calls. */
  lines: unknown[];
}

/** A running LND double. */
export interface LndDouble extends NodeHttpsDouble {
  macaroonHex: string;
  requests: LndRequestRecord[];
  /** Cut payment streams right after their first update (the payment carries on). */
  dropSendStreams: boolean;
}

type Json = Record<string, unknown>;

class GrpcError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
  }
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const PADDED_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PADDED_URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

/** grpc-gateway's `runtime.Bytes`: Go's padded standard decoder, then the padded URL-safe one. */
function pathBytes(name: string, text: string): string {
  if (!PADDED_STD.test(text) && !PADDED_URL.test(text)) {
    throw new GrpcError(
      400,
      3,
      `type mismatch, parameter: ${name}, error: illegal base64 data at input byte ${text.length}`,
    );
  }
  return Buffer.from(text, 'base64').toString('hex');
}

/** protojson bytes: either alphabet, padding optional. */
function jsonBytes(name: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
    throw new GrpcError(400, 3, `proto: invalid value for bytes field ${name}`);
  }
  return Buffer.from(value, 'base64').toString('hex');
}

/** protojson int64/int32: a JSON number or a decimal string. */
function jsonInt(name: string, value: unknown): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new GrpcError(
    400,
    3,
    `proto: invalid value for int field ${name}: ${JSON.stringify(value)}`,
  );
}

function invoiceJson(invoice: FakeInvoice): Json {
  const state =
    invoice.state === 'settled' ? 'SETTLED' : invoice.state === 'canceled' ? 'CANCELED' : 'OPEN';
  const value = invoice.amountMsat ?? 0n;
  const paid = invoice.amountPaidMsat ?? 0n;
  return {
    memo: invoice.description ?? '',
    r_preimage: b64(invoice.preimage),
    r_hash: b64(invoice.paymentHash),
    value: String(value / 1000n),
    value_msat: String(value),
    settled: state === 'SETTLED',
    creation_date: String(invoice.createdAt),
    settle_date: String(invoice.settledAt === undefined ? 0 : Math.floor(invoice.settledAt / 1000)),
    payment_request: invoice.paymentRequest,
    description_hash: invoice.descriptionHash === undefined ? '' : b64(invoice.descriptionHash),
    expiry: String(invoice.expirySeconds),
    fallback_addr: '',
    cltv_expiry: '80',
    route_hints: [],
    private: false,
    add_index: String(invoice.addIndex),
    settle_index: String(invoice.settleIndex),
    amt_paid: String(paid),
    amt_paid_sat: String(paid / 1000n),
    amt_paid_msat: String(paid),
    state,
    htlcs: [],
    features: {},
    is_keysend: false,
    payment_addr: b64(invoice.paymentSecret),
    is_amp: false,
    amp_invoice_state: {},
  };
}

function paymentJson(payment: FakePayment): Json {
  const status =
    payment.status === 'succeeded'
      ? 'SUCCEEDED'
      : payment.status === 'failed'
        ? 'FAILED'
        : 'IN_FLIGHT';
  const reason =
    payment.failure === undefined
      ? 'FAILURE_REASON_NONE'
      : payment.failure === 'insufficient_balance'
        ? 'FAILURE_REASON_INSUFFICIENT_BALANCE'
        : 'FAILURE_REASON_NO_ROUTE'; // lnd finds "no route" when the fee limit rules every route out
  const createdNs = BigInt(payment.createdAt) * 1_000_000n;
  return {
    payment_hash: payment.paymentHash,
    value: String(payment.amountMsat / 1000n),
    creation_date: String(Math.floor(payment.createdAt / 1000)),
    fee: String(payment.feeMsat / 1000n),
    payment_preimage: payment.status === 'succeeded' ? payment.preimage : '0'.repeat(64),
    value_sat: String(payment.amountMsat / 1000n),
    value_msat: String(payment.amountMsat),
    payment_request: payment.paymentRequest,
    status,
    fee_sat: String(payment.feeMsat / 1000n),
    fee_msat: String(payment.feeMsat),
    creation_time_ns: String(createdNs),
    htlcs: Array.from({ length: payment.status === 'failed' ? 0 : payment.attempts }, (_, i) => ({
      attempt_id: String(i + 1),
      status:
        i + 1 < payment.attempts || payment.status === 'in_flight' ? 'IN_FLIGHT' : 'SUCCEEDED',
      attempt_time_ns: String(createdNs + BigInt(i)),
    })),
    payment_index: String(payment.index),
    failure_reason: reason,
    first_hop_custom_records: {},
  };
}

/**
 * Starts an LND REST double on `https://127.0.0.1:<random port>`.
 *
 * @example
 * ```ts
 * const lnd = await startLndDouble();
 * const backend = createLndBackend({ url: lnd.url, macaroonHex: lnd.macaroonHex, certPem: lnd.certPem });
 * ```
 */
export async function startLndDouble(): Promise<LndDouble> {
  const node = createFakeNode();
  const macaroonHex = randomBytes(40).toString('hex');
  const requests: LndRequestRecord[] = [];

  type Handler = (
    record: LndRequestRecord,
    param: string | undefined,
    res: ServerResponse,
  ) => Json | undefined;

  function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  /** Starts a server stream; returns a writer of `{"result": …}` lines. */
  function openStream(res: ServerResponse, record: LndRequestRecord): (result: Json) => void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    return (result) => {
      record.lines.push({ result });
      res.write(`${JSON.stringify({ result })}\n`);
    };
  }

  function streamPayment(
    res: ServerResponse,
    record: LndRequestRecord,
    payment: FakePayment,
    inflight: boolean,
  ) {
    const write = openStream(res, record);
    const finished = () => payment.status !== 'in_flight';
    write(paymentJson(payment));
    if (finished()) return res.end();
    if (double.dropSendStreams && record.path === '/v2/router/send') {
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    const stop = node.subscribe((event) => {
      if (event.kind !== 'payment' || event.payment.paymentHash !== payment.paymentHash) return;
      if (!finished() && !inflight) return;
      write(paymentJson(event.payment));
      if (finished()) {
        stop();
        res.end();
      }
    });
    res.on('close', stop);
  }

  const routes: Record<string, Handler> = {
    'GET /v1/getinfo': () => ({
      version: '0.20.0-beta commit=v0.20.0-beta',
      commit_hash: '0'.repeat(40),
      identity_pubkey: node.pubkey,
      alias: 'tollway-lnd-double',
      color: '#3399ff',
      num_pending_channels: 0,
      num_active_channels: 1,
      num_inactive_channels: 0,
      num_peers: 1,
      block_height: 800,
      block_hash: '0'.repeat(64),
      best_header_timestamp: String(Math.floor(Date.now() / 1000)),
      synced_to_chain: true,
      synced_to_graph: true,
      testnet: false,
      chains: [{ chain: 'bitcoin', network: 'regtest' }],
      uris: [],
      features: {},
      require_htlc_interceptor: false,
      store_final_htlc_resolutions: false,
    }),

    'GET /v1/balance/channels': () => {
      const amount = (msat: bigint) => ({ sat: String(msat / 1000n), msat: String(msat) });
      return {
        balance: String(node.balanceMsat / 1000n),
        pending_open_balance: '0',
        local_balance: amount(node.balanceMsat),
        remote_balance: amount(0n),
        unsettled_local_balance: amount(0n),
        unsettled_remote_balance: amount(0n),
        pending_open_local_balance: amount(0n),
        pending_open_remote_balance: amount(0n),
      };
    },

    'POST /v1/invoices': (record) => {
      const body = (record.body ?? {}) as Json;
      const sat = jsonInt('value', body.value);
      const msat = jsonInt('value_msat', body.value_msat);
      if (sat !== 0n && msat !== 0n)
        throw new GrpcError(500, 2, 'sat and msat arguments are mutually exclusive');
      const amount = msat !== 0n ? msat : sat * 1000n;
      const expiry = body.expiry === undefined ? 86_400 : Number(jsonInt('expiry', body.expiry));
      const hash =
        body.description_hash === undefined
          ? ''
          : jsonBytes('description_hash', body.description_hash);
      if (hash !== '' && hash.length !== 64)
        throw new GrpcError(500, 2, 'description hash is of incorrect length');
      const invoice = node.createInvoice({
        expirySeconds: expiry,
        ...(amount === 0n ? {} : { amountMsat: amount }),
        ...(hash === ''
          ? { description: typeof body.memo === 'string' ? body.memo : '' }
          : { descriptionHash: hash }),
      });
      return {
        r_hash: b64(invoice.paymentHash),
        payment_request: invoice.paymentRequest,
        add_index: String(invoice.addIndex),
        payment_addr: b64(invoice.paymentSecret),
      };
    },

    'GET /v2/invoices/lookup': (record) => {
      const hash = pathBytes('payment_hash', record.query.get('payment_hash') ?? '');
      const invoice = node.invoice(hash);
      if (invoice === undefined) throw new GrpcError(404, 5, 'unable to locate invoice');
      return invoiceJson(invoice);
    },

    'GET /v2/invoices/subscribe/*': (record, param, res) => {
      const hash = pathBytes('r_hash', param ?? '');
      const write = openStream(res, record);
      // Like lnd: the current state first (if the invoice exists), then every change; never ends by itself.
      const current = node.invoice(hash);
      if (current !== undefined) write(invoiceJson(current));
      const stop = node.subscribe((event) => {
        if (event.kind === 'invoice' && event.invoice.paymentHash === hash)
          write(invoiceJson(event.invoice));
      });
      res.on('close', stop);
      return undefined;
    },

    'POST /v2/router/send': (record, _param, res) => {
      const body = (record.body ?? {}) as Json;
      if (jsonInt('timeout_seconds', body.timeout_seconds) <= 0n) {
        throw new GrpcError(500, 2, 'timeout_seconds must be specified');
      }
      const feeSat = jsonInt('fee_limit_sat', body.fee_limit_sat);
      const feeMsat = jsonInt('fee_limit_msat', body.fee_limit_msat);
      if (feeSat !== 0n && feeMsat !== 0n)
        throw new GrpcError(500, 2, 'sat and msat arguments are mutually exclusive');
      let decoded: ReturnType<typeof decodeInvoice>;
      try {
        decoded = decodeInvoice(String(body.payment_request ?? ''));
      } catch (error) {
        throw new GrpcError(500, 2, `invalid payment request: ${(error as Error).message}`);
      }
      const amt = jsonInt('amt_msat', body.amt_msat) || jsonInt('amt', body.amt) * 1000n;
      if (decoded.amountMsat !== undefined && amt !== 0n) {
        throw new GrpcError(
          500,
          2,
          'amount must not be specified when paying a non-zero amount invoice',
        );
      }
      if (decoded.amountMsat === undefined && amt === 0n) {
        throw new GrpcError(500, 2, 'amount must be specified when paying a zero amount invoice');
      }
      const result = node.sendPayment({
        decoded,
        amountMsat: decoded.amountMsat ?? amt,
        maxFeeMsat: feeMsat !== 0n ? feeMsat : feeSat * 1000n,
      });
      if (result === 'already_paid') throw new GrpcError(409, 6, 'invoice is already paid');
      if (result === 'in_flight') throw new GrpcError(409, 6, 'payment is in transition');
      if (result === 'expired') {
        throw new GrpcError(
          500,
          2,
          `invoice expired. Valid until ${new Date(decoded.expiresAt).toISOString()}`,
        );
      }
      if (result === 'wrong_network')
        throw new GrpcError(500, 2, "invoice not for current active network 'regtest'");
      streamPayment(res, record, result, body.no_inflight_updates !== true);
      return undefined;
    },

    'GET /v2/router/track/*': (record, param, res) => {
      const payment = node.payment(pathBytes('payment_hash', param ?? ''));
      if (payment === undefined) throw new GrpcError(404, 5, "payment isn't initiated");
      streamPayment(res, record, payment, record.query.get('no_inflight_updates') !== 'true');
      return undefined;
    },
  };

  function route(
    method: string,
    path: string,
  ): { handler: Handler; param: string | undefined } | undefined {
    const exact = routes[`${method} ${path}`];
    if (exact !== undefined) return { handler: exact, param: undefined };
    const cut = path.lastIndexOf('/');
    const wild = routes[`${method} ${path.slice(0, cut)}/*`];
    return wild === undefined ? undefined : { handler: wild, param: path.slice(cut + 1) };
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    text: string,
    mode: FaultMode | undefined,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const record: LndRequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: undefined,
      lines: [],
    };
    requests.push(record);
    const isStream = /^\/v2\/(?:router\/(?:send|track)|invoices\/subscribe)/.test(url.pathname);
    const fail = (error: GrpcError) =>
      send(
        res,
        error.httpStatus,
        isStream
          ? { error: { code: error.grpcCode, message: error.message, details: [] } }
          : { code: error.grpcCode, message: error.message, details: [] },
      );

    if (mode === 'unavailable')
      return fail(new GrpcError(503, 14, 'waiting to start, RPC services not available'));
    if (mode === 'garbage') return send(res, 200, { gateway: 'garbage', r_hash: 7, result: null });

    const found = route(record.method, url.pathname);
    if (found === undefined) return fail(new GrpcError(404, 5, 'Not Found'));
    const macaroon = req.headers['grpc-metadata-macaroon'];
    if (macaroon === undefined) return fail(new GrpcError(500, 2, 'expected 1 macaroon, got 0'));
    if (mode === 'unauthorized' || String(macaroon).toLowerCase() !== macaroonHex) {
      return fail(
        new GrpcError(500, 2, 'verification failed: signature mismatch after caveat verification'),
      );
    }
    try {
      if (text !== '') record.body = JSON.parse(text);
    } catch {
      return fail(new GrpcError(400, 3, 'proto: syntax error: unexpected token'));
    }
    try {
      const body = found.handler(record, found.param, res);
      if (body !== undefined) send(res, 200, body);
    } catch (error) {
      if (!(error instanceof GrpcError)) throw error;
      fail(error);
    }
  }

  const server = await startNodeHttpsDouble(node, handle, (error) => ({
    code: 13,
    message: String(error),
    details: [],
  }));
  const double: LndDouble = { ...server, macaroonHex, requests, dropSendStreams: false };
  return double;
}
