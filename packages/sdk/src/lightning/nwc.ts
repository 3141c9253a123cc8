/**
 * The Nostr Wallet Connect (NIP-47) backend: a Lightning wallet reached through a Nostr relay with
 * one connection key (`nostr+walletconnect://…`), such as Alby Hub, Coinos or Primal.
 *
 * Amounts on the wire are msat, as NIP-47 says. The wallet enforces its own limits (a connection
 * budget answers `quota_exceeded`) and its own fee policy: NIP-47 has no fee ceiling, so
 * `maxFeeMsat` cannot be passed on. A payment whose reply never comes fails with `payment_timeout`
 * and is resolved by `lookupPayment` (`lookup_invoice` by payment hash), never by paying again.
 */
import { z } from 'zod';
import { isTollwayError, TollwayError } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';
import { decodeInvoice } from './bolt11.js';
import { createNwcClient, type WalletNotification } from './nwc-client.js';
import { formatNwcUri, type NwcConnection, parseNwcUri } from './nwc-uri.js';
import {
  malformed,
  type NwcBudget,
  readBalance,
  readBudget,
  readInfo,
  readPayResult,
  readTransaction,
  toInvoiceStatus,
  toPaymentStatus,
} from './nwc-wire.js';
import type {
  InvoiceStatus,
  LightningBackend,
  LightningCapabilities,
  PaymentStatus,
} from './types.js';

export { formatNwcUri, type NwcConnection, parseNwcUri } from './nwc-uri.js';
export type { NwcBudget } from './nwc-wire.js';

/** Options of {@link createNwcBackend}: a parsed connection URI plus timings. */
export interface NwcOptions extends NwcConnection {
  /** How long to wait for the wallet's reply to anything but a payment; default 30 000 ms. */
  requestTimeoutMs?: number;
  /** How long to wait for a payment when `payInvoice` is given no `timeoutMs`; default 60 000 ms. */
  paymentTimeoutMs?: number;
  /** How long to wait for the relay's WebSocket handshake; default 10 000 ms. */
  connectTimeoutMs?: number;
  /** `waitForSettlement` looks the invoice up this often (notifications wake it sooner); default 1 000 ms. */
  pollIntervalMs?: number;
}

/** An NWC wallet: a {@link LightningBackend} plus what only NWC offers. */
export interface NwcBackend extends LightningBackend {
  /** The connection's spending budget (`get_budget`); `null` when it has none. */
  getBudget(): Promise<NwcBudget | null>;
}

const notifiedPayment = z.object({ payment_hash: z.string() });

function toWireMsat(amountMsat: bigint): number {
  if (amountMsat < 0n || amountMsat > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TollwayError('invalid_amount', 'amount is out of range for NWC');
  }
  return Number(amountMsat);
}

function checkHash(paymentHash: string): string {
  hexToBytes(paymentHash, 32);
  return paymentHash.toLowerCase();
}

function notFound(paymentHash: string): TollwayError {
  return new TollwayError('invoice_not_found', 'NWC wallet knows no such invoice or payment', {
    details: { paymentHash },
  });
}

/**
 * Creates an NWC backend. Nothing connects until the first call; the relay connection is reopened
 * after a drop. Capabilities start optimistic and follow the wallet's info event once it is read.
 * Receiving needs `make_invoice` and `lookup_invoice`; paying needs `pay_invoice` and
 * `lookup_invoice` (a payment must be resolvable by hash). Wrap it with `wrapBackend` (as
 * `connectLightning` does) before paying.
 *
 * @example
 * ```ts
 * const wallet = createNwcBackend(parseNwcUri(process.env.NWC_URL ?? ''));
 * const { msat } = await wallet.getBalance();
 * await wallet.close();
 * ```
 */
export function createNwcBackend(options: NwcOptions): NwcBackend {
  const connection = parseNwcUri(formatNwcUri(options));
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const paymentTimeoutMs = options.paymentTimeoutMs ?? 60_000;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const client = createNwcClient(connection, {
    requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
  });
  const capabilities: LightningCapabilities = { canReceive: true, canPay: true };
  const wakers = new Map<string, Set<() => void>>();
  let stopListening: (() => void) | undefined;
  let closed = false;

  function learn(methods: ReadonlySet<string>): void {
    capabilities.canReceive = methods.has('make_invoice') && methods.has('lookup_invoice');
    capabilities.canPay = methods.has('pay_invoice') && methods.has('lookup_invoice');
  }

  async function call(
    method: string,
    params: object,
    timeoutMs = requestTimeoutMs,
    movesMoney = false,
  ): Promise<unknown> {
    const { methods } = await client.info();
    if (methods !== undefined) learn(methods);
    return client.request(method, params, { timeoutMs, movesMoney });
  }

  async function lookup(paymentHash: string, timeoutMs = requestTimeoutMs) {
    const hash = checkHash(paymentHash);
    const tx = readTransaction(
      'lookup_invoice',
      await call('lookup_invoice', { payment_hash: hash }, timeoutMs),
    );
    if (tx.payment_hash !== hash) throw malformed('lookup_invoice', 'reply is for another hash');
    return tx;
  }

  async function lookupInvoice(paymentHash: string, timeoutMs?: number): Promise<InvoiceStatus> {
    const tx = await lookup(paymentHash, timeoutMs);
    if (tx.type !== 'incoming') throw notFound(tx.payment_hash);
    return toInvoiceStatus(tx, Date.now());
  }

  async function lookupPayment(paymentHash: string): Promise<PaymentStatus> {
    const tx = await lookup(paymentHash);
    if (tx.type !== 'outgoing') throw notFound(tx.payment_hash);
    return toPaymentStatus(tx);
  }

  function onNotification(notification: WalletNotification): void {
    if (notification.type !== 'payment_received') return;
    const payment = notifiedPayment.safeParse(notification.payload);
    if (!payment.success) return;
    for (const wake of wakers.get(payment.data.payment_hash.toLowerCase()) ?? []) wake();
  }

  function addWaker(hash: string, wake: () => void, listen: boolean): () => void {
    const set = wakers.get(hash) ?? new Set();
    set.add(wake);
    wakers.set(hash, set);
    if (listen) stopListening ??= client.listen(onNotification);
    return () => {
      set.delete(wake);
      if (set.size === 0) wakers.delete(hash);
      if (wakers.size === 0) {
        stopListening?.();
        stopListening = undefined;
      }
    };
  }

  return {
    kind: 'nwc',
    capabilities,

    async getInfo() {
      const { methods } = await client.info();
      // Without get_info the wallet cannot say; NWC wallets serve mainnet.
      if (methods !== undefined && !methods.has('get_info')) return { network: 'mainnet' };
      const { info, methods: listed } = readInfo(await call('get_info', {}));
      if (methods === undefined && listed !== undefined) learn(new Set(listed));
      return info;
    },

    async createInvoice(params) {
      const request: Record<string, unknown> = {
        amount: toWireMsat(params.amountMsat),
        expiry: params.expirySeconds ?? 3600,
      };
      if (params.descriptionHash !== undefined) {
        request.description_hash = checkHash(params.descriptionHash);
      } else if (params.memo !== undefined) {
        request.description = params.memo;
      }
      const tx = readTransaction('make_invoice', await call('make_invoice', request));
      if (!tx.invoice) throw malformed('make_invoice', 'result has no invoice');
      let decoded: ReturnType<typeof decodeInvoice>;
      try {
        decoded = decodeInvoice(tx.invoice);
      } catch (error) {
        throw malformed('make_invoice', 'the invoice does not decode', error);
      }
      if (decoded.paymentHash !== tx.payment_hash) {
        throw malformed('make_invoice', 'payment_hash differs from the invoice');
      }
      return {
        paymentRequest: tx.invoice,
        paymentHash: decoded.paymentHash,
        amountMsat: decoded.amountMsat ?? BigInt(tx.amount),
        expiresAt: decoded.expiresAt,
      };
    },

    lookupInvoice: (paymentHash) => lookupInvoice(paymentHash),

    async waitForSettlement(paymentHash, wait = {}) {
      const hash = checkHash(paymentHash);
      const deadline = Date.now() + (wait.timeoutMs ?? 60_000);
      const { notifications } = await client.info();
      let woken = false;
      let wake = (): void => {};
      const removeWaker = addWaker(
        hash,
        () => {
          woken = true;
          wake();
        },
        notifications.has('payment_received'),
      );
      try {
        for (;;) {
          wait.signal?.throwIfAborted();
          if (closed) throw new TollwayError('backend_unavailable', 'the NWC backend is closed');
          woken = false;
          const left = Math.max(1, Math.min(requestTimeoutMs, deadline - Date.now()));
          try {
            const status = await lookupInvoice(hash, left);
            if (status.state !== 'open') return status;
          } catch (error) {
            // A dropped relay or a busy wallet is retried until the deadline.
            if (!isTollwayError(error, 'backend_unavailable')) throw error;
          }
          const remaining = deadline - Date.now();
          if (remaining <= 0) {
            throw new TollwayError('payment_timeout', 'the invoice was not settled in time', {
              details: { paymentHash: hash },
            });
          }
          if (woken || wait.signal?.aborted) continue;
          await new Promise<void>((resolve, reject) => {
            const signal = wait.signal;
            const done = (): void => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', aborted);
              wake = () => {};
              resolve();
            };
            const aborted = (): void => {
              done();
              reject(signal?.reason);
            };
            const timer = setTimeout(done, Math.min(pollIntervalMs, remaining));
            wake = done;
            signal?.addEventListener('abort', aborted, { once: true });
          });
        }
      } finally {
        removeWaker();
      }
    },

    async payInvoice(params) {
      const decoded = decodeInvoice(params.paymentRequest);
      const request: Record<string, unknown> = { invoice: params.paymentRequest };
      if (decoded.amountMsat === undefined && params.amountMsat !== undefined) {
        request.amount = toWireMsat(params.amountMsat);
      }
      const timeoutMs = params.timeoutMs ?? paymentTimeoutMs;
      const result = readPayResult(await call('pay_invoice', request, timeoutMs, true));
      // Some wallets report success without the preimage; the payment record may have it.
      const preimage =
        result.preimage ??
        (await lookupPayment(decoded.paymentHash).catch(() => undefined))?.preimage;
      if (preimage === undefined) {
        throw new TollwayError(
          'backend_error',
          'NWC wallet reported a payment without a preimage',
          {
            details: { paymentHash: decoded.paymentHash },
          },
        );
      }
      return {
        paymentHash: decoded.paymentHash,
        preimage,
        amountMsat: decoded.amountMsat ?? params.amountMsat ?? 0n,
        feeMsat: result.feeMsat,
      };
    },

    lookupPayment,

    async getBalance() {
      return readBalance(await call('get_balance', {}));
    },

    async getBudget() {
      return readBudget(await call('get_budget', {}));
    },

    async close() {
      closed = true;
      for (const set of wakers.values()) for (const wake of set) wake();
      await client.close();
    },
  };
}
