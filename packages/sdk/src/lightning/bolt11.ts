/**
 * BOLT11 invoices: decode (with the signature checked), encode and sign, and payment preimages.
 *
 * Built on `@scure/base` (bech32) and `secp256k1.ts` (libsecp256k1's native addon when it loads,
 * else `@noble/curves`), not on the `bolt11` or `light-bolt11-decoder` packages: `bolt11` needs
 * Node's Buffer, requires the native addon and bitcoinjs-lib, and knows no signet prefix;
 * `light-bolt11-decoder` pins an old `@scure/base`, checks no signature and cannot encode. What is
 * left to write by hand is the field layout of the spec, kept strict: exact msat amounts, the
 * spec's rules for skipping fields of the wrong length, and every failure a `TollwayError`.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import { TollwayError } from '../errors.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../internal/bytes.js';
import { randomBytes, sha256 } from '../internal/crypto.js';
import { MAX_MSAT } from '../money.js';
import { ecdsa } from './secp256k1.js';
import type { LightningNetwork } from './types.js';

/** A decoded BOLT11 invoice whose signature has been checked. */
export interface DecodedInvoice {
  /** The invoice in lower case, without a `lightning:` prefix. */
  paymentRequest: string;
  network: LightningNetwork;
  /** Exact amount in millisatoshis; absent for an amountless invoice. */
  amountMsat?: bigint;
  /** 32-byte payment hash, lower-case hex. */
  paymentHash: string;
  /** 32-byte payment secret (`s` field), lower-case hex. */
  paymentSecret?: string;
  /** The `d` field. */
  description?: string;
  /** The `h` field: SHA-256 of a description kept elsewhere, lower-case hex. */
  descriptionHash?: string;
  /** 33-byte compressed public key of the payee node, lower-case hex. */
  payeePubkey: string;
  /** Creation time, unix seconds. */
  timestamp: number;
  /** The `x` field, or 3600 when absent. */
  expirySeconds: number;
  /** `timestamp + expirySeconds`, unix milliseconds. */
  expiresAt: number;
  /** The `c` field (payers use 18 when absent). */
  minFinalCltvExpiry?: number;
  /** Numbers of the feature bits set in the `9` field, ascending. Payers judge them, not the decoder. */
  features?: number[];
}

/** Options of {@link decodeInvoice}. */
export interface DecodeInvoiceOptions {
  /** When given, an invoice for any other network fails with `wrong_network`. */
  network?: LightningNetwork;
}

/** Parameters of {@link encodeInvoice}. */
export interface EncodeInvoiceParams {
  network: LightningNetwork;
  /** Omit for an amountless invoice. Must be positive and at most 21 million BTC. */
  amountMsat?: bigint;
  /** 32-byte hex. */
  paymentHash: string;
  /** 32-byte hex. When given, the invoice also sets the features var_onion_optin and payment_secret. */
  paymentSecret?: string;
  /** At most 639 UTF-8 bytes. Give this or `descriptionHash`, not both; neither writes an empty `d`. */
  description?: string;
  /** 32-byte hex SHA-256 of the description. */
  descriptionHash?: string;
  /** Omit for the spec's default of 3600. */
  expirySeconds?: number;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  /** Written to the `c` field; defaults to 18, the value payers assume when it is absent. */
  minFinalCltvExpiry?: number;
  /** The payee node's 32-byte secp256k1 secret key (hex or bytes). */
  privateKey: string | Uint8Array;
}

/** Longest invoice accepted (the limit lnd applies; a QR code holds no more). */
const MAX_INVOICE_LENGTH = 7089;
const DEFAULT_EXPIRY_SECONDS = 3600;
const DEFAULT_MIN_FINAL_CLTV_EXPIRY = 18;
const TIMESTAMP_WORDS = 7;
const SIGNATURE_WORDS = 104;
const MAX_DESCRIPTION_BYTES = 639;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const CURRENCY_PREFIXES: Record<LightningNetwork, string> = {
  mainnet: 'bc',
  testnet: 'tb',
  signet: 'tbs',
  regtest: 'bcrt',
};

/** Millisatoshis per unit of each amount multiplier, times ten (so that `p` stays an integer). */
const TENTHS_OF_MSAT_PER_UNIT: Record<string, bigint> = {
  '': 1_000_000_000_000n,
  m: 1_000_000_000n,
  u: 1_000_000n,
  n: 1_000n,
  p: 1n,
};

// Field types, by the value of their 5-bit word.
const FIELD = {
  paymentHash: 1,
  expiry: 6,
  description: 13,
  paymentSecret: 16,
  payee: 19,
  descriptionHash: 23,
  minFinalCltvExpiry: 24,
  features: 5,
} as const;

const FEATURE_VAR_ONION_OPTIN = 8;
const FEATURE_PAYMENT_SECRET = 14;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_invoice', message, cause === undefined ? {} : { cause });
}

/**
 * Decodes a BOLT11 invoice and checks its signature: the payee key is recovered from it, or, when
 * the invoice names its payee (`n` field), the signature is verified against that key.
 *
 * Accepts upper or lower case (not mixed) and a `lightning:` prefix. Throws a `TollwayError`:
 * `invalid_invoice` for anything malformed or badly signed, `unsupported_network` for a currency
 * prefix other than `lnbc`, `lntb`, `lntbs` and `lnbcrt`, `wrong_network` when `options.network`
 * is given and differs. Cheap checks (length, bech32 checksum, layout) run before the signature.
 *
 * @example
 * ```ts
 * const invoice = decodeInvoice(paymentRequest, { network: 'regtest' });
 * if (isInvoiceExpired(invoice)) throw new Error('expired');
 * console.log(invoice.amountMsat, invoice.paymentHash);
 * ```
 */
export function decodeInvoice(
  paymentRequest: string,
  options: DecodeInvoiceOptions = {},
): DecodedInvoice {
  if (typeof paymentRequest !== 'string') throw invalid('an invoice must be a string');
  let text = paymentRequest.trim();
  if (text.length > MAX_INVOICE_LENGTH + 'lightning:'.length) throw invalid('invoice is too long');
  if (text.slice(0, 10).toLowerCase() === 'lightning:') text = text.slice(10);
  if (text.slice(0, 2).toLowerCase() !== 'ln') throw invalid('an invoice starts with "ln"');

  let prefix: string;
  let words: number[];
  try {
    ({ prefix, words } = bech32.decode(text, MAX_INVOICE_LENGTH));
  } catch (error) {
    throw invalid('invoice is not valid bech32', error);
  }

  const { network, amountMsat } = parseHumanReadablePart(prefix);
  if (options.network !== undefined && options.network !== network) {
    throw new TollwayError(
      'wrong_network',
      `invoice is for ${network}, expected ${options.network}`,
      { details: { network, expected: options.network } },
    );
  }
  if (words.length < TIMESTAMP_WORDS + SIGNATURE_WORDS) throw invalid('invoice is too short');

  const dataEnd = words.length - SIGNATURE_WORDS;
  const timestamp = readUint(words.slice(0, TIMESTAMP_WORDS));
  const fields = readFields(words.slice(TIMESTAMP_WORDS, dataEnd));
  if (fields.paymentHash === undefined) throw invalid('invoice has no payment hash');
  const expirySeconds = fields.expirySeconds ?? DEFAULT_EXPIRY_SECONDS;
  const expiresAt = (timestamp + expirySeconds) * 1000;
  if (!Number.isSafeInteger(expiresAt)) throw invalid('invoice expiry is out of range');

  const signature = wordsToBytes(words.slice(dataEnd), false);
  const message = signedHash(prefix, words.slice(0, dataEnd));
  const payeePubkey = checkSignature(signature, message, fields.payee);

  const decoded: DecodedInvoice = {
    paymentRequest: text.toLowerCase(),
    network,
    paymentHash: fields.paymentHash,
    payeePubkey,
    timestamp,
    expirySeconds,
    expiresAt,
  };
  if (amountMsat !== undefined) decoded.amountMsat = amountMsat;
  if (fields.paymentSecret !== undefined) decoded.paymentSecret = fields.paymentSecret;
  if (fields.description !== undefined) decoded.description = fields.description;
  if (fields.descriptionHash !== undefined) decoded.descriptionHash = fields.descriptionHash;
  if (fields.minFinalCltvExpiry !== undefined) {
    decoded.minFinalCltvExpiry = fields.minFinalCltvExpiry;
  }
  if (fields.features !== undefined) decoded.features = fields.features;
  return decoded;
}

/** True once `nowMs` (default: now) has reached the invoice's expiry. */
export function isInvoiceExpired(
  invoice: Pick<DecodedInvoice, 'expiresAt'>,
  nowMs: number = Date.now(),
): boolean {
  return nowMs >= invoice.expiresAt;
}

/**
 * Encodes and signs a BOLT11 invoice. The amount is written in the largest exact multiplier
 * (`lnbcrt100n`, not `lnbcrt10000p`). Fields: `p`, `s`, `d` or `h`, `x`, `c`, `9`.
 *
 * Throws `invalid_amount` for an amount out of range, `invalid_hex` for a malformed hash, secret or
 * key, and `invalid_invoice` for another field out of range.
 *
 * @example
 * ```ts
 * const { preimage, paymentHash } = createPreimage();
 * const paymentRequest = encodeInvoice({
 *   network: 'regtest', amountMsat: 10_000n, paymentHash, description: 'forecast', privateKey,
 * });
 * ```
 */
export function encodeInvoice(params: EncodeInvoiceParams): string {
  const prefix = `ln${CURRENCY_PREFIXES[params.network]}${formatHrpAmount(params.amountMsat)}`;
  const timestamp = params.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp >= 2 ** 35) {
    throw invalid('timestamp must be an integer in [0, 2^35)');
  }
  const privateKey =
    typeof params.privateKey === 'string' ? hexToBytes(params.privateKey, 32) : params.privateKey;
  if (!secp256k1.utils.isValidSecretKey(privateKey)) {
    throw invalid('privateKey is not a valid secp256k1 secret key');
  }
  if (params.description !== undefined && params.descriptionHash !== undefined) {
    throw invalid('give description or descriptionHash, not both');
  }

  const words = uintToWords(timestamp, TIMESTAMP_WORDS);
  // Every field stays within the 1023 words its 10-bit length allows (descriptions are capped).
  const push = (type: number, data: number[]): void => {
    words.push(type, data.length >> 5, data.length & 31, ...data);
  };
  push(FIELD.paymentHash, bech32.toWords(hexToBytes(params.paymentHash, 32)));
  if (params.paymentSecret !== undefined) {
    push(FIELD.paymentSecret, bech32.toWords(hexToBytes(params.paymentSecret, 32)));
  }
  if (params.descriptionHash !== undefined) {
    push(FIELD.descriptionHash, bech32.toWords(hexToBytes(params.descriptionHash, 32)));
  } else {
    const description = utf8ToBytes(params.description ?? '');
    if (description.length > MAX_DESCRIPTION_BYTES) {
      throw invalid(`description is longer than ${MAX_DESCRIPTION_BYTES} UTF-8 bytes`);
    }
    push(FIELD.description, bech32.toWords(description));
  }
  if (params.expirySeconds !== undefined) {
    const expiry = params.expirySeconds;
    if (!Number.isSafeInteger(expiry) || expiry < 0 || (timestamp + expiry) * 1000 > MAX_SAFE) {
      throw invalid('expirySeconds is out of range');
    }
    push(FIELD.expiry, uintToWords(expiry));
  }
  const cltv = params.minFinalCltvExpiry ?? DEFAULT_MIN_FINAL_CLTV_EXPIRY;
  if (!Number.isSafeInteger(cltv) || cltv < 0) throw invalid('minFinalCltvExpiry is out of range');
  push(FIELD.minFinalCltvExpiry, uintToWords(cltv));
  if (params.paymentSecret !== undefined) {
    push(FIELD.features, featureWords([FEATURE_VAR_ONION_OPTIN, FEATURE_PAYMENT_SECRET]));
  }

  const signature = ecdsa().signRecoverable(signedHash(prefix, words), privateKey);
  words.push(...bech32.toWords(signature));
  // The field limits above keep every invoice far below MAX_INVOICE_LENGTH.
  return bech32.encode(prefix, words, false);
}

/**
 * A preimage (32 fresh random bytes unless given) and its SHA-256 payment hash, both lower-case
 * hex.
 *
 * @example
 * ```ts
 * const { preimage, paymentHash } = createPreimage();
 * ```
 */
export function createPreimage(preimage: Uint8Array = randomBytes(32)): {
  preimage: string;
  paymentHash: string;
} {
  return { preimage: bytesToHex(preimage), paymentHash: bytesToHex(sha256(preimage)) };
}

function parseHumanReadablePart(prefix: string): {
  network: LightningNetwork;
  amountMsat: bigint | undefined;
} {
  const match = /^ln([a-z]+)(?:(\d+)([a-z]?))?$/.exec(prefix);
  if (match === null) throw invalid(`malformed invoice prefix "${prefix}"`);
  const [, currency = '', digits, multiplier = ''] = match;
  const network = networkOf(currency);
  if (digits === undefined) return { network, amountMsat: undefined };
  const tenthsPerUnit = TENTHS_OF_MSAT_PER_UNIT[multiplier];
  if (tenthsPerUnit === undefined) throw invalid(`unknown amount multiplier "${multiplier}"`);
  if (digits.startsWith('0') || digits.length > 24) throw invalid('malformed invoice amount');
  const tenths = BigInt(digits) * tenthsPerUnit;
  if (tenths % 10n !== 0n) throw invalid('invoice amount is not a whole number of millisatoshis');
  const amountMsat = tenths / 10n;
  if (amountMsat > MAX_MSAT) throw invalid('invoice amount is larger than 21 million BTC');
  return { network, amountMsat };
}

function networkOf(currency: string): LightningNetwork {
  for (const [network, code] of Object.entries(CURRENCY_PREFIXES)) {
    if (code === currency) return network as LightningNetwork;
  }
  throw new TollwayError('unsupported_network', `unknown invoice currency prefix "ln${currency}"`, {
    details: { currency },
  });
}

function formatHrpAmount(amountMsat: bigint | undefined): string {
  if (amountMsat === undefined) return '';
  if (typeof amountMsat !== 'bigint' || amountMsat <= 0n || amountMsat > MAX_MSAT) {
    throw new TollwayError('invalid_amount', 'amountMsat must be a bigint in (0, 21e6 BTC]');
  }
  const tenths = amountMsat * 10n;
  for (const multiplier of ['', 'm', 'u', 'n']) {
    const unit = TENTHS_OF_MSAT_PER_UNIT[multiplier] ?? 1n;
    if (tenths % unit === 0n) return `${tenths / unit}${multiplier}`;
  }
  return `${tenths}p`;
}

interface Fields {
  paymentHash?: string;
  paymentSecret?: string;
  description?: string;
  descriptionHash?: string;
  payee?: Uint8Array;
  expirySeconds?: number;
  minFinalCltvExpiry?: number;
  features?: number[];
}

/**
 * Reads the tagged fields. As the spec asks, unknown fields and `p`, `h`, `s`, `n` fields of the
 * wrong length are skipped, and the first of several fields of one type wins.
 */
function readFields(words: number[]): Fields {
  const fields: Fields = {};
  let at = 0;
  while (at < words.length) {
    if (at + 3 > words.length) throw invalid('truncated field header');
    const type = words[at] ?? 0;
    const length = ((words[at + 1] ?? 0) << 5) | (words[at + 2] ?? 0);
    const data = words.slice(at + 3, at + 3 + length);
    if (data.length !== length) throw invalid('a field runs past the end of the invoice');
    at += 3 + length;
    switch (type) {
      case FIELD.paymentHash:
        if (length === 52) fields.paymentHash ??= bytesToHex(wordsToBytes(data, false));
        break;
      case FIELD.paymentSecret:
        if (length === 52) fields.paymentSecret ??= bytesToHex(wordsToBytes(data, false));
        break;
      case FIELD.descriptionHash:
        if (length === 52) fields.descriptionHash ??= bytesToHex(wordsToBytes(data, false));
        break;
      case FIELD.payee:
        if (length === 53) fields.payee ??= wordsToBytes(data, false);
        break;
      case FIELD.description:
        fields.description ??= readUtf8(wordsToBytes(data, false));
        break;
      case FIELD.expiry:
        fields.expirySeconds ??= readUint(data);
        break;
      case FIELD.minFinalCltvExpiry:
        fields.minFinalCltvExpiry ??= readUint(data);
        break;
      case FIELD.features:
        fields.features ??= readFeatures(data);
        break;
    }
  }
  return fields;
}

function readUtf8(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (error) {
    throw invalid('description is not valid UTF-8', error);
  }
}

/** A big-endian unsigned integer of 5-bit words; fails beyond Number.MAX_SAFE_INTEGER. */
function readUint(words: number[]): number {
  let value = 0;
  for (const word of words) {
    value = value * 32 + word;
    if (value > MAX_SAFE) throw invalid('an integer field is out of range');
  }
  return value;
}

function uintToWords(value: number, minWords = 1): number[] {
  const words: number[] = [];
  for (let rest = value; rest > 0 || words.length < minWords; rest = Math.floor(rest / 32)) {
    words.unshift(rest % 32);
  }
  return words;
}

function readFeatures(words: number[]): number[] {
  const bits: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[words.length - 1 - i] ?? 0;
    for (let bit = 0; bit < 5; bit++) if ((word >> bit) & 1) bits.push(i * 5 + bit);
  }
  return bits;
}

function featureWords(bits: number[]): number[] {
  const words = new Array<number>(Math.floor(Math.max(...bits) / 5) + 1).fill(0);
  for (const bit of bits) {
    const index = words.length - 1 - Math.floor(bit / 5);
    words[index] = (words[index] ?? 0) | (1 << (bit % 5));
  }
  return words;
}

/**
 * 5-bit words to bytes. `pad` appends zero bits to complete the last byte (signing); otherwise
 * leftover bits (field padding) are dropped.
 */
function wordsToBytes(words: number[], pad: boolean): Uint8Array {
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const word of words) {
    acc = ((acc << 5) | word) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  if (pad && bits > 0) bytes.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(bytes);
}

/** SHA-256 of the human-readable part (UTF-8) and the data words, zero-padded to a byte. */
function signedHash(prefix: string, dataWords: number[]): Uint8Array {
  const hrp = utf8ToBytes(prefix);
  const data = wordsToBytes(dataWords, true);
  const message = new Uint8Array(hrp.length + data.length);
  message.set(hrp, 0);
  message.set(data, hrp.length);
  return sha256(message);
}

/** Returns the payee key (hex): `payee` once the signature verifies against it, else recovered. */
function checkSignature(signature: Uint8Array, hash: Uint8Array, payee?: Uint8Array): string {
  const recovery = signature[64] ?? 0;
  if (recovery > 3) throw invalid('signature recovery id must be 0 to 3');
  const compact = signature.subarray(0, 64);
  try {
    if (payee !== undefined) {
      if (!ecdsa().verify(compact, hash, payee)) {
        throw invalid('signature does not match the payee key (n field)');
      }
      return bytesToHex(payee);
    }
    return bytesToHex(ecdsa().recoverPublicKey(compact, recovery, hash));
  } catch (error) {
    if (error instanceof TollwayError) throw error;
    throw invalid('invoice signature is not valid', error);
  }
}
