/**
 * The check every backend makes of an invoice it just asked its node or wallet to create.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { type DecodedInvoice, decodeInvoice } from './bolt11.js';
import type { CreatedInvoice, LightningNetwork } from './types.js';

/**
 * Decodes the invoice a backend created and returns it as a `CreatedInvoice`. It must decode and be
 * for the payment hash the backend named and for the amount asked (0 asks for an amountless
 * invoice); failing that is the backend's fault (`backend_error`). With `network`, an invoice for
 * another network is a misconfiguration (`wrong_network`).
 *
 * @example
 * ```ts
 * return decodeCreatedInvoice('LNbits', { paymentRequest, paymentHash }, params.amountMsat, 'regtest');
 * ```
 */
export function decodeCreatedInvoice(
  backend: string,
  created: { paymentRequest: string; paymentHash: string },
  amountMsat: bigint,
  network?: LightningNetwork,
): CreatedInvoice {
  let decoded: DecodedInvoice;
  try {
    decoded = decodeInvoice(created.paymentRequest, network === undefined ? {} : { network });
  } catch (cause) {
    if (isTollwayError(cause, 'wrong_network')) throw cause;
    throw new TollwayError('backend_error', `${backend} returned an invoice that does not decode`, {
      cause,
    });
  }
  const details = { paymentHash: created.paymentHash };
  if (decoded.paymentHash !== created.paymentHash.toLowerCase()) {
    throw new TollwayError(
      'backend_error',
      `${backend} returned an invoice for another payment hash`,
      {
        details,
      },
    );
  }
  if ((decoded.amountMsat ?? 0n) !== amountMsat) {
    throw new TollwayError('backend_error', `${backend} returned an invoice for another amount`, {
      details,
    });
  }
  return {
    paymentRequest: decoded.paymentRequest,
    paymentHash: decoded.paymentHash,
    amountMsat,
    expiresAt: decoded.expiresAt,
  };
}
