/**
 * The safety layer every Lightning backend is wrapped in, so the rules that protect money live in one
 * place instead of six:
 *
 * - an invoice is checked before any money moves: it decodes and its signature verifies, it is not
 *   expired, it is for the backend's network, and its amount is known (amountless invoices need an
 *   explicit amount; an amount that contradicts the invoice is refused);
 * - paying is idempotent per payment hash: concurrent calls share one attempt, and every attempt
 *   first asks the backend what it already knows of that hash, so a second call returns the first
 *   result (or waits for the pending one) and never pays twice;
 * - an outcome that may hide a payment (timeout, dropped connection) is resolved by looking the
 *   payment up by hash, never by paying again;
 * - a preimage is trusted only once `sha256(preimage) == payment_hash`.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { decodeInvoice, isInvoiceExpired } from './bolt11.js';
import { pollUntil } from './poll.js';
import { preimageMatches } from './preimage.js';
import type {
  InvoiceStatus,
  LightningBackend,
  LightningNetwork,
  PayInvoiceParams,
  PaymentResult,
  PaymentStatus,
} from './types.js';

/** Options of {@link wrapBackend}. */
export interface SafeBackendOptions {
  /** Clock in unix ms (tests). */
  now?: () => number;
  /** Default wait for a payment's final outcome; 60 000 ms. */
  paymentTimeoutMs?: number;
  /** Delay between look-ups while resolving a pending payment; 250 ms. */
  pollIntervalMs?: number;
}

/**
 * Wraps a raw backend in the shared safety layer. `connectLightning` does this for you.
 *
 * @example
 * ```ts
 * const ln = wrapBackend(createLndBackend(options));
 * await ln.payInvoice({ paymentRequest, maxFeeMsat: 10_000n }); // never pays the same hash twice
 * ```
 */
export function wrapBackend(
  raw: LightningBackend,
  options: SafeBackendOptions = {},
): LightningBackend {
  const now = options.now ?? Date.now;
  const defaultTimeout = options.paymentTimeoutMs ?? 60_000;
  const pollInterval = options.pollIntervalMs ?? 250;
  const attempts = new Map<string, Promise<PaymentResult>>();
  let network: Promise<LightningNetwork> | undefined;

  function backendNetwork(): Promise<LightningNetwork> {
    network ??= raw.getInfo().then(
      (info) => info.network,
      (error: unknown) => {
        network = undefined;
        throw error;
      },
    );
    return network;
  }

  async function lookup(paymentHash: string): Promise<PaymentStatus | undefined> {
    try {
      return await raw.lookupPayment(paymentHash);
    } catch (error) {
      if (isTollwayError(error, 'invoice_not_found')) return undefined;
      throw error;
    }
  }

  /** Waits until the payment is final; throws `payment_timeout` if it is still pending at the deadline. */
  async function resolve(paymentHash: string, deadline: number): Promise<PaymentResult> {
    const status = await pollUntil(
      () => lookup(paymentHash),
      (s) => s?.state !== 'pending',
      {
        timeoutMs: deadline - now(),
        intervalMs: pollInterval,
        timeoutMessage: 'payment still pending; look it up by payment hash later',
        details: { paymentHash, pending: true },
      },
    );
    if (status === undefined) {
      throw new TollwayError(
        'payment_timeout',
        'the backend lost track of the payment; it did not complete',
        { details: { paymentHash, pending: false } },
      );
    }
    if (status.state === 'failed') {
      throw new TollwayError('payment_failed', status.failureReason ?? 'payment failed', {
        details: { paymentHash },
      });
    }
    return fromStatus(status);
  }

  async function attempt(params: PayInvoiceParams, paymentHash: string): Promise<PaymentResult> {
    const deadline = now() + (params.timeoutMs ?? defaultTimeout);
    const prior = await lookup(paymentHash);
    if (prior?.state === 'succeeded') return fromStatus(prior);
    if (prior?.state === 'pending') return resolve(paymentHash, deadline);
    try {
      return checked(await raw.payInvoice(params));
    } catch (error) {
      // These outcomes may hide a payment that went through: ask, never pay again.
      const ambiguous =
        isTollwayError(error, 'payment_timeout') ||
        isTollwayError(error, 'backend_unavailable') ||
        isTollwayError(error, 'already_paid');
      if (!ambiguous) throw error;
      const after = await lookup(paymentHash).catch(() => undefined);
      if (after === undefined) throw error;
      return resolve(paymentHash, deadline);
    }
  }

  return {
    kind: raw.kind,
    capabilities: raw.capabilities,
    getInfo: () => raw.getInfo(),
    async createInvoice(params) {
      // 0 asks for an amountless invoice (a session's return invoice, which receives its refund).
      if (params.amountMsat < 0n)
        throw new TollwayError('invalid_amount', 'invoice amount must not be negative');
      const created = await raw.createInvoice(params);
      const decoded = decodeInvoice(created.paymentRequest);
      const asked = params.amountMsat === 0n ? undefined : params.amountMsat;
      if (decoded.paymentHash !== created.paymentHash || decoded.amountMsat !== asked) {
        throw new TollwayError(
          'backend_error',
          'backend returned an invoice that does not match the request',
          {
            details: { paymentHash: created.paymentHash },
          },
        );
      }
      return created;
    },
    async lookupInvoice(paymentHash) {
      return checkedStatus(await raw.lookupInvoice(paymentHash));
    },
    async waitForSettlement(paymentHash, waitOptions) {
      return checkedStatus(await raw.waitForSettlement(paymentHash, waitOptions));
    },
    async payInvoice(params) {
      const decoded = decodeInvoice(params.paymentRequest);
      if (decoded.network !== (await backendNetwork())) {
        throw new TollwayError('wrong_network', `invoice is for ${decoded.network}`, {
          details: { invoiceNetwork: decoded.network },
        });
      }
      if (isInvoiceExpired(decoded, now())) {
        throw new TollwayError('invoice_expired', 'invoice has expired', {
          details: { expiresAt: decoded.expiresAt },
        });
      }
      if (decoded.amountMsat === undefined && params.amountMsat === undefined) {
        throw new TollwayError('amount_required', 'invoice has no amount; pass amountMsat');
      }
      if (
        decoded.amountMsat !== undefined &&
        params.amountMsat !== undefined &&
        decoded.amountMsat !== params.amountMsat
      ) {
        throw new TollwayError('amount_mismatch', 'amount differs from the invoice amount');
      }
      if (params.amountMsat !== undefined && params.amountMsat <= 0n) {
        throw new TollwayError('invalid_amount', 'amount must be positive');
      }
      const hash = decoded.paymentHash;
      const running = attempts.get(hash);
      if (running) return running;
      const request: PayInvoiceParams = { ...params, paymentRequest: decoded.paymentRequest };
      const pending = attempt(request, hash).finally(() => attempts.delete(hash));
      attempts.set(hash, pending);
      return pending;
    },
    async lookupPayment(paymentHash) {
      const status = await raw.lookupPayment(paymentHash);
      if (status.state === 'succeeded') fromStatus(status);
      return status;
    },
    getBalance: () => raw.getBalance(),
    close: () => raw.close(),
  };
}

function checked(result: PaymentResult): PaymentResult {
  if (!preimageMatches(result.preimage, result.paymentHash)) {
    throw new TollwayError(
      'preimage_mismatch',
      'backend returned a preimage that does not match the payment hash',
      {
        details: { paymentHash: result.paymentHash },
      },
    );
  }
  return { ...result, preimage: result.preimage.toLowerCase() };
}

function fromStatus(status: PaymentStatus): PaymentResult {
  if (status.preimage === undefined) {
    throw new TollwayError('preimage_mismatch', 'backend reports success without a preimage', {
      details: { paymentHash: status.paymentHash },
    });
  }
  return checked({
    paymentHash: status.paymentHash,
    preimage: status.preimage,
    amountMsat: status.amountMsat ?? 0n,
    feeMsat: status.feeMsat ?? 0n,
  });
}

function checkedStatus(status: InvoiceStatus): InvoiceStatus {
  if (status.preimage !== undefined && !preimageMatches(status.preimage, status.paymentHash)) {
    throw new TollwayError(
      'preimage_mismatch',
      'backend reports a preimage that does not match the invoice',
      {
        details: { paymentHash: status.paymentHash },
      },
    );
  }
  return status;
}
