/**
 * `connectLightning`: one call from a connection string (or its parsed form) to a ready backend,
 * wrapped in the shared safety layer.
 */
import { createClnBackend } from './cln.js';
import { type LightningConnection, parseLightningConnection } from './connection-string.js';
import { createDevBackend } from './dev/backend.js';
import { createLnbitsBackend } from './lnbits.js';
import { createLndBackend } from './lnd.js';
import { createNwcBackend } from './nwc.js';
import { parseNwcUri } from './nwc-uri.js';
import { createPhoenixdBackend } from './phoenixd.js';
import { type SafeBackendOptions, wrapBackend } from './safe-backend.js';
import type { LightningBackend } from './types.js';

/**
 * Connects to a Lightning node or wallet. Connection strings are documented in
 * docs/reference/lightning.md. The result never pays an invoice twice and checks every preimage.
 *
 * @example
 * ```ts
 * const ln = connectLightning(process.env.TOLLWAY_WALLET ?? 'dev+http://127.0.0.1:4242?wallet=alice&token=…');
 * const { preimage } = await ln.payInvoice({ paymentRequest, maxFeeMsat: 10_000n });
 * ```
 */
export function connectLightning(
  source: string | LightningConnection,
  options: SafeBackendOptions = {},
): LightningBackend {
  const connection = typeof source === 'string' ? parseLightningConnection(source) : source;
  return wrapBackend(createRawBackend(connection), options);
}

function createRawBackend(connection: LightningConnection): LightningBackend {
  switch (connection.kind) {
    case 'lnd':
      return createLndBackend(connection);
    case 'cln':
      return createClnBackend(connection);
    case 'lnbits':
      return createLnbitsBackend(connection);
    case 'phoenixd':
      return createPhoenixdBackend(connection);
    case 'nwc':
      return createNwcBackend(parseNwcUri(connection.uri));
    case 'dev':
      return createDevBackend(connection);
  }
}
