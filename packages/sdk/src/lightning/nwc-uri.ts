/**
 * Nostr Wallet Connect (NIP-47) connection URIs:
 * `nostr+walletconnect://<wallet pubkey>?relay=<wss://…>&secret=<hex>[&relay=…][&lud16=…]`.
 */
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { TollwayError } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';

/** Where and how to reach one NWC wallet connection: the parts of its URI. */
export interface NwcConnection {
  /** The wallet service's x-only public key, 64 lower-case hex digits. */
  walletPubkey: string;
  /** Relays the wallet service listens on (`wss://`, or `ws://` on a trusted network), at least one. */
  relays: string[];
  /** This connection's client secret key, 64 lower-case hex digits. Never log it. */
  secret: string;
  /** The wallet's lightning address, when the URI names one. */
  lud16?: string;
}

const URI = /^(?:nostr\+walletconnect|nostrwalletconnect):(?:\/\/)?([^/?#]*)\/?\?([^#]*)$/i;
const HEX64 = /^[0-9a-fA-F]{64}$/;

function invalid(message: string): TollwayError {
  return new TollwayError('invalid_connection_string', message);
}

function isXOnlyPubkey(hex: string): boolean {
  try {
    schnorr.utils.lift_x(BigInt(`0x${hex}`));
    return true;
  } catch {
    return false;
  }
}

function relayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('NWC relay= is not a URL');
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw invalid('NWC relay= must be a ws:// or wss:// URL');
  }
  return text;
}

/**
 * Parses a NIP-47 connection URI. Throws `invalid_connection_string` naming what is wrong (never
 * echoing the secret): a wrong scheme, a wallet key that is not a valid x-only public key, no
 * `relay=`, a relay that is not `ws(s)://`, or a `secret=` that is not a valid secp256k1 key.
 *
 * @example
 * ```ts
 * const connection = parseNwcUri(process.env.NWC_URL ?? '');
 * const wallet = createNwcBackend(connection);
 * ```
 */
export function parseNwcUri(uri: string): NwcConnection {
  const match = URI.exec(uri.trim());
  if (match === null) {
    throw invalid('an NWC URI looks like nostr+walletconnect://<pubkey>?relay=…&secret=…');
  }
  const walletPubkey = match[1] ?? '';
  if (!HEX64.test(walletPubkey) || !isXOnlyPubkey(walletPubkey)) {
    throw invalid('NWC wallet public key must be 64 hex digits of a valid x-only key');
  }
  const params = new URLSearchParams(match[2]);
  const relays = params.getAll('relay').map(relayUrl);
  if (relays.length === 0) throw invalid('NWC URI needs relay=');
  const secret = params.get('secret') ?? '';
  if (!HEX64.test(secret) || !secp256k1.utils.isValidSecretKey(hexToBytes(secret, 32))) {
    throw invalid('NWC secret= must be 64 hex digits of a valid secp256k1 secret key');
  }
  const connection: NwcConnection = {
    walletPubkey: walletPubkey.toLowerCase(),
    relays,
    secret: secret.toLowerCase(),
  };
  const lud16 = params.get('lud16');
  if (lud16 !== null && lud16 !== '') connection.lud16 = lud16;
  return connection;
}

/**
 * Formats a connection as a NIP-47 URI (the inverse of {@link parseNwcUri}).
 *
 * @example
 * ```ts
 * formatNwcUri({ walletPubkey, relays: ['wss://relay.example'], secret });
 * // 'nostr+walletconnect://<pubkey>?relay=wss%3A%2F%2Frelay.example&secret=<hex>'
 * ```
 */
export function formatNwcUri(connection: NwcConnection): string {
  const params = new URLSearchParams();
  for (const relay of connection.relays) params.append('relay', relay);
  params.set('secret', connection.secret);
  if (connection.lud16 !== undefined) params.set('lud16', connection.lud16);
  return `nostr+walletconnect://${connection.walletPubkey}?${params.toString()}`;
}
