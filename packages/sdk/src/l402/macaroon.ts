/**
 * Macaroons in the libmacaroons V2 binary format, byte-compatible with go-macaroon (what Aperture
 * and lnd produce), with the HMAC-SHA256 signature chain.
 *
 * Layout: `0x02`, an optional location packet, the identifier packet, EOS; then per caveat an
 * optional location packet, the identifier packet, an optional verification-id packet, EOS; then
 * EOS and the 32-byte signature packet. A packet is `varint(type) varint(length) data`; EOS is a
 * single `0x00` byte.
 *
 * The decoder accepts canonical encodings only (shortest varints, no empty optional packets, no
 * trailing bytes), so `encodeMacaroon(decodeMacaroon(bytes))` always gives back `bytes`.
 */
import { TollwayError } from '../errors.js';
import {
  base64ToBytes,
  bytesToBase64,
  concatBytes,
  hexToBytes,
  utf8ToBytes,
} from '../internal/bytes.js';
import { hmacSha256, timingSafeEqual } from '../internal/crypto.js';
import { hmacSha256Chain, type PreparedHmacKey, prepareHmacKey } from '../internal/hmac-chain.js';
import type { Caveat, Macaroon } from './types.js';

/** The largest encoded macaroon {@link decodeMacaroon} accepts, in bytes (64 KiB). */
export const MAX_MACAROON_BYTES = 65_536;

/** The most caveats {@link decodeMacaroon} accepts in one macaroon. */
export const MAX_MACAROON_CAVEATS = 256;

const VERSION_2 = 0x02;
const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VERIFICATION_ID = 4;
const FIELD_SIGNATURE = 6;
const SIGNATURE_LENGTH = 32;
const KEY_GENERATOR = utf8ToBytes('macaroons-key-generator');
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const HEX_MACAROON = /^02(?:[0-9a-fA-F]{2})*$/;

let preparedKeyGenerator: PreparedHmacKey | undefined | null = null;

/** The key generator prepared for the fast chain, on first use; undefined without WebAssembly. */
function keyGenerator(): PreparedHmacKey | undefined {
  if (preparedKeyGenerator === null) preparedKeyGenerator = prepareHmacKey(KEY_GENERATOR);
  return preparedKeyGenerator;
}

function invalid(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_macaroon', message, cause === undefined ? {} : { cause });
}

interface Reader {
  bytes: Uint8Array;
  pos: number;
}

function readByte(reader: Reader): number {
  const byte = reader.bytes[reader.pos];
  if (byte === undefined) throw invalid('macaroon is truncated');
  reader.pos += 1;
  return byte;
}

/** Reads a shortest-form unsigned varint of at most 3 bytes (enough for any length below 64 KiB). */
function readLength(reader: Reader): number {
  let value = 0;
  for (let shift = 0; shift < 21; shift += 7) {
    const byte = readByte(reader);
    value |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      if (byte === 0 && shift > 0) throw invalid('overlong varint');
      return value;
    }
  }
  throw invalid('varint out of range');
}

function readData(reader: Reader, allowEmpty: boolean): Uint8Array {
  const length = readLength(reader);
  if (length > reader.bytes.length - reader.pos) throw invalid('field extends past the end');
  if (length === 0 && !allowEmpty) throw invalid('empty optional field');
  const data = reader.bytes.subarray(reader.pos, reader.pos + length);
  reader.pos += length;
  return data;
}

function readText(reader: Reader): string {
  try {
    return utf8Decoder.decode(readData(reader, false));
  } catch (cause) {
    if (cause instanceof TollwayError) throw cause;
    throw invalid('location is not UTF-8', cause);
  }
}

function expectField(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw invalid(`expected ${what}, found field type ${actual}`);
}

/**
 * Decodes a V2 binary macaroon. Throws `invalid_macaroon` on anything that is not a canonical V2
 * macaroon of at most {@link MAX_MACAROON_BYTES} bytes and {@link MAX_MACAROON_CAVEATS} caveats;
 * never throws anything else. The result owns copies of the bytes.
 *
 * @example
 * ```ts
 * const m = decodeMacaroon(bytes);
 * console.log(m.location, m.caveats.length);
 * ```
 */
export function decodeMacaroon(bytes: Uint8Array): Macaroon {
  if (bytes.length > MAX_MACAROON_BYTES) throw invalid('macaroon is too large');
  return decodeOwned(bytes.slice());
}

/** {@link decodeMacaroon} of bytes no one else holds: the fields are views into them. */
function decodeOwned(bytes: Uint8Array): Macaroon {
  const reader: Reader = { bytes, pos: 0 };
  if (readByte(reader) !== VERSION_2) throw invalid('not a V2 binary macaroon');

  let field = readByte(reader);
  let location = '';
  if (field === FIELD_LOCATION) {
    location = readText(reader);
    field = readByte(reader);
  }
  expectField(field, FIELD_IDENTIFIER, 'identifier');
  const identifier = readData(reader, true);
  expectField(readByte(reader), FIELD_EOS, 'end of header');

  const caveats: Caveat[] = [];
  for (field = readByte(reader); field !== FIELD_EOS; field = readByte(reader)) {
    if (caveats.length === MAX_MACAROON_CAVEATS) throw invalid('too many caveats');
    let caveatLocation: string | undefined;
    if (field === FIELD_LOCATION) {
      caveatLocation = readText(reader);
      field = readByte(reader);
    }
    expectField(field, FIELD_IDENTIFIER, 'caveat identifier');
    const caveatId = readData(reader, true);
    field = readByte(reader);
    if (field === FIELD_VERIFICATION_ID) {
      const verificationId = readData(reader, false);
      field = readByte(reader);
      caveats.push(
        caveatLocation === undefined
          ? { identifier: caveatId, verificationId }
          : { identifier: caveatId, verificationId, location: caveatLocation },
      );
    } else {
      if (caveatLocation !== undefined) throw invalid('first-party caveat with a location');
      caveats.push({ identifier: caveatId });
    }
    expectField(field, FIELD_EOS, 'end of caveat');
  }

  expectField(readByte(reader), FIELD_SIGNATURE, 'signature');
  if (readLength(reader) !== SIGNATURE_LENGTH) throw invalid('signature is not 32 bytes');
  if (bytes.length - reader.pos !== SIGNATURE_LENGTH) {
    throw invalid(bytes.length - reader.pos < SIGNATURE_LENGTH ? 'truncated' : 'trailing bytes');
  }
  const signature = bytes.subarray(reader.pos);
  return { location, identifier, caveats, signature };
}

function varintLength(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : 3;
}

function packetLength(data: Uint8Array): number {
  return 1 + varintLength(data.length) + data.length;
}

/**
 * Encodes a macaroon in the V2 binary format. Throws `invalid_macaroon` when the macaroon cannot be
 * encoded so that {@link decodeMacaroon} reads it back: a signature that is not 32 bytes, a
 * first-party caveat with a location, an empty verification id, or more than the size limits.
 *
 * @example
 * ```ts
 * const bytes = encodeMacaroon(createMacaroon({ rootKey, identifier }));
 * ```
 */
export function encodeMacaroon(macaroon: Macaroon): Uint8Array {
  if (macaroon.signature.length !== SIGNATURE_LENGTH) throw invalid('signature is not 32 bytes');
  if (macaroon.caveats.length > MAX_MACAROON_CAVEATS) throw invalid('too many caveats');
  const packets: [number, Uint8Array][] = [];
  if (macaroon.location !== '') packets.push([FIELD_LOCATION, utf8ToBytes(macaroon.location)]);
  packets.push([FIELD_IDENTIFIER, macaroon.identifier], [FIELD_EOS, new Uint8Array(0)]);
  for (const caveat of macaroon.caveats) {
    const { location, verificationId } = caveat;
    if (verificationId === undefined) {
      if (location !== undefined) throw invalid('first-party caveat with a location');
    } else if (verificationId.length === 0) {
      throw invalid('empty verification id');
    }
    if (location !== undefined && location !== '') {
      packets.push([FIELD_LOCATION, utf8ToBytes(location)]);
    }
    packets.push([FIELD_IDENTIFIER, caveat.identifier]);
    if (verificationId !== undefined) packets.push([FIELD_VERIFICATION_ID, verificationId]);
    packets.push([FIELD_EOS, new Uint8Array(0)]);
  }
  packets.push([FIELD_EOS, new Uint8Array(0)], [FIELD_SIGNATURE, macaroon.signature]);

  let size = 1;
  for (const [type, data] of packets) size += type === FIELD_EOS ? 1 : packetLength(data);
  if (size > MAX_MACAROON_BYTES) throw invalid('macaroon is too large');
  const out = new Uint8Array(size);
  out[0] = VERSION_2;
  let pos = 1;
  for (const [type, data] of packets) {
    out[pos++] = type;
    if (type === FIELD_EOS) continue;
    for (let value = data.length; ; value >>>= 7) {
      if (value < 0x80) {
        out[pos++] = value;
        break;
      }
      out[pos++] = (value & 0x7f) | 0x80;
    }
    out.set(data, pos);
    pos += data.length;
  }
  return out;
}

/**
 * Parses a macaroon from header text: standard or URL-safe base64, padded or not, or hex (the
 * `Macaroon` / `Grpc-Metadata-Macaroon` header form; recognised by its leading `02`). Throws
 * `invalid_macaroon` (with the encoding error as `cause`) on anything else.
 *
 * @example
 * ```ts
 * const m = parseMacaroon('AgEEbHNhdAJC…');
 * ```
 */
export function parseMacaroon(text: string): Macaroon {
  if (text.length > MAX_MACAROON_BYTES * 2) throw invalid('macaroon is too large');
  let bytes: Uint8Array;
  try {
    bytes = HEX_MACAROON.test(text) ? hexToBytes(text) : base64ToBytes(text);
  } catch (cause) {
    throw invalid('macaroon is neither base64 nor hex', cause);
  }
  if (bytes.length > MAX_MACAROON_BYTES) throw invalid('macaroon is too large');
  return decodeOwned(bytes);
}

/** Formats a macaroon as standard base64 with padding, the form L402 headers carry. */
export function formatMacaroon(macaroon: Macaroon): string {
  return bytesToBase64(encodeMacaroon(macaroon));
}

function chainCaveat(signature: Uint8Array, caveat: Caveat): Uint8Array {
  if (caveat.verificationId === undefined) return hmacSha256(signature, caveat.identifier);
  return hmacSha256(
    signature,
    concatBytes(
      hmacSha256(signature, caveat.verificationId),
      hmacSha256(signature, caveat.identifier),
    ),
  );
}

/**
 * Computes the signature a macaroon with this identifier and these caveats must carry under
 * `rootKey`: `k = HMAC("macaroons-key-generator", rootKey)`, `sig = HMAC(k, identifier)`, then
 * `sig = HMAC(sig, caveat)` per first-party caveat. A third-party caveat chains as in go-macaroon:
 * `sig = HMAC(sig, HMAC(sig, verificationId) || HMAC(sig, identifier))`.
 */
export function computeMacaroonSignature(
  rootKey: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Caveat[],
): Uint8Array {
  const fast = keyGenerator();
  if (fast !== undefined && caveats.every((caveat) => caveat.verificationId === undefined)) {
    // The common case, on the fast chain (see internal/hmac-chain.ts) where WebAssembly runs.
    const messages = [rootKey, identifier];
    for (const caveat of caveats) messages.push(caveat.identifier);
    return hmacSha256Chain(fast, messages);
  }
  let signature = hmacSha256(hmacSha256(KEY_GENERATOR, rootKey), identifier);
  for (const caveat of caveats) signature = chainCaveat(signature, caveat);
  return signature;
}

/** Parameters of {@link createMacaroon}. */
export interface CreateMacaroonParams {
  /** The secret the signature chain starts from (Aperture: 32 random bytes per token). */
  rootKey: Uint8Array;
  /** The macaroon identifier (for L402, see `encodeIdentifier`). */
  identifier: Uint8Array;
  /** Location hint, not signed. Defaults to `lsat`, as Aperture mints. */
  location?: string;
  /** First-party caveats as `condition=value` strings, in order. */
  caveats?: readonly string[];
}

/**
 * Mints a macaroon with first-party caveats.
 *
 * @example
 * ```ts
 * const m = createMacaroon({
 *   rootKey,
 *   identifier: encodeIdentifier({ version: 0, paymentHash, tokenId: createTokenId() }),
 *   caveats: ['services=forecast:0'],
 * });
 * const header = formatMacaroon(m);
 * ```
 */
export function createMacaroon(params: CreateMacaroonParams): Macaroon {
  const identifier = params.identifier.slice();
  const caveats = (params.caveats ?? []).map((text) => ({ identifier: utf8ToBytes(text) }));
  return {
    location: params.location ?? 'lsat',
    identifier,
    caveats,
    signature: computeMacaroonSignature(params.rootKey, identifier, caveats),
  };
}

/**
 * Attenuates a macaroon: returns a new macaroon with one more first-party caveat, its signature
 * chained from the current one (no root key needed). The input is left unchanged.
 *
 * @example
 * ```ts
 * const narrower = addFirstPartyCaveat(m, 'forecast_valid_until=1767225600');
 * ```
 */
export function addFirstPartyCaveat(macaroon: Macaroon, caveat: string): Macaroon {
  const added: Caveat = { identifier: utf8ToBytes(caveat) };
  return {
    location: macaroon.location,
    identifier: macaroon.identifier,
    caveats: [...macaroon.caveats, added],
    signature: chainCaveat(macaroon.signature, added),
  };
}

/**
 * True when the macaroon's signature is the one `rootKey` gives for its identifier and caveats
 * (compared in constant time). Always false for a macaroon with third-party caveats: discharge
 * macaroons are not verified by Tollway, so such a token is never accepted (`verifyL402` reports
 * `third_party_caveat`). Caveat conditions are not checked here.
 */
export function verifyMacaroonSignature(macaroon: Macaroon, rootKey: Uint8Array): boolean {
  if (macaroon.caveats.some((caveat) => caveat.verificationId !== undefined)) return false;
  const expected = computeMacaroonSignature(rootKey, macaroon.identifier, macaroon.caveats);
  return timingSafeEqual(expected, macaroon.signature);
}

/**
 * The first-party caveats of a macaroon as UTF-8 strings, in order (third-party caveats are
 * skipped). Throws `invalid_caveat` when a caveat is not valid UTF-8.
 */
export function firstPartyCaveats(macaroon: Macaroon): string[] {
  const texts: string[] = [];
  for (const caveat of macaroon.caveats) {
    if (caveat.verificationId !== undefined) continue;
    try {
      texts.push(utf8Decoder.decode(caveat.identifier));
    } catch (cause) {
      throw new TollwayError('invalid_caveat', 'caveat is not UTF-8', { cause });
    }
  }
  return texts;
}
