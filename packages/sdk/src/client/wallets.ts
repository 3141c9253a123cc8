/**
 * The paying fetch's Lightning wallets: which one pays on each network, and what they know of a
 * payment.
 *
 * @internal
 */
import { isTollwayError, type TollwayError } from '../errors.js';
import type { LightningBackend, LightningNetwork, PaymentStatus } from '../lightning/types.js';
import type { PayingContext } from './paying-context.js';

/**
 * The wallet to pay on each network (the first one listed), asking each wallet once; `failure`
 * is the error of the first wallet that could not be asked (a refused token, an unreachable
 * node). When no offer can be paid, that, not a network mismatch, is the reason to report.
 *
 * @internal
 */
export async function walletsByNetwork(context: PayingContext): Promise<{
  byNetwork: Map<LightningNetwork, LightningBackend>;
  failure: TollwayError | undefined;
}> {
  const byNetwork = new Map<LightningNetwork, LightningBackend>();
  let failure: TollwayError | undefined;
  for (const wallet of context.wallets) {
    if (!wallet.capabilities.canPay) continue;
    let network = context.networks.get(wallet);
    if (network === undefined) {
      network = wallet.getInfo().then((info) => info.network);
      context.networks.set(wallet, network);
    }
    try {
      const name = await network;
      if (!byNetwork.has(name)) byNetwork.set(name, wallet);
    } catch (error) {
      // A wallet that cannot be reached now is asked again next time.
      context.networks.delete(wallet);
      if (!isTollwayError(error)) throw error;
      failure ??= error;
    }
  }
  return { byNetwork, failure };
}

/**
 * What the wallets know of an outgoing payment: the first answer; `'error'` when none answered and
 * one failed otherwise than not knowing it; `undefined` when none ever saw it.
 *
 * @internal
 */
export async function lookupPayment(
  context: PayingContext,
  paymentHash: string,
): Promise<PaymentStatus | 'error' | undefined> {
  let failed = false;
  for (const wallet of context.wallets) {
    try {
      return await wallet.lookupPayment(paymentHash);
    } catch (error) {
      if (!isTollwayError(error)) throw error;
      if (error.code !== 'invoice_not_found') failed = true;
    }
  }
  return failed ? 'error' : undefined;
}
