/**
 * A protocol-faithful phoenixd double, modelled on phoenixd's Api.kt, json/JsonSerializers.kt and its
 * API reference (phoenix.acinq.co/server/api):
 *
 * - HTTP Basic auth on the password alone, a full-access and a limited-access password (the limited
 *   one gets 401 on `payinvoice`); 401/404/405 explained in plain text;
 * - form-encoded parameters only: a JSON body carries no parameters at all;
 * - sats in and out (truncated), `fees` in msat, nulls left out of the JSON;
 * - `createinvoice` with a description (≤ 128 characters) xor a descriptionHash;
 * - an unknown payment answered 404 "Not found" (or 204 with no body, as some versions did); an
 *   unknown endpoint answered 404 "Unknown endpoint (check api doc)", which is what an old version
 *   without `/payments/outgoingbyhash` answers there;
 * - `payinvoice` answering only once the payment is final (the payment goes on when the caller hangs
 *   up), a failure being a 200 with a `reason` from lightning-kmp's FinalFailure, a fee of 4 sat +
 *   0.4%, a second payment of a paid invoice refused;
 * - overpayments recorded as received.
 */
import { Buffer } from 'node:buffer';
import { randomBytes, randomUUID } from 'node:crypto';
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
import { type DoubleReply, type RecordedRequest, startHttpDouble } from './http-double.js';

/** See {@link startPhoenixdDouble}. */
export interface PhoenixdDouble extends Omit<BackendHarness, 'backend'> {
  url: string;
  /** `http-password`: full access. */
  password: string;
  /** `http-password-limited-access`: cannot pay. */
  limitedPassword: string;
  nodeId: string;
  requests: RecordedRequest[];
  respondNext(reply: DoubleReply): void;
  /** How long an outgoing payment takes; `payinvoice` answers only then. Default 0. */
  setPaymentDelay(ms: number): void;
  /** How an unknown payment is answered: 404 "Not found" (default) or 204. */
  setUnknownPaymentStatus(status: 204 | 404): void;
  /** Behave as a version without `/payments/outgoingbyhash`. */
  setLegacy(legacy: boolean): void;
  /** The `chain` of `/getinfo`; default `regtest`. */
  setChain(chain: string): void;
}

interface Incoming {
  paymentHash: string;
  preimage: string;
  invoice: DecodedInvoice;
  description?: string;
  receivedMsat: number;
  createdAt: number;
  completedAt?: number;
}

interface Outgoing {
  paymentId: string;
  paymentHash: string;
  invoice: string;
  recipientMsat: number;
  feesMsat: number;
  preimage?: string;
  state: 'pending' | 'succeeded' | 'failed';
  createdAt: number;
  completedAt?: number;
}

const HEX32 = /^[0-9a-fA-F]{64}$/;
const text = (status: number, body: string): DoubleReply => ({ status, text: body });
const conversion = (name: string, type: string) =>
  text(400, `Request parameter ${name} couldn't be parsed/converted to ${type}`);

/**
 * Starts the double on a free loopback port.
 *
 * @example
 * ```ts
 * const double = await startPhoenixdDouble();
 * const ln = createPhoenixdBackend({ url: double.url, password: double.password });
 * ```
 */
export async function startPhoenixdDouble(
  network: LightningNetwork = 'regtest',
): Promise<PhoenixdDouble> {
  const password = randomBytes(32).toString('hex');
  const limitedPassword = randomBytes(32).toString('hex');
  const nodeKey = secp256k1.utils.randomSecretKey();
  const nodeId = bytesToHex(secp256k1.getPublicKey(nodeKey, true));
  const payee = createExternalPayee(network);
  const incoming = new Map<string, Incoming>();
  const outgoing = new Map<string, Outgoing>();
  let balanceMsat = 0;
  let paymentDelayMs = 0;
  let unknownPaymentStatus: 204 | 404 = 404;
  let legacy = false;
  let chain = 'regtest';

  const notFound = (): DoubleReply =>
    unknownPaymentStatus === 204 ? { status: 204 } : text(404, 'Not found');
  const unknownEndpoint = () => text(404, 'Unknown endpoint (check api doc)');

  function access(req: RecordedRequest): 'full' | 'limited' | undefined {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) return undefined;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const secret = decoded.slice(decoded.indexOf(':') + 1);
    if (secret === password) return 'full';
    if (secret === limitedPassword) return 'limited';
    return undefined;
  }

  function incomingJson(p: Incoming) {
    return {
      type: 'incoming_payment',
      subType: 'lightning',
      paymentHash: p.paymentHash,
      preimage: p.preimage,
      ...(p.description !== undefined ? { description: p.description } : {}),
      invoice: p.invoice.paymentRequest,
      isPaid: p.completedAt !== undefined,
      isExpired: Date.now() > p.invoice.expiresAt,
      ...(p.invoice.amountMsat !== undefined
        ? { requestedSat: Math.floor(Number(p.invoice.amountMsat) / 1000) }
        : {}),
      receivedSat: Math.floor(p.receivedMsat / 1000),
      fees: 0,
      expiresAt: p.invoice.expiresAt,
      ...(p.completedAt !== undefined ? { completedAt: p.completedAt } : {}),
      createdAt: p.createdAt,
    };
  }

  function outgoingJson(p: Outgoing, fault: FaultMode | undefined) {
    const preimage =
      fault === 'wrong_preimage' && p.preimage ? createPreimage().preimage : p.preimage;
    return {
      type: 'outgoing_payment',
      subType: 'lightning',
      paymentId: p.paymentId,
      paymentHash: p.paymentHash,
      ...(preimage !== undefined ? { preimage } : {}),
      isPaid: p.state === 'succeeded',
      sent: Math.floor((p.recipientMsat + (p.state === 'succeeded' ? p.feesMsat : 0)) / 1000),
      fees: p.state === 'succeeded' ? p.feesMsat : 0,
      invoice: p.invoice,
      ...(p.completedAt !== undefined ? { completedAt: p.completedAt } : {}),
      createdAt: p.createdAt,
    };
  }

  function createInvoice(form: URLSearchParams): DoubleReply {
    const amountSat = form.get('amountSat');
    if (amountSat !== null && !/^-?\d+$/.test(amountSat)) return conversion('amountSat', 'integer');
    const expiry = form.get('expirySeconds');
    if (expiry !== null && !/^\d+$/.test(expiry)) return conversion('expirySeconds', 'integer');
    const description = form.get('description');
    const descriptionHash = form.get('descriptionHash');
    if (descriptionHash !== null && !HEX32.test(descriptionHash)) {
      return conversion('descriptionHash', 'hex32');
    }
    if (description !== null && description.length > 128) {
      return text(400, 'Request parameter description is too long (max 128 characters)');
    }
    if ((description === null) === (descriptionHash === null)) {
      return text(400, 'Must provide either a description or descriptionHash');
    }
    const { preimage, paymentHash } = createPreimage();
    const serialized = encodeInvoice({
      network,
      paymentHash,
      paymentSecret: createPreimage().preimage,
      expirySeconds: expiry === null ? 3600 : Number(expiry),
      privateKey: nodeKey,
      ...(amountSat !== null ? { amountMsat: BigInt(amountSat) * 1000n } : {}),
      ...(descriptionHash !== null
        ? { descriptionHash: descriptionHash.toLowerCase() }
        : { description: description ?? '' }),
    });
    const invoice = decodeInvoice(serialized);
    incoming.set(paymentHash, {
      paymentHash,
      preimage,
      invoice,
      ...(description !== null ? { description } : {}),
      receivedMsat: 0,
      createdAt: invoice.timestamp * 1000,
    });
    return {
      status: 200,
      json: {
        ...(amountSat !== null ? { amountSat: Number(amountSat) } : {}),
        paymentHash,
        serialized,
      },
    };
  }

  async function payInvoice(
    form: URLSearchParams,
    fault: FaultMode | undefined,
  ): Promise<DoubleReply> {
    const serialized = form.get('invoice');
    if (serialized === null) return text(400, 'Request parameter invoice is missing');
    let invoice: DecodedInvoice;
    try {
      invoice = decodeInvoice(serialized);
    } catch {
      return conversion('invoice', 'bolt11invoice');
    }
    const override = form.get('amountSat');
    if (override !== null && !/^\d+$/.test(override)) return conversion('amountSat', 'integer');
    const amount = override !== null ? Number(override) * 1000 : Number(invoice.amountMsat ?? -1);
    if (amount < 0) return text(400, 'Request parameter amountSat is missing');
    const paymentHash = invoice.paymentHash;
    const failed = (reason: string): DoubleReply => ({
      status: 200,
      json: { paymentHash, reason },
    });
    const previous = [...outgoing.values()].filter((p) => p.paymentHash === paymentHash);
    if (previous.some((p) => p.state === 'succeeded'))
      return failed('this invoice has already been paid');
    if (previous.some((p) => p.state === 'pending')) {
      return failed('another payment is in progress for that invoice');
    }
    const fee = 4_000 + Math.ceil((amount * 4) / 1000);
    if (balanceMsat < amount + fee) return failed('not enough funds in wallet to afford payment');

    const payment: Outgoing = {
      paymentId: randomUUID(),
      paymentHash,
      invoice: invoice.paymentRequest,
      recipientMsat: amount,
      feesMsat: fee,
      state: 'pending',
      createdAt: Date.now(),
    };
    outgoing.set(payment.paymentId, payment);
    balanceMsat -= amount + fee;
    await new Promise((r) => setTimeout(r, paymentDelayMs));
    const preimage = invoice.expiresAt > Date.now() ? payee.receive(paymentHash) : undefined;
    payment.completedAt = Date.now();
    if (preimage === undefined) {
      payment.state = 'failed';
      balanceMsat += amount + fee;
      return failed(
        'the recipient was offline or did not have enough liquidity to receive the payment',
      );
    }
    payment.state = 'succeeded';
    payment.preimage = preimage;
    return {
      status: 200,
      json: {
        recipientAmountSat: Math.floor(amount / 1000),
        routingFeeSat: Math.floor(fee / 1000),
        paymentId: payment.paymentId,
        paymentHash,
        paymentPreimage: fault === 'wrong_preimage' ? createPreimage().preimage : preimage,
      },
    };
  }

  function outgoingByHash(paymentHash: string, fault: FaultMode | undefined): DoubleReply {
    const rank = { succeeded: 3, pending: 2, failed: 1 };
    const best = [...outgoing.values()]
      .filter((p) => p.paymentHash === paymentHash.toLowerCase())
      .sort((a, b) => rank[b.state] - rank[a.state])[0];
    return best ? { status: 200, json: outgoingJson(best, fault) } : notFound();
  }

  async function handle(req: RecordedRequest, fault: FaultMode | undefined): Promise<DoubleReply> {
    const who = fault === 'unauthorized' ? undefined : access(req);
    if (who === undefined) {
      return text(
        401,
        'Invalid authentication (use basic auth with the http password set in phoenix.conf)',
      );
    }
    const isForm = (req.headers['content-type'] ?? '').startsWith(
      'application/x-www-form-urlencoded',
    );
    const form = new URLSearchParams(isForm ? req.body : '');
    const segments = req.path.split('/').filter((s) => s !== '');
    const route = segments.slice(0, 2).join('/');
    const third = segments[2];
    const expect = (method: string) =>
      req.method === method
        ? undefined
        : text(405, 'Invalid http method (use the correct GET/POST)');

    switch (route) {
      case 'getinfo':
        return (
          expect('GET') ?? {
            status: 200,
            json: { nodeId, channels: [], chain, blockHeight: 800_000, version: '0.6.2-double' },
          }
        );
      case 'getbalance':
        return (
          expect('GET') ?? {
            status: 200,
            json: { balanceSat: Math.floor(balanceMsat / 1000), feeCreditSat: 0 },
          }
        );
      case 'createinvoice':
        return expect('POST') ?? createInvoice(form);
      case 'payinvoice':
        if (req.method !== 'POST')
          return text(405, 'Invalid http method (use the correct GET/POST)');
        if (who !== 'full') {
          return text(
            401,
            'Invalid authentication (use basic auth with the http password set in phoenix.conf)',
          );
        }
        return payInvoice(form, fault);
      case 'payments/incoming': {
        if (third === undefined) break;
        if (!HEX32.test(third)) return conversion('paymentHash', 'hex32');
        const found = incoming.get(third.toLowerCase());
        return found ? { status: 200, json: incomingJson(found) } : notFound();
      }
      case 'payments/outgoing': {
        if (third === undefined) break;
        if (!/^[0-9a-f-]{36}$/i.test(third)) return conversion('uuid', 'uuid');
        const found = outgoing.get(third);
        return found ? { status: 200, json: outgoingJson(found, fault) } : notFound();
      }
      case 'payments/outgoingbyhash': {
        if (legacy || third === undefined) break;
        if (!HEX32.test(third)) return conversion('paymentHash', 'hex32');
        return outgoingByHash(third, fault);
      }
    }
    return unknownEndpoint();
  }

  const server = await startHttpDouble(handle);
  return {
    ...server,
    ...payeeLevers(payee),
    password,
    limitedPassword,
    nodeId,
    async payIncoming(paymentRequest, amountMsat) {
      const found = incoming.get(decodeInvoice(paymentRequest).paymentHash);
      if (!found || found.completedAt !== undefined) throw new Error('no open invoice to pay');
      if (found.invoice.expiresAt <= Date.now()) throw new Error('invoice expired');
      const amount = amountMsat ?? found.invoice.amountMsat;
      if (amount === undefined) throw new Error('amountless invoice: give an amount');
      found.receivedMsat = Number(amount);
      found.completedAt = Date.now();
      balanceMsat += Number(amount);
    },
    async setBalance(msat) {
      balanceMsat = Number(msat);
    },
    setPaymentDelay(ms) {
      paymentDelayMs = ms;
    },
    setUnknownPaymentStatus(status) {
      unknownPaymentStatus = status;
    },
    setLegacy(value) {
      legacy = value;
    },
    setChain(value) {
      chain = value;
    },
  };
}
