/**
 * What this instance knows of its invoices: the amount of each invoice it created or confirmed
 * settled, which ones are settled, and one backend look-up per payment hash at a time.
 */
import type { InvoiceStatus, LightningBackend } from '../lightning/types.js';
import { createLru } from './lru.js';

/** See {@link createInvoiceBook}. */
export interface InvoiceBook {
  /** The amount of an invoice this instance created or saw settled, msat. */
  amountOf(paymentHash: string): bigint | undefined;
  /** Remembers the amount of an invoice this instance created. */
  noteCreated(paymentHash: string, amountMsat: bigint): void;
  /** Remembers a settled invoice (and its amount). */
  noteSettled(status: InvoiceStatus): void;
  isSettled(paymentHash: string): boolean;
  /** Asks the backend, sharing one look-up between concurrent callers for the same hash. */
  lookup(paymentHash: string): Promise<InvoiceStatus>;
}

const MAX_REMEMBERED = 100_000;

/**
 * Creates an empty book over `lightning`.
 *
 * @example
 * ```ts
 * const invoices = createInvoiceBook(backend);
 * const status = await invoices.lookup(paymentHash);
 * ```
 */
export function createInvoiceBook(lightning: LightningBackend): InvoiceBook {
  const amounts = createLru<string, bigint>(MAX_REMEMBERED);
  const settled = createLru<string, true>(MAX_REMEMBERED);
  const lookups = new Map<string, Promise<InvoiceStatus>>();
  return {
    amountOf: (paymentHash) => amounts.get(paymentHash),
    noteCreated: (paymentHash, amountMsat) => amounts.set(paymentHash, amountMsat),
    noteSettled(status) {
      settled.set(status.paymentHash, true);
      const amount = status.amountPaidMsat ?? status.amountMsat;
      if (amount !== undefined) amounts.set(status.paymentHash, amount);
    },
    isSettled: (paymentHash) => settled.get(paymentHash) !== undefined,
    lookup(paymentHash) {
      let pending = lookups.get(paymentHash);
      if (pending === undefined) {
        pending = lightning.lookupInvoice(paymentHash);
        lookups.set(paymentHash, pending);
        const forget = () => lookups.delete(paymentHash);
        pending.then(forget, forget);
      }
      return pending;
    },
  };
}
