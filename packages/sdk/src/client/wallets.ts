/**
 * The paying fetch's Lightning wallets: the backends it was given, and the connection strings it
 * connects itself the first time a payment (or the recovery of one) needs a wallet — so that a call
 * answered with a saved credential loads no backend and opens no connection. Which wallet pays on
 * each network, and what they know of a payment.
 *
 * @internal
 */
import { isTollwayError, type TollwayError } from '../errors.js';
import {
  type LightningConnection,
  parseLightningConnection,
} from '../lightning/connection-string.js';
import type { LightningBackend, LightningNetwork, PaymentStatus } from '../lightning/types.js';
import type { PayingContext } from './paying-context.js';

/** A wallet of the paying fetch: a backend, or a connection string connected on first use. */
export type WalletSource = LightningBackend | string;

/** One wallet as the paying fetch holds it. */
export interface Wallet {
  /** The backend; connects it on the first call for a connection string (again after a failure). */
  backend(): Promise<LightningBackend>;
  /** Closes the backend when the paying fetch connected it; a backend it was given is the caller's. */
  close(): Promise<void>;
}

function givenWallet(backend: LightningBackend): Wallet {
  return { backend: async () => backend, close: async () => undefined };
}

function connectedWallet(connection: LightningConnection): Wallet {
  let connecting: Promise<LightningBackend> | undefined;
  return {
    backend() {
      connecting ??= import('../lightning/connect.js')
        .then(({ connectLightning }) => connectLightning(connection))
        .catch((error: unknown) => {
          connecting = undefined;
          throw error;
        });
      return connecting;
    },
    async close() {
      const backend = await connecting?.catch(() => undefined);
      connecting = undefined;
      await backend?.close();
    },
  };
}

/**
 * The wallets of `sources`, in order. A connection string is read now (`invalid_connection_string`
 * when it is malformed) and connected when first needed.
 *
 * @internal
 */
export function walletsOf(sources: WalletSource | readonly WalletSource[]): readonly Wallet[] {
  const list: readonly WalletSource[] = Array.isArray(sources) ? sources : [sources];
  return list.map((source) =>
    typeof source === 'string'
      ? connectedWallet(parseLightningConnection(source))
      : givenWallet(source),
  );
}

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
  for (const source of context.wallets) {
    try {
      const wallet = await source.backend();
      if (!wallet.capabilities.canPay) continue;
      const name = await networkOf(context, wallet);
      if (!byNetwork.has(name)) byNetwork.set(name, wallet);
    } catch (error) {
      if (!isTollwayError(error)) throw error;
      failure ??= error;
    }
  }
  return { byNetwork, failure };
}

/** The network of `wallet`, asked once (again after a failure: a wallet down now may be up later). */
function networkOf(context: PayingContext, wallet: LightningBackend): Promise<LightningNetwork> {
  let network = context.networks.get(wallet);
  if (network === undefined) {
    network = wallet.getInfo().then((info) => info.network);
    context.networks.set(wallet, network);
    network.catch(() => context.networks.delete(wallet));
  }
  return network;
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
  for (const source of context.wallets) {
    try {
      return await (await source.backend()).lookupPayment(paymentHash);
    } catch (error) {
      if (!isTollwayError(error)) throw error;
      if (error.code !== 'invoice_not_found') failed = true;
    }
  }
  return failed ? 'error' : undefined;
}

/**
 * Closes the wallets the paying fetch connected itself.
 *
 * @internal
 */
export async function closeWallets(context: PayingContext): Promise<void> {
  await Promise.all(context.wallets.map((wallet) => wallet.close()));
}
