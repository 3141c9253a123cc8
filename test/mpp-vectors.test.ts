// Cross-implementation vectors for the MPP `Payment` scheme, from Aperture
// (github.com/lightninglabs/aperture, mpp/testdata/vectors.json, MIT licence), copied unchanged into
// test/fixtures/mpp-vectors.json. Every section is replayed here.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isTollwayError } from '@tollway/sdk/errors';
import {
  canonicalizeJson,
  createChallengeId,
  decodeBase64Url,
  encodeBase64Url,
  formatPaymentChallenge,
  formatPaymentCredential,
  formatPaymentReceipt,
  type PaymentChallenge,
  type PaymentCredential,
  parsePaymentChallenges,
  parsePaymentCredential,
  parsePaymentReceipt,
  verifyChallengeId,
} from '@tollway/sdk/mpp';
import { describe, expect, it } from 'vitest';
import { encodeJsonBase64Url, parseJson } from '../packages/sdk/src/mpp/json.js';
import {
  formatSessionEvent,
  parseSessionEventData,
  type SessionEvent,
} from '../packages/sdk/src/mpp/session-event.js';

interface Vectors {
  hmacSecretHex: string;
  canonicalization: { name: string; input: string; canonical?: string; error?: boolean }[];
  base64url: {
    name: string;
    encoded: string;
    decodedHex?: string;
    canonical: boolean;
    error?: boolean;
  }[];
  challengeHeaders: {
    name: string;
    params: PaymentChallenge;
    header: string;
    parsed: PaymentChallenge;
  }[];
  challengeLists: {
    name: string;
    header: string;
    challenges?: PaymentChallenge[];
    error?: boolean;
  }[];
  challengeIds: { name: string; params: PaymentChallenge; hmacInput: string }[];
  credentials: { name: string; credentialJson: string; header: string; error?: boolean }[];
  receipts: { name: string; receiptJson: string; header: string }[];
}

const vectors: Vectors = JSON.parse(
  readFileSync(new URL('./fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
);
const secret = new Uint8Array(Buffer.from(vectors.hmacSecretHex, 'hex'));

/** The thrown TollwayError code, 'none' for undefined, or 'ok'. */
function outcome(run: () => unknown): string {
  try {
    return run() === undefined ? 'none' : 'ok';
  } catch (error) {
    if (isTollwayError(error)) return error.code;
    throw error;
  }
}

describe('MPP vectors: canonicalization (RFC 8785)', () => {
  it.each(vectors.canonicalization)('$name', (v) => {
    if (v.error) {
      expect(outcome(() => parseJson(v.input))).toBe('invalid_json');
      return;
    }
    const canonical = canonicalizeJson(parseJson(v.input));
    expect(canonical).toBe(v.canonical);
    // A canonical document is a fixed point.
    expect(canonicalizeJson(parseJson(canonical))).toBe(v.canonical);
  });
});

describe('MPP vectors: base64url', () => {
  it.each(vectors.base64url)('$name', (v) => {
    if (v.error) {
      expect(outcome(() => decodeBase64Url(v.encoded))).toBe('invalid_base64');
      return;
    }
    const decoded = decodeBase64Url(v.encoded);
    expect(Buffer.from(decoded).toString('hex')).toBe(v.decodedHex ?? '');
    if (v.canonical) expect(encodeBase64Url(decoded)).toBe(v.encoded);
    else expect(encodeBase64Url(decoded)).not.toBe(v.encoded);
  });
});

describe('MPP vectors: challengeHeaders', () => {
  it.each(vectors.challengeHeaders)('$name', (v) => {
    expect(formatPaymentChallenge(v.params)).toBe(v.header);
    expect(parsePaymentChallenges(v.header)).toEqual([v.parsed]);
    expect(v.parsed).toEqual(v.params);
  });
});

describe('MPP vectors: challengeLists', () => {
  it.each(vectors.challengeLists)('$name', (v) => {
    if (v.error) {
      expect(outcome(() => parsePaymentChallenges(v.header))).toBe('invalid_challenge');
      return;
    }
    expect(parsePaymentChallenges(v.header)).toEqual(v.challenges);
  });
});

describe('MPP vectors: challengeIds', () => {
  it.each(vectors.challengeIds)('$name', (v) => {
    expect(createChallengeId(secret, v.params)).toBe(v.params.id);
    expect(verifyChallengeId(secret, v.params)).toEqual({ ok: true, value: v.params });
    // The recorded slot string is what the id is an HMAC of.
    const recomputed = createHmac('sha256', secret).update(v.hmacInput).digest('base64url');
    expect(recomputed).toBe(v.params.id);
    const tampered = { ...v.params, request: `${v.params.request}x` };
    expect(verifyChallengeId(secret, tampered).ok).toBe(false);
  });
});

describe('MPP vectors: credentials', () => {
  it.each(vectors.credentials)('$name', (v) => {
    if (v.error) {
      // "Bearer abc123" holds no Payment credential at all: that is `undefined`, which a server
      // answers with a fresh challenge. Every other rejected vector is a malformed credential.
      const expected = v.header.startsWith('Bearer ') ? 'none' : 'invalid_credential';
      expect(outcome(() => parsePaymentCredential(v.header))).toBe(expected);
      return;
    }
    const want: PaymentCredential = JSON.parse(v.credentialJson);
    const parsed = parsePaymentCredential(v.header);
    expect(parsed).toEqual(want);
    // Formatting what was parsed gives back the same bytes (with the scheme's usual spelling).
    const token = v.header.slice(v.header.indexOf(' ') + 1);
    expect(formatPaymentCredential(parsed as PaymentCredential)).toBe(`Payment ${token}`);
    expect(Buffer.from(decodeBase64Url(token)).toString('utf8')).toBe(v.credentialJson);
  });
});

describe('MPP vectors: receipts', () => {
  it.each(vectors.receipts)('$name', (v) => {
    expect(Buffer.from(decodeBase64Url(v.header)).toString('utf8')).toBe(v.receiptJson);
    // Integers beyond 2^53 survive the round trip exactly.
    const exact = parseJson(v.receiptJson, { bigints: true });
    expect(encodeJsonBase64Url(exact)).toBe(v.header);
    if (!v.receiptJson.includes('"status"')) {
      // A session need-top-up event (SSE data), not a receipt.
      expect(outcome(() => parsePaymentReceipt(v.header))).toBe('invalid_receipt');
      const event = parseSessionEventData(v.receiptJson);
      expect(event).toEqual({ ...(exact as object) });
      expect(formatSessionEvent('payment-need-topup', event as SessionEvent)).toBe(
        `event: payment-need-topup\ndata: ${v.receiptJson}\n\n`,
      );
      return;
    }
    const receipt = parsePaymentReceipt(v.header);
    expect(receipt).toEqual({ ...(exact as object) });
    expect(formatPaymentReceipt(receipt)).toBe(v.header);
  });

  it('reads the int64 maximum exactly', () => {
    const largest = vectors.receipts.find((v) => v.name === 'largest refund an int64 can hold');
    expect(parsePaymentReceipt(largest?.header ?? '').refundSats).toBe(9223372036854775807n);
  });
});
