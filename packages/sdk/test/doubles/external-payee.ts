/**
 * The outside Lightning node that a backend double pays: it issues real signed BOLT11 invoices with its
 * own key, keeps their preimages, and counts how often each was paid (the proof of "never twice").
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '../../src/internal/bytes.js';
import { createPreimage, encodeInvoice } from '../../src/lightning/bolt11.js';
import type { LightningNetwork } from '../../src/lightning/types.js';
import type { BackendHarness } from '../lightning/backend-suite.js';

/** An invoice the outside node issued. */
export interface ExternalInvoice {
  paymentRequest: string;
  paymentHash: string;
  preimage: string;
}

/** See {@link createExternalPayee}. */
export interface ExternalPayee {
  /** Issues an invoice; `amountMsat` undefined makes it amountless. */
  createInvoice(p: { amountMsat?: bigint; expirySeconds?: number }): ExternalInvoice;
  /** Delivers one payment for `paymentHash`: its preimage, or undefined when this node issued no such invoice. */
  receive(paymentHash: string): string | undefined;
  /** How many payments were delivered for `paymentHash`. */
  timesPaid(paymentHash: string): number;
}

/**
 * Creates an outside node for `network`.
 *
 * @example
 * ```ts
 * const payee = createExternalPayee('regtest');
 * const { paymentRequest, paymentHash } = payee.createInvoice({ amountMsat: 5_000n });
 * ```
 */
export function createExternalPayee(network: LightningNetwork): ExternalPayee {
  const privateKey = bytesToHex(secp256k1.utils.randomSecretKey());
  const preimages = new Map<string, string>();
  const paid = new Map<string, number>();
  return {
    createInvoice({ amountMsat, expirySeconds }) {
      const { preimage, paymentHash } = createPreimage();
      const paymentRequest = encodeInvoice({
        network,
        paymentHash,
        paymentSecret: createPreimage().preimage,
        description: 'external payee',
        privateKey,
        ...(amountMsat !== undefined ? { amountMsat } : {}),
        ...(expirySeconds !== undefined ? { expirySeconds } : {}),
      });
      preimages.set(paymentHash, preimage);
      return { paymentRequest, paymentHash, preimage };
    },
    receive(paymentHash) {
      const preimage = preimages.get(paymentHash);
      if (preimage !== undefined) paid.set(paymentHash, (paid.get(paymentHash) ?? 0) + 1);
      return preimage;
    },
    timesPaid: (paymentHash) => paid.get(paymentHash) ?? 0,
  };
}

/**
 * The shared suite's levers on an outside node: {@link BackendHarness}'s `createExternalInvoice` and
 * `timesPaid`, for a double that owns its payee.
 *
 * @example
 * ```ts
 * return { ...server, ...payeeLevers(payee), setBalance };
 * ```
 */
export function payeeLevers(
  payee: ExternalPayee,
): Pick<BackendHarness, 'createExternalInvoice' | 'timesPaid'> {
  return {
    createExternalInvoice: async (p) => payee.createInvoice(p),
    timesPaid: async (paymentHash) => payee.timesPaid(paymentHash),
  };
}
