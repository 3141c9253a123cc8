/**
 * A protocol-faithful double of Core Lightning's REST plugin, clnrest, served over HTTPS with a
 * self-signed certificate on loopback.
 *
 * Modelled on clnrest's handlers and Core Lightning's documented RPC schemas:
 *
 * - every call is `POST /v1/<method>` with JSON parameters and a `Rune` header (403 with code 1501
 *   when missing, 401 with 1502 when not valid);
 * - success is HTTP 201; an RPC error is HTTP 500 with `{code, message, data?}` (codes from
 *   `common/jsonrpc_errors.h`); an unknown method is 404 with code -32601; when clnrest cannot reach
 *   lightningd the error has no code;
 * - amounts are integer msat (exact u64 digits in the JSON); parameters also take `"<n>msat"`,
 *   `"<n>sat"` and, for `invoice`, `"any"`; times are unix seconds;
 * - `invoice` needs a unique label (900 otherwise) and defaults to a one-week expiry;
 *   `waitinvoice` blocks until paid, or fails with 903 when the invoice expires;
 * - `xpay` (can be switched off to look like a node older than v24.11) fails with 219 for an
 *   already-paid invoice; `pay` answers an already-paid invoice with the earlier result;
 *   both block until the payment is final, and a payment carries on when the client goes away.
 *
 * Failure messages for route and balance problems are representative, not verbatim.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DecodedInvoice, decodeInvoice } from '../../src/lightning/bolt11.js';
import type { FaultMode } from '../lightning/backend-suite.js';
import { createFakeNode, type FakeInvoice, type FakePayment, isExpired } from './fake-node.js';
import { type NodeHttpsDouble, startNodeHttpsDouble } from './http-double.js';

/** One request the double received. */
interface ClnRequestRecord {
  method: string;
  headers: IncomingMessage['headers'];
  params: Record<string, unknown>;
}

/** A running clnrest double. */
export interface ClnDouble extends NodeHttpsDouble {
  rune: string;
  requests: ClnRequestRecord[];
  /** When false, `xpay` is an unknown command (Core Lightning before v24.11). */
  hasXpay: boolean;
}

type Params = Record<string, unknown>;

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

const DEFAULT_EXPIRY_SECONDS = 604_800;

/** JSON with bigints written as exact integer digits, as Core Lightning writes u64 values. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `\u0000${v}` : v)).replace(
    /"\\u0000(\d+)"/g,
    '$1',
  );
}

/** Core Lightning's msat parameter forms. */
function msatParam(name: string, value: unknown): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  const match = typeof value === 'string' ? /^(\d+)(msat|sat)?$/.exec(value) : null;
  if (match?.[1] === undefined) {
    throw new RpcError(
      -32602,
      `${name}: should be a millisatoshi amount: invalid token '${String(value)}'`,
    );
  }
  return BigInt(match[1]) * (match[2] === 'sat' ? 1000n : 1n);
}

function required(params: Params, name: string): unknown {
  if (params[name] === undefined) throw new RpcError(-32602, `missing required parameter: ${name}`);
  return params[name];
}

function invoiceJson(invoice: FakeInvoice): Params {
  const expired = invoice.state !== 'settled' && isExpired(invoice);
  const json: Params = {
    label: invoice.label,
    bolt11: invoice.paymentRequest,
    payment_hash: invoice.paymentHash,
    status: invoice.state === 'settled' ? 'paid' : expired ? 'expired' : 'unpaid',
    description: invoice.description ?? '',
    expires_at: invoice.createdAt + invoice.expirySeconds,
    created_index: invoice.addIndex,
  };
  if (invoice.amountMsat !== undefined) json.amount_msat = invoice.amountMsat;
  if (invoice.state === 'settled') {
    json.pay_index = invoice.settleIndex;
    json.amount_received_msat = invoice.amountPaidMsat;
    json.paid_at = Math.floor((invoice.settledAt ?? 0) / 1000);
    json.payment_preimage = invoice.preimage;
    json.updated_index = invoice.settleIndex;
  }
  return json;
}

function payJson(payment: FakePayment): Params {
  const status =
    payment.status === 'succeeded'
      ? 'complete'
      : payment.status === 'failed'
        ? 'failed'
        : 'pending';
  const json: Params = {
    created_index: payment.index,
    payment_hash: payment.paymentHash,
    status,
    destination: decodeInvoice(payment.paymentRequest).payeePubkey,
    created_at: Math.floor(payment.createdAt / 1000),
    bolt11: payment.paymentRequest,
    amount_sent_msat: payment.amountMsat + payment.feeMsat,
  };
  if (status !== 'failed') json.amount_msat = payment.amountMsat;
  if (status === 'complete') {
    json.completed_at = Math.floor((payment.completedAt ?? 0) / 1000);
    json.preimage = payment.preimage;
  }
  return json;
}

/**
 * Starts a clnrest double on `https://127.0.0.1:<random port>`.
 *
 * @example
 * ```ts
 * const cln = await startClnDouble();
 * const backend = createClnBackend({ url: cln.url, rune: cln.rune, certPem: cln.certPem });
 * ```
 */
export async function startClnDouble(): Promise<ClnDouble> {
  const node = createFakeNode();
  const rune = randomBytes(48).toString('base64url');
  const requests: ClnRequestRecord[] = [];

  function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(toJson(body));
  }

  /** Resolves when the payment is final (it carries on if the caller gives up). */
  function settled(payment: FakePayment): Promise<FakePayment> {
    if (payment.status !== 'in_flight') return Promise.resolve(payment);
    return new Promise((resolve) => {
      const stop = node.subscribe((event) => {
        if (
          event.kind === 'payment' &&
          event.payment === payment &&
          payment.status !== 'in_flight'
        ) {
          stop();
          resolve(payment);
        }
      });
    });
  }

  /** What `xpay` and `pay` share: parse, start the payment, wait for its end. */
  async function pay(
    params: Params,
    invoiceField: 'invstring' | 'bolt11',
    flavour: 'xpay' | 'pay',
  ): Promise<Params> {
    let decoded: DecodedInvoice;
    try {
      decoded = decodeInvoice(String(required(params, invoiceField)));
    } catch (error) {
      throw new RpcError(-32602, `${invoiceField}: Invalid bolt11: ${(error as Error).message}`);
    }
    const given =
      params.amount_msat === undefined ? undefined : msatParam('amount_msat', params.amount_msat);
    if (decoded.amountMsat === undefined && given === undefined) {
      throw new RpcError(-32602, 'amount_msat parameter required');
    }
    if (decoded.amountMsat !== undefined && given !== undefined) {
      throw new RpcError(-32602, 'amount_msat parameter unnecessary');
    }
    const amountMsat = decoded.amountMsat ?? given ?? 0n;
    const defaultFee = flavour === 'xpay' ? amountMsat / 100n : (amountMsat * 5n) / 1000n;
    const maxFeeMsat =
      params.maxfee === undefined
        ? defaultFee > 5_000n
          ? defaultFee
          : 5_000n
        : msatParam('maxfee', params.maxfee);
    const started = node.sendPayment({ decoded, amountMsat, maxFeeMsat });
    if (started === 'already_paid') {
      const earlier = node.payment(decoded.paymentHash);
      if (flavour === 'xpay' || earlier === undefined) throw new RpcError(219, 'Already paid');
      return successJson(earlier, flavour);
    }
    if (started === 'in_flight') throw new RpcError(200, 'Already in progress');
    if (started === 'expired') throw new RpcError(207, 'Invoice expired');
    if (started === 'wrong_network')
      throw new RpcError(-32602, `${invoiceField}: Invoice is for another network`);
    const payment = await settled(started);
    if (payment.status === 'succeeded') return successJson(payment, flavour);
    if (payment.failure === 'insufficient_balance') {
      throw new RpcError(
        205,
        `We could not find a usable set of paths: insufficient funds (spendable ${node.balanceMsat}msat, need ${amountMsat}msat)`,
      );
    }
    if (payment.failure === 'fee_too_high' && flavour === 'pay') {
      throw new RpcError(206, 'Fee exceeds our fee budget');
    }
    throw new RpcError(205, 'Failed: We could not find a usable set of paths to the destination');
  }

  function successJson(payment: FakePayment, flavour: 'xpay' | 'pay'): Params {
    const common = {
      payment_preimage: payment.preimage,
      amount_msat: payment.amountMsat,
      amount_sent_msat: payment.amountMsat + payment.feeMsat,
    };
    if (flavour === 'xpay') return { ...common, failed_parts: 0, successful_parts: 1 };
    return {
      ...common,
      destination: decodeInvoice(payment.paymentRequest).payeePubkey,
      payment_hash: payment.paymentHash,
      created_at: payment.createdAt / 1000,
      parts: 1,
      status: 'complete',
    };
  }

  const methods: Record<
    string,
    (params: Params, req: IncomingMessage) => Promise<Params> | Params
  > = {
    getinfo: () => ({
      id: node.pubkey,
      alias: 'tollway-cln-double',
      color: '023399',
      num_peers: 1,
      num_pending_channels: 0,
      num_active_channels: 1,
      num_inactive_channels: 0,
      address: [],
      binding: [{ type: 'ipv4', address: '127.0.0.1', port: 9735 }],
      version: 'v25.02',
      blockheight: 800,
      network: 'regtest',
      fees_collected_msat: 0,
      'lightning-dir': '/var/lib/lightning/regtest',
      our_features: {
        init: '08a0800a8a5961',
        node: '88a0800a8a5961',
        channel: '',
        invoice: '02000002024100',
      },
    }),

    invoice: (params) => {
      const label = String(required(params, 'label'));
      const description = required(params, 'description');
      if (typeof description !== 'string')
        throw new RpcError(-32602, 'description: should be a string');
      const amount = required(params, 'amount_msat');
      const amountMsat = amount === 'any' ? undefined : msatParam('amount_msat', amount);
      if (node.invoices().some((invoice) => invoice.label === label)) {
        throw new RpcError(900, `Duplicate label '${label}'`);
      }
      const expiry = params.expiry === undefined ? DEFAULT_EXPIRY_SECONDS : Number(params.expiry);
      const invoice = node.createInvoice({
        label,
        expirySeconds: expiry,
        description,
        ...(amountMsat === undefined ? {} : { amountMsat }),
        ...(params.deschashonly === true
          ? { descriptionHash: createHash('sha256').update(description, 'utf8').digest('hex') }
          : {}),
      });
      return {
        payment_hash: invoice.paymentHash,
        expires_at: invoice.createdAt + invoice.expirySeconds,
        bolt11: invoice.paymentRequest,
        payment_secret: invoice.paymentSecret,
        created_index: invoice.addIndex,
      };
    },

    listinvoices: (params) => ({
      invoices: node
        .invoices()
        .filter(
          (invoice) =>
            (params.label === undefined || invoice.label === String(params.label)) &&
            (params.payment_hash === undefined || invoice.paymentHash === params.payment_hash),
        )
        .map(invoiceJson),
    }),

    waitinvoice: async (params, req) => {
      const label = String(required(params, 'label'));
      const invoice = node.invoices().find((candidate) => candidate.label === label);
      if (invoice === undefined) throw new RpcError(-1, 'Unknown invoice');
      const answer = (): Params => {
        if (invoice.state === 'settled') return invoiceJson(invoice);
        throw new RpcError(903, 'invoice expired during wait', invoiceJson(invoice));
      };
      if (invoice.state === 'settled' || isExpired(invoice)) return answer();
      await new Promise<void>((resolve) => {
        const stop = node.subscribe((event) => {
          if (event.kind === 'invoice' && event.invoice === invoice) {
            stop();
            resolve();
          }
        });
        req.socket.once('close', stop);
      });
      return answer();
    },

    xpay: (params) => pay(params, 'invstring', 'xpay'),
    pay: (params) => pay(params, 'bolt11', 'pay'),

    listpays: (params) => {
      const payment =
        typeof params.payment_hash === 'string' ? node.payment(params.payment_hash) : undefined;
      return { pays: payment === undefined ? [] : [payJson(payment)] };
    },

    listfunds: () => ({
      outputs: [],
      channels: [
        {
          peer_id: `03${'11'.repeat(32)}`,
          connected: true,
          state: 'CHANNELD_NORMAL',
          channel_id: '22'.repeat(32),
          short_channel_id: '103x1x0',
          our_amount_msat: node.balanceMsat,
          amount_msat: node.balanceMsat + 1_000_000_000n,
          funding_txid: '33'.repeat(32),
          funding_output: 0,
        },
        {
          peer_id: `02${'44'.repeat(32)}`,
          connected: false,
          state: 'ONCHAIN',
          channel_id: '55'.repeat(32),
          our_amount_msat: 777_000n,
          amount_msat: 1_000_000n,
          funding_txid: '66'.repeat(32),
          funding_output: 1,
        },
      ],
    }),
  };

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    text: string,
    mode: FaultMode | undefined,
  ): Promise<void> {
    const method = (req.url ?? '/').replace(/^\/v1\//, '');

    if (req.method !== 'POST' || !/^[a-z0-9-]+$/.test(method)) {
      return send(res, 404, { code: -32601, message: 'Path not registered' });
    }
    const runeHeader = req.headers.rune;
    if (runeHeader === undefined)
      return send(res, 403, { code: 1501, message: 'Not authorized: Missing rune' });
    if (mode === 'unauthorized' || runeHeader !== rune) {
      return send(res, 401, { code: 1502, message: 'Not authorized: Not derived from master' });
    }
    if (mode === 'unavailable')
      return send(res, 500, { code: null, message: 'Connection refused (os error 111)' });
    if (mode === 'garbage') return send(res, 201, { garbage: true, bolt11: 42, invoices: 'none' });

    let params: Params = {};
    if (text !== '') {
      try {
        params = JSON.parse(text) as Params;
      } catch {
        return send(res, 500, { code: -32602, message: 'Could not parse params as object' });
      }
    }
    requests.push({ method, headers: req.headers, params });
    const run = method === 'xpay' && !double.hasXpay ? undefined : methods[method];
    if (run === undefined)
      return send(res, 404, { code: -32601, message: `Unknown command '${method}'` });
    try {
      send(res, 201, await run(params, req));
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
      send(res, 500, {
        code: error.code,
        message: error.message,
        ...(error.data === undefined ? {} : { data: error.data }),
      });
    }
  }

  const server = await startNodeHttpsDouble(node, handle, (error) => ({
    code: -1,
    message: String(error),
  }));
  const double: ClnDouble = { ...server, rune, requests, hasXpay: true };
  return double;
}
