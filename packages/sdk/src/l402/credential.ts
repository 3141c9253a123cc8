/**
 * L402 credentials: `Authorization: L402 <macaroon>:<preimage>` and the gRPC-style `Macaroon` /
 * `Grpc-Metadata-Macaroon` headers.
 */
import { TollwayError } from '../errors.js';
import { base64ToBytes, bytesToHex, bytesToUtf8, hexToBytes } from '../internal/bytes.js';
import { MAX_AUTH_HEADER_LENGTH, parseCredentials } from '../internal/www-authenticate.js';
import { decodeMacaroon, formatMacaroon } from './macaroon.js';
import type { L402Credential, L402Scheme, Macaroon } from './types.js';

/** Parameters of {@link formatL402Credential}. */
export interface FormatL402CredentialParams {
  /** `L402` (default), or `LSAT` to answer a server that only challenged with `LSAT`. */
  scheme?: L402Scheme;
  /** The token first; any others follow as discharge macaroons. */
  macaroons: readonly Macaroon[];
  /** The 32-byte preimage of the paid invoice. */
  preimage: Uint8Array;
}

/** Headers other than `Authorization` that may carry an L402 credential. */
export interface L402CredentialHeaders {
  /** `Macaroon:` (Aperture's gRPC client): a hex macaroon with a `preimage=<hex>` caveat. */
  macaroonHeader?: string | readonly string[];
  /** `Grpc-Metadata-Macaroon:` (grpc-gateway): same form. */
  grpcMetadataMacaroon?: string | readonly string[];
}

const PREIMAGE = /^[0-9a-fA-F]{64}$/;
const PREIMAGE_CAVEAT = 'preimage=';

/** A parsed credential and the bytes it was read from, to tell repeats from conflicts. */
interface Candidate {
  credential: L402Credential;
  key: string;
}

function invalid(message: string): TollwayError {
  return new TollwayError('invalid_credential', message);
}

function readPreimage(hex: string): Uint8Array {
  if (!PREIMAGE.test(hex)) {
    throw new TollwayError('invalid_preimage', 'the preimage is not 32 bytes of hex');
  }
  return hexToBytes(hex.toLowerCase());
}

function readMacaroon(text: string, decode: (text: string) => Uint8Array): [Macaroon, Uint8Array] {
  let bytes: Uint8Array;
  try {
    bytes = decode(text);
  } catch (cause) {
    throw new TollwayError('invalid_macaroon', 'the macaroon is not validly encoded', { cause });
  }
  return [decodeMacaroon(bytes), bytes];
}

/** `L402|LSAT <b64>[,<b64>…]:<hex>` after the scheme. */
function readAuthorization(scheme: L402Scheme, rest: string): Candidate {
  const colon = rest.indexOf(':');
  if (rest === '' || colon < 0 || rest.indexOf(':', colon + 1) >= 0) {
    throw invalid(`expected ${scheme} <macaroon>:<preimage>`);
  }
  const preimage = readPreimage(rest.slice(colon + 1));
  const macaroons: Macaroon[] = [];
  const keys: string[] = [];
  for (const text of rest.slice(0, colon).split(',')) {
    const trimmed = text.trim();
    if (trimmed === '') continue;
    const [macaroon, bytes] = readMacaroon(trimmed, base64ToBytes);
    macaroons.push(macaroon);
    keys.push(bytesToHex(bytes));
  }
  if (macaroons.length === 0) throw invalid('the credential has no macaroon');
  return {
    credential: { scheme, macaroons, preimage },
    key: `${keys.join(',')}:${bytesToHex(preimage)}`,
  };
}

/** A hex macaroon carrying its own `preimage=<hex>` caveat. */
function readMacaroonHeader(text: string): Candidate {
  const [macaroon, bytes] = readMacaroon(text, hexToBytes);
  const preimages = new Set<string>();
  for (const caveat of macaroon.caveats) {
    if (caveat.verificationId !== undefined) continue;
    const condition = bytesToUtf8(caveat.identifier);
    if (condition.startsWith(PREIMAGE_CAVEAT)) {
      preimages.add(condition.slice(PREIMAGE_CAVEAT.length).toLowerCase());
    }
  }
  const [hex, ...others] = preimages;
  if (hex === undefined) throw invalid('the macaroon header has no preimage caveat');
  if (others.length > 0) throw invalid('the macaroon has several different preimage caveats');
  const preimage = readPreimage(hex);
  return {
    credential: { scheme: 'L402', macaroons: [macaroon], preimage },
    key: `${bytesToHex(bytes)}:${hex}`,
  };
}

function headerLines(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  const lines = typeof value === 'string' ? [value] : [...value];
  if (lines.join(',').length > MAX_AUTH_HEADER_LENGTH) {
    throw invalid(`macaroon header is longer than ${MAX_AUTH_HEADER_LENGTH}`);
  }
  return lines
    .flatMap((line) => line.split(','))
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

function single(candidates: readonly Candidate[]): L402Credential | undefined {
  const [first, ...others] = candidates;
  if (first === undefined) return undefined;
  if (others.some((other) => other.key !== first.key)) {
    throw new TollwayError(
      'conflicting_credentials',
      'the request carries several different L402 credentials',
    );
  }
  return first.credential;
}

/**
 * Formats an `Authorization` value: `L402 <macaroon>[,<discharge>…]:<preimage>`, macaroons as
 * standard padded base64, the preimage as lower-case hex. Throws `invalid_preimage` unless the
 * preimage is 32 bytes, `invalid_credential` when there is no macaroon.
 *
 * @example
 * ```ts
 * headers.set('Authorization', formatL402Credential({ macaroons: [token], preimage }));
 * ```
 */
export function formatL402Credential(params: FormatL402CredentialParams): string {
  if (params.preimage.length !== 32) {
    throw new TollwayError('invalid_preimage', 'the preimage is not 32 bytes');
  }
  if (params.macaroons.length === 0) throw invalid('a credential needs a macaroon');
  const macaroons = params.macaroons.map(formatMacaroon).join(',');
  return `${params.scheme ?? 'L402'} ${macaroons}:${bytesToHex(params.preimage)}`;
}

/**
 * Reads the L402 credential of a request.
 *
 * `Authorization: L402|LSAT <macaroon>[,<discharge>…]:<preimage>` is read first: scheme in any
 * case; macaroons in standard or URL-safe base64, padded or not; the preimage as 64 hex digits in
 * either case (returned as bytes). Only when no `Authorization` value holds an L402/LSAT credential
 * are `Macaroon` and `Grpc-Metadata-Macaroon` read: a hex macaroon whose first-party caveat
 * `preimage=<hex>` carries the preimage. Client-added caveats are kept in the macaroon (they only
 * narrow it); nothing is verified here beyond the encoding (see `verifyL402`).
 *
 * Returns `undefined` when there is no L402 credential at all (for example only
 * `Authorization: Bearer x`), so a server can tell "no credential" (send a challenge) from "bad
 * credential". Throws:
 * - `invalid_credential` when the value is not `<macaroons>:<preimage>` with at least one macaroon
 *   (empty list elements are skipped), or a macaroon header has no (or several different)
 *   preimage caveats;
 * - `invalid_preimage` when the preimage is not 32 bytes of hex;
 * - `invalid_macaroon` when a macaroon is not base64 (hex for the headers) or not a V2 macaroon;
 * - `conflicting_credentials` when several different credentials are present: `Authorization`
 *   lines that disagree, a comma-joined pair of different L402 credentials, or different macaroon
 *   headers. Exact repeats (an `LSAT` and an `L402` line carrying the same token) are accepted.
 *
 * @example
 * ```ts
 * const credential = parseL402Credential(req.headers.authorization, {
 *   macaroonHeader: req.headers.macaroon,
 *   grpcMetadataMacaroon: req.headers['grpc-metadata-macaroon'],
 * });
 * if (credential === undefined) return send402();
 * ```
 */
export function parseL402Credential(
  authorization: string | readonly string[] | undefined,
  extra: L402CredentialHeaders = {},
): L402Credential | undefined {
  const fromAuthorization: Candidate[] = [];
  for (const { schemeLower, rest } of parseCredentials(authorization ?? [])) {
    if (schemeLower === 'l402') fromAuthorization.push(readAuthorization('L402', rest));
    if (schemeLower === 'lsat') fromAuthorization.push(readAuthorization('LSAT', rest));
  }
  if (fromAuthorization.length > 0) return single(fromAuthorization);
  const fromHeaders = [
    ...headerLines(extra.macaroonHeader),
    ...headerLines(extra.grpcMetadataMacaroon),
  ].map(readMacaroonHeader);
  return single(fromHeaders);
}
