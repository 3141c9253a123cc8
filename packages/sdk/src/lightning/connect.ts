/**
 * `connectLightning`: one call from a connection string (or its parsed form) to a ready backend,
 * wrapped in the shared safety layer. Each backend module is imported when a connection names it,
 * so that importing the BOLT11 helpers or parsing a connection string loads no backend: NWC brings
 * a WebSocket client and nostr-tools, the REST backends `node:http` and `node:https`.
 */
import { type LightningConnection, parseLightningConnection } from './connection-string.js';
import { parseNwcUri } from './nwc-uri.js';
import { type SafeBackendOptions, wrapBackend } from './safe-backend.js';
import type { LightningBackend } from './types.js';

/**
 * Connects to a Lightning node or wallet. Connection strings are documented in
 * docs/reference/lightning.md. The result never pays an invoice twice and checks every preimage.
 * Rejects with `invalid_connection_string` when the string is malformed.
 *
 * @example
 * ```ts
 * const ln = await connectLightning(process.env.TOLLWAY_WALLET ?? 'dev+http://127.0.0.1:4242?wallet=alice&token=…');
 * const { preimage } = await ln.payInvoice({ paymentRequest, maxFeeMsat: 10_000n });
 * ```
 */
export async function connectLightning(
  source: string | LightningConnection,
  options: SafeBackendOptions = {},
): Promise<LightningBackend> {
  const connection = typeof source === 'string' ? parseLightningConnection(source) : source;
  return wrapBackend(await createRawBackend(connection), options);
}

async function createRawBackend(connection: LightningConnection): Promise<LightningBackend> {
  switch (connection.kind) {
    case 'lnd':
      return (await import('./lnd.js')).createLndBackend(connection);
    case 'cln':
      return (await import('./cln.js')).createClnBackend(connection);
    case 'lnbits':
      return (await import('./lnbits.js')).createLnbitsBackend(connection);
    case 'phoenixd':
      return (await import('./phoenixd.js')).createPhoenixdBackend(connection);
    case 'nwc':
      return (await import('./nwc.js')).createNwcBackend(parseNwcUri(connection.uri));
    case 'dev':
      return (await import('./dev/backend.js')).createDevBackend(connection);
  }
}
