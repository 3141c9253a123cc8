/**
 * One connection string per Lightning backend, so a gateway config, an env var or a CLI flag can name
 * any node or wallet in one line. Reference: docs/reference/lightning.md.
 *
 * | backend | form |
 * |---|---|
 * | LND REST | `lnd+https://host:8080?macaroon=<hex or base64url>&cert=<base64url DER>` (or `macaroonPath=`, `certPath=`); also `lndconnect://host:port?cert=…&macaroon=…` |
 * | Core Lightning clnrest | `cln+https://host:3010?rune=<rune>&cert=<base64url DER>` (or `certPath=`) |
 * | LNbits | `lnbits+https://host?invoiceKey=<key>&adminKey=<key>&network=<mainnet…regtest>` (LNbits does not report its network; default mainnet) |
 * | phoenixd | `phoenixd+http://host:9740?password=<http-password>` |
 * | NWC (NIP-47) | `nostr+walletconnect://<wallet-pubkey>?relay=<wss://…>&secret=<hex>` |
 * | dev node | `dev+http://127.0.0.1:<port>?wallet=<name>&token=<token>` |
 */
import { readFileSync } from 'node:fs';
import { TollwayError } from '../errors.js';
import { base64ToBytes, bytesToBase64, bytesToHex } from '../internal/bytes.js';
import type { LightningNetwork } from './types.js';

const NETWORKS: readonly LightningNetwork[] = ['mainnet', 'testnet', 'signet', 'regtest'];

/** A parsed connection: which backend, and everything needed to reach it. */
export type LightningConnection =
  | { kind: 'lnd'; url: string; macaroonHex: string; certPem?: string }
  | { kind: 'cln'; url: string; rune: string; certPem?: string }
  | {
      kind: 'lnbits';
      url: string;
      invoiceKey: string;
      adminKey?: string;
      network?: LightningNetwork;
    }
  | { kind: 'phoenixd'; url: string; password: string }
  | { kind: 'nwc'; uri: string }
  | { kind: 'dev'; url: string; wallet: string; token: string };

function invalid(message: string): TollwayError {
  return new TollwayError('invalid_connection_string', message);
}

function required(params: URLSearchParams, name: string, backend: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw invalid(`${backend} connection string needs ${name}=`);
  return value;
}

function optional(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name);
  return value === null || value === '' ? undefined : value;
}

/** Accepts a PEM, or base64/base64url DER (the lndconnect convention), and returns PEM. */
function certFrom(params: URLSearchParams): string | undefined {
  const path = optional(params, 'certPath');
  if (path !== undefined) return readFileSync(path, 'utf8');
  const cert = optional(params, 'cert');
  if (cert === undefined) return undefined;
  if (cert.includes('BEGIN CERTIFICATE')) return cert;
  const der = base64ToBytes(cert);
  const lines = bytesToBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

function lndMacaroon(params: URLSearchParams): string {
  const path = optional(params, 'macaroonPath');
  if (path !== undefined) return bytesToHex(new Uint8Array(readFileSync(path)));
  const value = required(params, 'macaroon', 'LND');
  return /^(?:[0-9a-fA-F]{2})+$/.test(value)
    ? value.toLowerCase()
    : bytesToHex(base64ToBytes(value));
}

function httpUrl(url: URL, scheme: 'http' | 'https'): string {
  return `${scheme}://${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`;
}

/**
 * Parses a connection string into a {@link LightningConnection}. Reads `macaroonPath`/`certPath`
 * files. Throws `invalid_connection_string` (or `invalid_base64`) naming what is wrong; never echoes
 * secrets.
 *
 * @example
 * ```ts
 * parseLightningConnection('phoenixd+http://127.0.0.1:9740?password=s3cret');
 * // { kind: 'phoenixd', url: 'http://127.0.0.1:9740', password: 's3cret' }
 * ```
 */
export function parseLightningConnection(text: string): LightningConnection {
  const trimmed = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined)
    throw invalid('a connection string starts with a scheme such as lnd+https://');
  if (scheme === 'nostr+walletconnect' || scheme === 'nostrwalletconnect') {
    return { kind: 'nwc', uri: trimmed };
  }
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw invalid(`not a URL: ${scheme}://…`);
  }
  const p = url.searchParams;
  switch (scheme) {
    case 'lnd+https':
    case 'lndconnect': {
      const certPem = certFrom(p);
      return {
        kind: 'lnd',
        url: httpUrl(url, 'https'),
        macaroonHex: lndMacaroon(p),
        ...(certPem ? { certPem } : {}),
      };
    }
    case 'cln+https': {
      const certPem = certFrom(p);
      return {
        kind: 'cln',
        url: httpUrl(url, 'https'),
        rune: required(p, 'rune', 'Core Lightning'),
        ...(certPem ? { certPem } : {}),
      };
    }
    case 'cln+http':
      return {
        kind: 'cln',
        url: httpUrl(url, 'http'),
        rune: required(p, 'rune', 'Core Lightning'),
      };
    case 'lnbits+https':
    case 'lnbits+http': {
      const adminKey = optional(p, 'adminKey');
      const network = optional(p, 'network');
      if (network !== undefined && !NETWORKS.includes(network as LightningNetwork)) {
        throw invalid(`LNbits network= must be one of ${NETWORKS.join(', ')}`);
      }
      return {
        kind: 'lnbits',
        url: httpUrl(url, scheme === 'lnbits+https' ? 'https' : 'http'),
        invoiceKey: optional(p, 'invoiceKey') ?? required(p, 'adminKey', 'LNbits'),
        ...(adminKey ? { adminKey } : {}),
        ...(network ? { network: network as LightningNetwork } : {}),
      };
    }
    case 'phoenixd+http':
    case 'phoenixd+https':
      return {
        kind: 'phoenixd',
        url: httpUrl(url, scheme === 'phoenixd+https' ? 'https' : 'http'),
        password: required(p, 'password', 'phoenixd'),
      };
    case 'dev+http':
    case 'dev+https':
      return {
        kind: 'dev',
        url: httpUrl(url, scheme === 'dev+https' ? 'https' : 'http'),
        wallet: required(p, 'wallet', 'dev node'),
        token: required(p, 'token', 'dev node'),
      };
    default:
      throw invalid(
        `unknown backend scheme ${scheme}: use lnd+https, cln+https, lnbits+https, phoenixd+http, nostr+walletconnect or dev+http`,
      );
  }
}
