/**
 * A protocol-faithful LNbits double: one wallet behind LNbits' `/api/v1` routes, with the shapes and
 * habits of LNbits itself (lnbits/core/views/payment_api.py, core/services/payments.py,
 * core/models/payments.py, exceptions.py):
 *
 * - `X-Api-Key` (or `?api-key=`); the invoice key reads and creates, only the admin key pays;
 * - `POST /api/v1/payments` whose `out` defaults to true: without `out: false` an admin key asks to
 *   pay (400 "Missing BOLT11 invoice") and an invoice key is refused (403);
 * - sats in requests, msat in answers, negative `amount` and `fee` for outgoing payments, a pending
 *   payment holding a negative fee reserve until it settles;
 * - 520 `{detail, status}` for payment errors; 201 with status `pending` when the node does not finish
 *   within the funding-source wait, the payment completing later;
 * - lookups answer `details` only to a key of the owning wallet; an expired unpaid invoice reads
 *   `status: "failed"` while its stored status stays `pending`;
 * - the invoice amount is what is recorded, even when a payer sends more;
 * - datetimes as ISO 8601 with a zone, without one, or unix seconds (old versions).
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '../../src/internal/bytes.js';
import {
  createPreimage,
  type DecodedInvoice,
  decodeInvoice,
  encodeInvoice,
} from '../../src/lightning/bolt11.js';
import type { LightningNetwork } from '../../src/lightning/types.js';
import type { BackendHarness, FaultMode } from '../lightning/backend-suite.js';
import { createExternalPayee, payeeLevers } from './external-payee.js';
import {
  type DoubleReply,
  type HttpDouble,
  type RecordedRequest,
  startHttpDouble,
} from './http-double.js';

/** How the double writes datetimes. */
type LnbitsTimeFormat = 'iso' | 'naive' | 'unix';

/** See {@link startLnbitsDouble}. */
export interface LnbitsDouble extends Omit<BackendHarness, 'backend'> {
  url: string;
  adminKey: string;
  invoiceKey: string;
  network: LightningNetwork;
  /** Every request received. */
  requests: RecordedRequest[];
  /** The next request gets this reply. */
  respondNext(reply: DoubleReply): void;
  /** How long the node takes to finish an outgoing payment; default 0. */
  setPaymentDelay(ms: number): void;
  /** LNbits' funding-source wait: a payment not finished by then is answered `pending`; default 5 000. */
  setFundingWait(ms: number): void;
  setTimeFormat(format: LnbitsTimeFormat): void;
}

interface StoredPayment {
  paymentHash: string;
  /** msat; negative when outgoing. */
  amount: number;
  /** msat; negative when outgoing. */
  fee: number;
  bolt11: string;
  status: 'pending' | 'success' | 'failed';
  memo: string;
  expiresAt: number;
  preimage: string | null;
  createdAt: number;
  updatedAt: number;
}

const WALLET_ID = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const ROUTING_FEE_MSAT = 1_000;

/**
 * Starts the double on a free loopback port.
 *
 * @example
 * ```ts
 * const double = await startLnbitsDouble();
 * const ln = createLnbitsBackend({ url: double.url, invoiceKey: double.invoiceKey, network: 'regtest' });
 * ```
 */
export async function startLnbitsDouble(
  network: LightningNetwork = 'regtest',
): Promise<LnbitsDouble> {
  const adminKey = randomBytes(16).toString('hex');
  const invoiceKey = randomBytes(16).toString('hex');
  const nodeKey = bytesToHex(secp256k1.utils.randomSecretKey());
  const payee = createExternalPayee(network);
  const incoming = new Map<string, StoredPayment>();
  const outgoing = new Map<string, StoredPayment>();
  let balance = 0;
  let paymentDelayMs = 0;
  let fundingWaitMs = 5_000;
  let timeFormat: LnbitsTimeFormat = 'iso';

  function formatTime(ms: number): string | number {
    if (timeFormat === 'unix') return ms / 1000;
    const iso = `${new Date(ms).toISOString().slice(0, -1)}000`;
    return timeFormat === 'iso' ? `${iso}+00:00` : iso;
  }

  function toJson(p: StoredPayment, fault: FaultMode | undefined) {
    const preimage =
      fault === 'wrong_preimage' && p.preimage ? createPreimage().preimage : p.preimage;
    return {
      checking_id: p.paymentHash,
      payment_hash: p.paymentHash,
      wallet_id: WALLET_ID,
      amount: p.amount,
      fee: p.fee,
      bolt11: p.bolt11,
      payment_request: p.bolt11,
      status: p.status,
      memo: p.memo,
      expiry: formatTime(p.expiresAt),
      webhook: null,
      webhook_status: null,
      preimage,
      tag: null,
      extension: null,
      time: formatTime(p.createdAt),
      created_at: formatTime(p.createdAt),
      updated_at: formatTime(p.updatedAt),
      labels: [],
      extra: {},
    };
  }

  function keyType(req: RecordedRequest): 'admin' | 'invoice' | undefined {
    const key = req.headers['x-api-key'] ?? req.query.get('api-key');
    if (key === adminKey) return 'admin';
    if (key === invoiceKey) return 'invoice';
    return undefined;
  }

  const detail = (status: number, text: string): DoubleReply => ({
    status,
    json: { detail: text },
  });
  const paymentError = (text: string, status: string): DoubleReply => ({
    status: 520,
    json: { detail: text, status },
  });

  function createInvoice(body: Record<string, unknown>): DoubleReply {
    const amount = typeof body.amount === 'number' ? body.amount : 0;
    if ((body.unit ?? 'sat') !== 'sat') return detail(400, 'The provided unit is not supported');
    if (!(amount > 0)) return paymentError('Amountless invoices not supported.', 'failed');
    const descriptionHash = body.description_hash;
    if (descriptionHash !== undefined && !/^[0-9a-fA-F]{64}$/.test(String(descriptionHash))) {
      return detail(400, "'description_hash' must be a valid hex string");
    }
    const memo = descriptionHash ? '' : String(body.memo || 'LNbits');
    const expirySeconds = typeof body.expiry === 'number' && body.expiry > 0 ? body.expiry : 3600;
    const amountMsat = Math.trunc(amount) * 1000;
    const { preimage, paymentHash } = createPreimage();
    const now = Date.now();
    const bolt11 = encodeInvoice({
      network,
      amountMsat: BigInt(amountMsat),
      paymentHash,
      paymentSecret: createPreimage().preimage,
      expirySeconds,
      privateKey: nodeKey,
      timestamp: Math.floor(now / 1000),
      ...(descriptionHash
        ? { descriptionHash: String(descriptionHash).toLowerCase() }
        : { description: memo }),
    });
    const stored: StoredPayment = {
      paymentHash,
      amount: amountMsat,
      fee: 0,
      bolt11,
      status: 'pending',
      memo,
      expiresAt: Math.floor(now / 1000) * 1000 + expirySeconds * 1000,
      preimage,
      createdAt: now,
      updatedAt: now,
    };
    incoming.set(paymentHash, stored);
    return { status: 201, json: toJson(stored, undefined) };
  }

  async function pay(bolt11: string, fault: FaultMode | undefined): Promise<DoubleReply> {
    let invoice: DecodedInvoice;
    try {
      invoice = decodeInvoice(bolt11);
    } catch {
      return paymentError('Bolt11 decoding failed.', 'failed');
    }
    if (invoice.amountMsat === undefined) {
      return paymentError('Amountless invoices not supported.', 'failed');
    }
    const amount = Number(invoice.amountMsat);
    const reserve = feeReserve(amount);
    if (balance < amount) return paymentError('Insufficient balance.', 'failed');
    if (balance < amount + reserve) {
      return paymentError(
        `You must reserve at least (${Math.round(reserve / 1000)}  sat) to cover potential routing fees.`,
        'failed',
      );
    }
    const prior = outgoing.get(invoice.paymentHash);
    if (prior?.status === 'pending') return paymentError('Payment is still pending.', 'pending');
    if (prior?.status === 'success') return paymentError('Payment already paid.', 'success');
    if (prior?.status === 'failed') {
      return paymentError('Payment is failed node, retrying is not possible.', 'failed');
    }
    const now = Date.now();
    const stored: StoredPayment = {
      paymentHash: invoice.paymentHash,
      amount: -amount,
      fee: -reserve,
      bolt11: invoice.paymentRequest,
      status: 'pending',
      memo: invoice.description ?? '',
      expiresAt: invoice.expiresAt,
      preimage: null,
      createdAt: now,
      updatedAt: now,
    };
    outgoing.set(invoice.paymentHash, stored);
    balance -= amount + reserve;

    const settled = new Promise<string | undefined>((resolve) => {
      setTimeout(() => {
        const preimage =
          invoice.expiresAt > Date.now() ? payee.receive(invoice.paymentHash) : undefined;
        stored.updatedAt = Date.now();
        if (preimage === undefined) {
          stored.status = 'failed';
          balance += amount + reserve;
          resolve(
            Date.now() >= invoice.expiresAt
              ? 'invoice expired'
              : 'unable to find a path to destination',
          );
          return;
        }
        stored.status = 'success';
        stored.preimage = preimage;
        stored.fee = -Math.min(ROUTING_FEE_MSAT, reserve);
        balance += reserve + stored.fee;
        resolve(undefined);
      }, paymentDelayMs);
    });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      settled.then((failure) => ({ failure })),
      new Promise<'waiting'>((resolve) => {
        timer = setTimeout(() => resolve('waiting'), fundingWaitMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'waiting' && outcome.failure !== undefined) {
      return paymentError(`Payment failed: ${outcome.failure}`, 'failed');
    }
    return { status: 201, json: toJson(stored, fault) };
  }

  function lookup(
    req: RecordedRequest,
    paymentHash: string,
    fault: FaultMode | undefined,
  ): DoubleReply {
    const owner = keyType(req) !== undefined;
    const stored = incoming.get(paymentHash) ?? outgoing.get(paymentHash);
    if (!stored) return detail(404, 'Payment does not exist.');
    const details = owner ? { details: toJson(stored, fault) } : {};
    const preimage = toJson(stored, fault).preimage;
    if (stored.status === 'success')
      return { status: 200, json: { paid: true, preimage, ...details } };
    if (stored.status === 'failed')
      return { status: 200, json: { paid: false, status: 'failed', ...details } };
    // What the funding source says of a pending payment: an unpaid invoice past its expiry is failed.
    const checked = stored.amount > 0 && stored.expiresAt <= Date.now() ? 'failed' : 'pending';
    return { status: 200, json: { paid: false, status: checked, preimage, ...details } };
  }

  async function handle(req: RecordedRequest, fault: FaultMode | undefined): Promise<DoubleReply> {
    if (fault === 'unauthorized') return detail(401, 'Invalid key or wallet.');
    const key = keyType(req);
    const route = `${req.method} ${req.path}`;
    if (route === 'GET /api/v1/wallet') {
      if (!key) return detail(401, 'Invalid key or wallet.');
      return { status: 200, json: { id: WALLET_ID, name: 'tollway test wallet', balance } };
    }
    if (route === 'GET /api/v1/payments/fee-reserve') {
      try {
        const amount = decodeInvoice(req.query.get('invoice') ?? '').amountMsat;
        if (amount === undefined) return detail(400, 'Invoice has no amount.');
        return { status: 200, json: { fee_reserve: feeReserve(Number(amount)) } };
      } catch {
        return detail(500, 'Bolt11 decoding failed.');
      }
    }
    if (route === 'POST /api/v1/payments') {
      if (!key) return detail(401, 'Invalid key or wallet.');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(req.body) as Record<string, unknown>;
      } catch {
        return detail(400, 'JSON decode error');
      }
      const out = body.out ?? true;
      if (out === true && key === 'admin') {
        if (typeof body.bolt11 !== 'string' || body.bolt11 === '')
          return detail(400, 'Missing BOLT11 invoice');
        return pay(body.bolt11, fault);
      }
      if (out) return detail(403, 'Invoice (or Admin) key required.');
      return createInvoice(body);
    }
    const match = /^\/api\/v1\/payments\/([^/]+)$/.exec(req.path);
    if (req.method === 'GET' && match?.[1]) return lookup(req, match[1], fault);
    return detail(404, 'Not Found');
  }

  const server: HttpDouble = await startHttpDouble(handle);

  return {
    ...server,
    ...payeeLevers(payee),
    adminKey,
    invoiceKey,
    network,
    async payIncoming(paymentRequest) {
      const stored = incoming.get(decodeInvoice(paymentRequest).paymentHash);
      if (stored?.status !== 'pending') throw new Error('no open invoice to pay');
      if (stored.expiresAt <= Date.now()) throw new Error('invoice expired');
      stored.status = 'success';
      stored.updatedAt = Date.now();
      balance += stored.amount;
    },
    async setBalance(msat) {
      balance = Number(msat);
    },
    setPaymentDelay(ms) {
      paymentDelayMs = ms;
    },
    setFundingWait(ms) {
      fundingWaitMs = ms;
    },
    setTimeFormat(format) {
      timeFormat = format;
    },
  };
}

/** LNbits' default fee reserve: the larger of 2 000 msat and 1% of the amount. */
function feeReserve(amountMsat: number): number {
  return Math.max(2_000, Math.floor(amountMsat / 100));
}
