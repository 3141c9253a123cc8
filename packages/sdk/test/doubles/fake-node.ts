/**
 * The Lightning node behind the LND and Core Lightning test doubles: real signed BOLT11 invoices,
 * real preimages, a wallet balance, outgoing payments that stay in flight for a while, and a small
 * outside world (other nodes that issue invoices for us to pay, and payers that pay ours).
 *
 * It knows nothing of HTTP; each double translates it into its backend's wire format.
 */
import { createHash, randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { type DecodedInvoice, decodeInvoice, encodeInvoice } from '../../src/lightning/bolt11.js';
import type { LightningBackend } from '../../src/lightning/types.js';
import type { BackendHarness, FaultMode } from '../lightning/backend-suite.js';
import { createExternalPayee } from './external-payee.js';

/** An invoice issued by this node. */
export interface FakeInvoice {
  paymentHash: string;
  preimage: string;
  paymentSecret: string;
  paymentRequest: string;
  /** Absent for an amountless invoice. */
  amountMsat?: bigint;
  description?: string;
  descriptionHash?: string;
  /** Unix seconds. */
  createdAt: number;
  expirySeconds: number;
  state: 'open' | 'settled' | 'canceled';
  amountPaidMsat?: bigint;
  /** Unix ms. */
  settledAt?: number;
  /** Creation order, from 1. */
  addIndex: number;
  /** Settlement order, from 1; 0 while unpaid. */
  settleIndex: number;
  /** Core Lightning's unique label. */
  label?: string;
}

/** Why a payment failed, in the node's own words (each double names it its way). */
export type FakeFailure = 'no_route' | 'fee_too_high' | 'insufficient_balance';

/** A payment sent by this node. */
export interface FakePayment {
  paymentHash: string;
  paymentRequest: string;
  amountMsat: bigint;
  feeMsat: bigint;
  status: 'in_flight' | 'succeeded' | 'failed';
  preimage?: string;
  failure?: FakeFailure;
  /** Unix ms. */
  createdAt: number;
  completedAt?: number;
  index: number;
  /** How many in-flight updates were published. */
  attempts: number;
}

/** What changed; doubles stream these to subscribers. */
export type FakeEvent =
  | { kind: 'invoice'; invoice: FakeInvoice }
  | { kind: 'payment'; payment: FakePayment };

/** Refusals of {@link FakeNode.sendPayment} that happen before a payment exists. */
export type SendRefusal = 'already_paid' | 'in_flight' | 'expired' | 'wrong_network';

const sha256Hex = (hex: string) =>
  createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');
const randomHex = (n: number) => randomBytes(n).toString('hex');

/** Routing fee the fake network charges: 1 sat base plus 1000 ppm. */
export function fakeFee(amountMsat: bigint): bigint {
  return 1_000n + amountMsat / 1_000n;
}

/**
 * Creates a fake regtest node.
 *
 * @example
 * ```ts
 * const node = createFakeNode();
 * const invoice = node.createInvoice({ amountMsat: 1_000n, expirySeconds: 60 });
 * node.payIncoming(invoice.paymentRequest);
 * ```
 */
export function createFakeNode() {
  const privateKey = randomHex(32);
  const pubkey = Buffer.from(secp256k1.getPublicKey(Buffer.from(privateKey, 'hex'), true)).toString(
    'hex',
  );
  const outside = createExternalPayee('regtest');
  const invoices = new Map<string, FakeInvoice>();
  const payments = new Map<string, FakePayment>();
  const listeners = new Set<(event: FakeEvent) => void>();
  const timers = new Set<NodeJS.Timeout>();
  let addIndex = 0;
  let settleIndex = 0;
  let paymentIndex = 0;
  let balanceMsat = 0n;

  const node = {
    pubkey,
    network: 'regtest' as const,
    /** How long a payment stays in flight before it settles. */
    settleDelayMs: 60,
    /** Report a random preimage for successful payments (a lying backend). */
    wrongPreimage: false,

    get balanceMsat(): bigint {
      return balanceMsat;
    },
    set balanceMsat(value: bigint) {
      balanceMsat = value;
    },

    subscribe(listener: (event: FakeEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    createInvoice(p: {
      amountMsat?: bigint;
      description?: string;
      descriptionHash?: string;
      expirySeconds: number;
      label?: string;
    }): FakeInvoice {
      const preimage = randomHex(32);
      const paymentHash = sha256Hex(preimage);
      const paymentSecret = randomHex(32);
      const createdAt = Math.floor(Date.now() / 1000);
      const paymentRequest = encodeInvoice({
        network: 'regtest',
        paymentHash,
        paymentSecret,
        expirySeconds: p.expirySeconds,
        timestamp: createdAt,
        privateKey,
        ...(p.amountMsat === undefined ? {} : { amountMsat: p.amountMsat }),
        ...(p.descriptionHash === undefined
          ? { description: p.description ?? '' }
          : { descriptionHash: p.descriptionHash }),
      });
      addIndex += 1;
      const invoice: FakeInvoice = {
        paymentHash,
        preimage,
        paymentSecret,
        paymentRequest,
        createdAt,
        expirySeconds: p.expirySeconds,
        state: 'open',
        addIndex,
        settleIndex: 0,
        ...(p.amountMsat === undefined ? {} : { amountMsat: p.amountMsat }),
        ...(p.description === undefined ? {} : { description: p.description }),
        ...(p.descriptionHash === undefined ? {} : { descriptionHash: p.descriptionHash }),
        ...(p.label === undefined ? {} : { label: p.label }),
      };
      invoices.set(paymentHash, invoice);
      // Like lnd's expiry watcher: an unpaid invoice is canceled when it expires, and subscribers hear of it.
      later(p.expirySeconds * 1000 + 20, () => {
        if (invoice.state === 'open') {
          invoice.state = 'canceled';
          emit({ kind: 'invoice', invoice });
        }
      });
      return invoice;
    },

    invoice(paymentHash: string): FakeInvoice | undefined {
      const invoice = invoices.get(paymentHash);
      if (invoice?.state === 'open' && isExpired(invoice)) invoice.state = 'canceled';
      return invoice;
    },

    invoices(): FakeInvoice[] {
      return [...invoices.values()];
    },

    /** An outside payer pays one of our invoices; `amountMsat` above the invoice's is an overpayment. */
    payIncoming(paymentRequest: string, amountMsat?: bigint): void {
      const decoded = decodeInvoice(paymentRequest);
      const invoice = node.invoice(decoded.paymentHash);
      if (invoice === undefined) throw new Error('no such invoice on this node');
      if (invoice.state !== 'open') throw new Error(`invoice is ${invoice.state}`);
      const amount = amountMsat ?? invoice.amountMsat;
      if (amount === undefined) throw new Error('amountless invoice needs an amount');
      if (invoice.amountMsat !== undefined && amount < invoice.amountMsat)
        throw new Error('underpayment');
      settleIndex += 1;
      invoice.state = 'settled';
      invoice.amountPaidMsat = amount;
      invoice.settledAt = Date.now();
      invoice.settleIndex = settleIndex;
      balanceMsat += amount;
      emit({ kind: 'invoice', invoice });
    },

    /** Another node issues an invoice for us to pay. */
    createExternalInvoice(p: { amountMsat?: bigint; expirySeconds?: number }) {
      return outside.createInvoice(p);
    },

    timesPaid(paymentHash: string): number {
      return outside.timesPaid(paymentHash);
    },

    payment(paymentHash: string): FakePayment | undefined {
      return payments.get(paymentHash);
    },

    /**
     * Starts paying an invoice. Returns the payment (in flight, or already failed), or a refusal when
     * the node will not even start. Like real nodes, a failed payment may be tried again.
     */
    sendPayment(p: {
      decoded: DecodedInvoice;
      amountMsat: bigint;
      maxFeeMsat: bigint;
    }): FakePayment | SendRefusal {
      const { decoded } = p;
      if (decoded.network !== 'regtest') return 'wrong_network';
      if (Date.now() >= decoded.expiresAt) return 'expired';
      const previous = payments.get(decoded.paymentHash);
      if (previous?.status === 'succeeded') return 'already_paid';
      if (previous?.status === 'in_flight') return 'in_flight';
      paymentIndex += 1;
      const fee = fakeFee(p.amountMsat);
      const payment: FakePayment = {
        paymentHash: decoded.paymentHash,
        paymentRequest: decoded.paymentRequest,
        amountMsat: p.amountMsat,
        feeMsat: 0n,
        status: 'in_flight',
        createdAt: Date.now(),
        index: paymentIndex,
        attempts: 1,
      };
      payments.set(decoded.paymentHash, payment);
      const failure: FakeFailure | undefined =
        fee > p.maxFeeMsat
          ? 'fee_too_high'
          : p.amountMsat + fee > balanceMsat
            ? 'insufficient_balance'
            : undefined;
      if (failure !== undefined) {
        fail(payment, failure);
        return payment;
      }
      balanceMsat -= p.amountMsat + fee;
      payment.feeMsat = fee;
      emit({ kind: 'payment', payment });
      // A second HTLC attempt halfway, then the payee settles (or turns out to be unreachable).
      later(node.settleDelayMs / 2, () => {
        payment.attempts += 1;
        emit({ kind: 'payment', payment });
      });
      later(node.settleDelayMs, () => {
        const preimage = outside.receive(decoded.paymentHash);
        if (preimage === undefined) {
          balanceMsat += p.amountMsat + fee;
          payment.feeMsat = 0n;
          fail(payment, 'no_route');
          return;
        }
        payment.status = 'succeeded';
        payment.preimage = node.wrongPreimage ? randomHex(32) : preimage;
        payment.completedAt = Date.now();
        emit({ kind: 'payment', payment });
      });
      return payment;
    },

    close(): void {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      listeners.clear();
    },
  };

  function fail(payment: FakePayment, failure: FakeFailure): void {
    payment.status = 'failed';
    payment.failure = failure;
    payment.completedAt = Date.now();
    emit({ kind: 'payment', payment });
  }

  function emit(event: FakeEvent): void {
    for (const listener of [...listeners]) listener(event);
  }

  function later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    timers.add(timer);
  }

  return node;
}

/** True once an invoice is past its expiry. */
export function isExpired(invoice: Pick<FakeInvoice, 'createdAt' | 'expirySeconds'>): boolean {
  return Date.now() >= (invoice.createdAt + invoice.expirySeconds) * 1000;
}

/** See {@link createFakeNode}. */
export type FakeNode = ReturnType<typeof createFakeNode>;

/**
 * The shared suite's harness for a double built on a fake node.
 *
 * @example
 * ```ts
 * describeBackendSuite('lnd', async () => {
 *   const lnd = await startLndDouble();
 *   return createNodeHarness(createLndBackend({ url: lnd.url, macaroonHex: lnd.macaroonHex, certPem: lnd.certPem }), lnd);
 * });
 * ```
 */
export function createNodeHarness(
  backend: LightningBackend,
  double: { node: FakeNode; fault(mode?: FaultMode): void; close(): Promise<void> },
): BackendHarness {
  const { node } = double;
  return {
    backend,
    payIncoming: async (paymentRequest, amountMsat) => node.payIncoming(paymentRequest, amountMsat),
    createExternalInvoice: async (p) => node.createExternalInvoice(p),
    timesPaid: async (paymentHash) => node.timesPaid(paymentHash),
    setBalance: async (msat) => {
      node.balanceMsat = msat;
    },
    fault: (mode) => double.fault(mode),
    close: () => double.close(),
  };
}
