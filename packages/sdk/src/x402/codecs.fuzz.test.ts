import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createRandom, fuzz, mutate, randomText } from '../../test/fuzz.js';
import {
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_REQUIRED_V1_BODY,
  PAYMENT_SIGNATURE_JSON,
} from '../../test/x402-vectors.js';
import { parseExactEvmPayload } from './exact-evm.js';
import { formatFacilitatorRequest, parseFacilitatorRequest } from './facilitator-wire.js';
import { formatPaymentRequiredHeader, parsePaymentRequiredHeader } from './payment-required.js';
import { formatPaymentResponseHeader, parsePaymentResponseHeader } from './payment-response.js';
import { formatPaymentSignatureHeader, parsePaymentSignatureHeader } from './payment-signature.js';
import {
  formatPaymentRequiredV1Body,
  formatXPaymentHeader,
  formatXPaymentResponseHeader,
  parsePaymentRequiredV1Body,
  parseXPaymentHeader,
  parseXPaymentResponseHeader,
} from './v1.js';
import { fromJson } from './wire.js';

const COUNT = 100_000;

/** Standard base64 of the UTF-8 of any string (unlike btoa, which takes Latin-1 only). */
const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

const signatureJson = JSON.stringify(PAYMENT_SIGNATURE_JSON);
const requiredJson = atob(PAYMENT_REQUIRED_HEADER);
const responseJson = JSON.stringify({
  success: true,
  transaction: '0x428878ee74fc36e1e0671f8aef64a83e03b0740ae7e62398cf6792aeb52b1731',
  network: 'eip155:31337',
  payer: '0xe431cA76aFFaEe665084E981331f6baada998331',
  amount: '10000',
});
const xPaymentJson = JSON.stringify({
  ...PAYMENT_SIGNATURE_JSON,
  x402Version: 1,
  scheme: 'exact',
  network: 'base',
});
const xResponseJson = JSON.stringify({
  ...JSON.parse(responseJson),
  network: 'base-sepolia',
  amount: undefined,
});
const requestJson = JSON.stringify({
  x402Version: 2,
  paymentPayload: PAYMENT_SIGNATURE_JSON,
  paymentRequirements: PAYMENT_SIGNATURE_JSON.accepted,
});

/**
 * Runs `parse` on COUNT inputs: a fifth random text, two fifths mutations of the seeds as sent
 * (base64 or JSON text), two fifths base64 of mutated JSON (so that most reach the schema). Each
 * input that parses must format back to a value that parses to the same thing.
 */
function fuzzCodec<T>(
  seed: number,
  jsonSeeds: readonly string[],
  wire: (json: string) => string,
  parse: (input: string) => T,
  format: (value: T) => string,
): number {
  const random = createRandom(seed);
  const wireSeeds = jsonSeeds.map(wire);
  const check = (input: string) => {
    const value = parse(input);
    if (!isDeepStrictEqual(parse(format(value)), value)) {
      expect.fail(`no stable round trip for ${JSON.stringify(input)}`);
    }
  };
  let parsed = fuzz(COUNT / 5, () => randomText(random, 80), check);
  parsed += fuzz((COUNT * 2) / 5, () => mutate(random, wireSeeds), check);
  parsed += fuzz((COUNT * 2) / 5, () => wire(mutate(random, jsonSeeds)), check);
  return parsed;
}

// Each parser takes 100k inputs; on a busy 2-core machine that is several seconds per parser.
const TIMEOUT_MS = 120_000;
const identity = (json: string) => json;

describe('x402 codecs fuzz: only typed errors, and what parses formats back to the same value', () => {
  it(`PAYMENT-REQUIRED: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x402a,
      [requiredJson],
      base64,
      parsePaymentRequiredHeader,
      formatPaymentRequiredHeader,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`PAYMENT-SIGNATURE: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x402b,
      [signatureJson],
      base64,
      parsePaymentSignatureHeader,
      formatPaymentSignatureHeader,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`PAYMENT-RESPONSE: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x402c,
      [responseJson],
      base64,
      parsePaymentResponseHeader,
      formatPaymentResponseHeader,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`x402 v1 402 body: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x4021,
      [PAYMENT_REQUIRED_V1_BODY],
      identity,
      parsePaymentRequiredV1Body,
      formatPaymentRequiredV1Body,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`X-PAYMENT: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x4022,
      [xPaymentJson],
      base64,
      parseXPaymentHeader,
      formatXPaymentHeader,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`X-PAYMENT-RESPONSE: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x4023,
      [xResponseJson],
      base64,
      parseXPaymentResponseHeader,
      formatXPaymentResponseHeader,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`facilitator requests: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const parsed = fuzzCodec(
      0x4024,
      [requestJson],
      identity,
      parseFacilitatorRequest,
      formatFacilitatorRequest,
    );
    expect(parsed).toBeGreaterThan(COUNT / 100);
  });

  it(`exact EVM payloads: ${COUNT} inputs`, { timeout: TIMEOUT_MS }, () => {
    const payloadJson = JSON.stringify(PAYMENT_SIGNATURE_JSON.payload);
    const parsePayload = (text: string) =>
      parseExactEvmPayload(fromJson(text, 'payload') as Record<string, unknown>);
    const random = createRandom(0x4025);
    const next = () => (random() < 0.2 ? randomText(random, 60) : mutate(random, [payloadJson]));
    expect(fuzz(COUNT, next, parsePayload)).toBeGreaterThan(COUNT / 100);
  });
});
