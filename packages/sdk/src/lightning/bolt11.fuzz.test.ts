import { bech32 } from '@scure/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { MAX_MSAT } from '../money.js';
import { decodeInvoice, encodeInvoice } from './bolt11.js';
import type { LightningNetwork } from './types.js';

// Fuzzing decodeInvoice: whatever the input, it returns a well-formed invoice or throws a
// TollwayError with an invoice code; never another exception, never a long stall.

const KEY = 'e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734';
const HASH = '0001020304050607080900010203040506070809000102030405060708090102';
const NETWORKS: LightningNetwork[] = ['mainnet', 'testnet', 'signet', 'regtest'];
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const ALLOWED = new Set(['invalid_invoice', 'unsupported_network', 'wrong_network']);

const seeds = [
  // BOLT11 spec examples: route hints, pico amount, features, upper case.
  'lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzqj9n4evl6mr5aj9f58zp6fyjzup6ywn3x6sk8akg5v4tgn2q8g4fhx05wf6juaxu9760yp46454gpg5mtzgerlzezqcqvjnhjh8z3g2qqdhhwkj',
  'lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j',
  'LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYETPDEESSP5ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQPQSQ67GYE39HFG3ZD8RGC80K32TVY9XK2XUNWM5LZEXNVPX6FD77EN8QAQ424DXGT56CAG2DPT359K3SSYHETKTKPQH24JQNJYW6UQD08SGPTQ44QU',
  // The project's regtest invoice from a real Aperture.
  'lnbcrt100n1p3qqkygpp5xzj85m5mpvatnapgpuyfxtxhypa5gr6sskqd8664v04550vqp8lsdq8f3f5z4qcqzpgsp5tpzvsq5pckqgln3ltpy3e9cf6tf2aj82ffa2tted77ltweuaweks9qyyssq0w5da3k40wtdukac7hp5s58hsxf8k8f52c5qneezu4xg3xh87xrnkl5jwtw098d2gjywx20nmkxl2y4vq9fr89kg5kzcwupv9xpdaggp4fc4ms',
  // Ours, on every network, with and without amounts.
  ...NETWORKS.map((network, i) =>
    encodeInvoice({
      network,
      paymentHash: HASH,
      privateKey: KEY,
      timestamp: 1_700_000_000,
      ...(i % 2 === 0 ? { amountMsat: 12_345n + BigInt(i) } : {}),
      ...(i < 2 ? { paymentSecret: HASH, description: 'fuzz ☕', expirySeconds: 600 } : {}),
    }),
  ),
];

let inputs = 0;
let slowestMs = 0;
let decodedOk = 0;

/** Decodes once; fails the test on anything but a valid result or an allowed TollwayError. */
function probe(input: string, network?: LightningNetwork): void {
  inputs++;
  const started = performance.now();
  try {
    const decoded = decodeInvoice(input, network === undefined ? {} : { network });
    decodedOk++;
    expect(decoded.paymentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(decoded.payeePubkey).toMatch(/^0[23][0-9a-f]{64}$/);
    expect(input.trim().toLowerCase().endsWith(decoded.paymentRequest)).toBe(true);
    if (decoded.amountMsat !== undefined) {
      expect(decoded.amountMsat > 0n && decoded.amountMsat <= MAX_MSAT).toBe(true);
    }
  } catch (error) {
    if (!isTollwayError(error) || !ALLOWED.has(error.code)) throw error;
  } finally {
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
}

type Mutation = (s: string, at: number, text: string) => string;
const mutations: Mutation[] = [
  (s, at, text) => s.slice(0, at) + (text[0] ?? 'q') + s.slice(at + 1), // replace one char
  (s, at) => s.slice(0, at), // cut the tail
  (s, at) => s.slice(at), // cut the head
  (s, at, text) => s.slice(0, at) + text + s.slice(at), // insert
  (s, at) => s.slice(0, at) + s.slice(at + 1), // delete one char
  (s, at) => s.slice(0, at) + s.slice(at + 1, at + 2) + s.slice(at, at + 1) + s.slice(at + 2), // swap
  (s, at) => s.slice(0, at) + (s[at] ?? '').toUpperCase() + s.slice(at + 1), // case of one char
  (s, at) => s.slice(0, at) + s.slice(at).toUpperCase(), // case of the tail (at 0: all of it)
  (s, at, text) => s.replace(/^(ln[a-z]+?)\d*[munp]?1/i, `$1${at}${text.slice(0, 1)}1`), // amount
  (s, at) => s + s.slice(0, at), // duplicate a slice
  (s, at, text) => `${text}${s.slice(0, at)}`, // random prefix (e.g. "lightning:")
];

describe('decodeInvoice fuzz', () => {
  it('survives ≥100k random and mutated inputs', () => {
    const started = performance.now();
    const seed = fc.constantFrom(...seeds);
    const text = fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.string({ unit: 'binary', maxLength: 3 }),
      fc.constantFrom('lightning:', 'LIGHTNING:', ' ', '1', '0', 'p', 'm', 'x', '\u0000'),
      fc.string({ unit: fc.constantFrom(...CHARSET), maxLength: 6 }),
    );
    const mutated = fc
      .tuple(
        seed,
        fc.array(fc.tuple(fc.nat(mutations.length - 1), fc.nat(900), text), {
          minLength: 1,
          maxLength: 3,
        }),
      )
      .map(([s, steps]) =>
        steps.reduce((acc, [m, at, t]) => mutations[m]?.(acc, at % (acc.length || 1), t) ?? acc, s),
      );

    // 1. Mutated valid invoices (almost all fail the checksum, cheaply).
    fc.assert(
      fc.property(mutated, fc.option(fc.constantFrom(...NETWORKS)), (s, n) =>
        probe(s, n ?? undefined),
      ),
      {
        numRuns: 65_000,
      },
    );

    // 2. Random text: anything, "ln"-prefixed, bech32-shaped.
    const randomText = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.string({ maxLength: 300 }).map((s) => `ln${s}`),
      fc
        .string({ unit: fc.constantFrom(...CHARSET), minLength: 100, maxLength: 700 })
        .map((s) => `lnbc1${s}`),
    );
    fc.assert(
      fc.property(randomText, (s) => probe(s)),
      { numRuns: 33_000 },
    );

    // 3. Checksum-valid inputs: random words under real prefixes, and valid invoices with words
    //    changed and the checksum recomputed. These reach the field parser and the signature.
    const prefix = fc.constantFrom(
      'lnbc',
      'lntb',
      'lntbs',
      'lnbcrt',
      'lnsb',
      'lnbc10n',
      'lnbc2500u',
      'lnbc10p',
      'lnbc1p',
      'lnbc0',
      'lnbc99999999999m',
    );
    const randomWords = fc
      .tuple(prefix, fc.array(fc.nat(31), { maxLength: 400 }))
      .map(([p, w]) => bech32.encode(p, w, false));
    const rewritten = fc
      .tuple(
        seed,
        fc.array(fc.tuple(fc.nat(1000), fc.nat(31)), { minLength: 1, maxLength: 3 }),
        fc.nat(120),
      )
      .map(([s, edits, cut]) => {
        const { prefix: p, words } = bech32.decode(s.toLowerCase() as `${string}1${string}`, false);
        for (const [at, word] of edits) words[at % words.length] = word;
        return bech32.encode(p, cut < 20 ? words.slice(cut) : words, false);
      });
    fc.assert(
      fc.property(fc.oneof(randomWords, rewritten), (s) => probe(s)),
      { numRuns: 4_000 },
    );

    const seconds = (performance.now() - started) / 1000;
    console.log(
      `bolt11 fuzz: ${inputs} inputs (${decodedOk} decoded) in ${seconds.toFixed(1)} s, slowest ${slowestMs.toFixed(1)} ms`,
    );
    expect(inputs).toBeGreaterThanOrEqual(100_000);
    // Some inputs must get through the whole decoder (signature included), or the fuzz is shallow.
    expect(decodedOk).toBeGreaterThan(100);
    expect(slowestMs).toBeLessThan(1000);
  }, 120_000);
});
