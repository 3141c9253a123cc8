import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import bolt11 from 'bolt11';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../errors.js';
import { MAX_MSAT } from '../money.js';
import {
  createPreimage,
  type DecodedInvoice,
  decodeInvoice,
  encodeInvoice,
  isInvoiceExpired,
} from './bolt11.js';
import type { LightningNetwork } from './types.js';

// The key, payee and payment hash of the BOLT11 spec examples.
const SPEC_KEY = 'e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734';
const SPEC_PAYEE = '03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad';
const SPEC_HASH = '0001020304050607080900010203040506070809000102030405060708090102';
const SPEC_TIME = 1496314658;

const sha256Hex = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');
const hexBytes = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

function expectCode(run: () => unknown, code: TollwayErrorCode): void {
  try {
    run();
  } catch (error) {
    expect(isTollwayError(error) ? error.code : error).toBe(code);
    return;
  }
  throw new Error(`expected a TollwayError ${code}, got no error`);
}

// Independent writer for hand-built invoices (bit strings, not the module's helpers).
function wordsToPaddedBytes(words: number[]): Uint8Array {
  const bits = words.map((w) => w.toString(2).padStart(5, '0')).join('');
  const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  return Uint8Array.from((padded.match(/.{8}/g) ?? []).map((byte) => Number.parseInt(byte, 2)));
}
const field = (type: number, data: number[]): number[] => [
  type,
  data.length >> 5,
  data.length & 31,
  ...data,
];
const timestampWords = (t: number): number[] =>
  Array.from({ length: 7 }, (_, i) => Math.floor(t / 32 ** (6 - i)) % 32);

function signRaw(prefix: string, dataWords: number[], key = SPEC_KEY, recoveryOverride?: number) {
  const message = new Uint8Array([
    ...Buffer.from(prefix, 'utf8'),
    ...wordsToPaddedBytes(dataWords),
  ]);
  const hash = hexBytes(sha256Hex(message));
  const sig = secp256k1.sign(hash, hexBytes(key), { prehash: false, format: 'recovered' });
  const trailer = new Uint8Array([...sig.subarray(1), recoveryOverride ?? sig[0] ?? 0]);
  return bech32.encode(prefix, [...dataWords, ...bech32.toWords(trailer)], false);
}
const hashField = field(1, bech32.toWords(hexBytes(SPEC_HASH)));

describe('decodeInvoice: BOLT11 spec examples', () => {
  const base = {
    network: 'mainnet' as const,
    paymentHash: SPEC_HASH,
    payeePubkey: SPEC_PAYEE,
    timestamp: SPEC_TIME,
  };
  const chocolate =
    'One piece of chocolate cake, one icecream cone, one pickle, one slice of swiss cheese, one slice of salami, one lollypop, one piece of cherry pie, one sausage, one cupcake, and one slice of watermelon';
  const hashed = { ...base, amountMsat: 2_000_000_000n, descriptionHash: sha256Hex(chocolate) };
  const cases: Array<[string, string, Partial<DecodedInvoice>]> = [
    [
      'donation, no amount',
      'lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq8rkx3yf5tcsyz3d73gafnh3cax9rn449d9p5uxz9ezhhypd0elx87sjle52x86fux2ypatgddc6k63n7erqz25le42c4u4ecky03ylcqca784w',
      { ...base, description: 'Please consider supporting this project', expirySeconds: 3600 },
    ],
    [
      '$3 coffee, one minute',
      'lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspfj9srp',
      {
        ...base,
        amountMsat: 250_000_000n,
        description: '1 cup coffee',
        expirySeconds: 60,
        expiresAt: (SPEC_TIME + 60) * 1000,
      },
    ],
    [
      'UTF-8 description',
      'lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny',
      { ...base, amountMsat: 250_000_000n, description: 'ナンセンス 1杯', expirySeconds: 60 },
    ],
    [
      'hashed description',
      'lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqscc6gd6ql3jrc5yzme8v4ntcewwz5cnw92tz0pc8qcuufvq7khhr8wpald05e92xw006sq94mg8v2ndf4sefvf9sygkshp5zfem29trqq2yxxz7',
      hashed,
    ],
    [
      'testnet with a P2PKH fallback',
      'lntb20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un98kmzzhznpurw9sgl2v0nklu2g4d0keph5t7tj9tcqd8rexnd07ux4uv2cjvcqwaxgj7v4uwn5wmypjd5n69z2xm3xgksg28nwht7f6zspwp3f9t',
      { ...hashed, network: 'testnet' },
    ],
    [
      'route hints',
      'lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzqj9n4evl6mr5aj9f58zp6fyjzup6ywn3x6sk8akg5v4tgn2q8g4fhx05wf6juaxu9760yp46454gpg5mtzgerlzezqcqvjnhjh8z3g2qqdhhwkj',
      hashed,
    ],
    [
      'P2SH fallback',
      'lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z9kmrgvr7xlaqm47apw3d48zm203kzcq357a4ls9al2ea73r8jcceyjtya6fu5wzzpe50zrge6ulk4nvjcpxlekvmxl6qcs9j3tz0469gq5g658y',
      hashed,
    ],
    [
      'P2WPKH fallback',
      'lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppqw508d6qejxtdg4y5r3zarvary0c5xw7kepvrhrm9s57hejg0p662ur5j5cr03890fa7k2pypgttmh4897d3raaq85a293e9jpuqwl0rnfuwzam7yr8e690nd2ypcq9hlkdwdvycqa0qza8',
      hashed,
    ],
    [
      'P2WSH fallback',
      'lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfp4qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q28j0v3rwgy9pvjnd48ee2pl8xrpxysd5g44td63g6xcjcu003j3qe8878hluqlvl3km8rm92f5stamd3jw763n3hck0ct7p8wwj463cql26ava',
      hashed,
    ],
    [
      'pico-bitcoin amount',
      'lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j',
      {
        network: 'mainnet',
        amountMsat: 967_878_534n,
        paymentHash: '462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f',
        payeePubkey: SPEC_PAYEE,
        timestamp: 1572468703,
        expirySeconds: 604800,
        minFinalCltvExpiry: 10,
      },
    ],
  ];
  const coffeeBeans: Partial<DecodedInvoice> = {
    ...base,
    amountMsat: 2_500_000_000n,
    description: 'coffee beans',
    paymentSecret: '11'.repeat(32),
    features: [9, 15, 99],
  };
  const beans =
    'lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu';
  cases.push(
    ['payment secret and features', beans, coffeeBeans],
    ['all upper case', beans.toUpperCase(), { ...coffeeBeans, paymentRequest: beans }],
    [
      // Some revisions of the spec text print this one with two stray 'q's; this is the string
      // that eclair and other implementations test, and its checksum holds.
      'fields that must be skipped (unknown, wrong lengths, unknown fallback version)',
      'lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq2qrqqqfppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnpkqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq2jxxfsnucm4jf4zwtznpaxphce606fvhvje5x7d4gw7n73994hgs7nteqvenq8a4ml8aqtchv5d9pf7l558889hp4yyrqv6a7zpq9fgpskqhza',
      coffeeBeans,
    ],
  );

  it.each(cases)('%s', (_name, paymentRequest, expected) => {
    const decoded = decodeInvoice(paymentRequest);
    expect(decoded).toMatchObject(expected);
    expect(decoded.expiresAt).toBe((decoded.timestamp + decoded.expirySeconds) * 1000);
  });

  it('leaves absent fields absent (no undefined keys)', () => {
    const decoded = decodeInvoice(cases[0]?.[1] ?? '');
    expect(Object.keys(decoded).sort()).toEqual(
      [
        'description',
        'expiresAt',
        'expirySeconds',
        'network',
        'payeePubkey',
        'paymentHash',
        'paymentRequest',
        'timestamp',
      ].sort(),
    );
  });

  it('decodes an unknown even feature bit and reports it (payers, not the decoder, refuse it)', () => {
    const decoded = decodeInvoice(
      'lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqpqsqq40wa3khl49yue3zsgm26jrepqr2eghqlx86rttutve3ugd05em86nsefzh4pfurpd9ek9w2vp95zxqnfe2u7ckudyahsa52q66tgzcp6t2dyk',
    );
    expect(decoded.features).toEqual([9, 15, 99, 100]);
  });

  const invalid: Array<[string, string]> = [
    [
      'bad bech32 checksum',
      'lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrnt',
    ],
    [
      'no separator',
      'pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny',
    ],
    [
      'mixed case',
      'LNBC2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny',
    ],
    [
      'signature not recoverable',
      'lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaxtrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspk28uwq',
    ],
    [
      'too short',
      'lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6na6hlh',
    ],
    [
      'invalid multiplier',
      'lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpujr6jxr9gq9pv6g46y7d20jfkegkg4gljz2ea2a3m9lmvvr95tq2s0kvu70u3axgelz3kyvtp2ywwt0y8hkx2869zq5dll9nelr83zzqqpgl2zg',
    ],
    [
      'sub-millisatoshi precision',
      'lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu7hqtk93pkf7sw55rdv4k9z2vj050rxdr6za9ekfs3nlt5lr89jqpdmxsmlj9urqumg0h9wzpqecw7th56tdms40p2ny9q4ddvjsedzcplva53s',
    ],
  ];
  it.each(invalid)('rejects: %s', (_name, paymentRequest) => {
    expectCode(() => decodeInvoice(paymentRequest), 'invalid_invoice');
  });
});

describe('decodeInvoice: project fixtures', () => {
  const vectors = JSON.parse(
    readFileSync(new URL('../../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
  ) as {
    invoicePreimageTriple: {
      invoice: string;
      network: string;
      amountSat: number;
      preimageHex: string;
      paymentHashHex: string;
    };
    realChallenge: { header: string; paymentHashHex: string; invoiceAmountSat: number };
  };

  it('invoicePreimageTriple: testnet, amount, and sha256(preimage) = payment hash', () => {
    const triple = vectors.invoicePreimageTriple;
    const decoded = decodeInvoice(triple.invoice, { network: 'testnet' });
    expect(decoded.network).toBe(triple.network);
    expect(decoded.amountMsat).toBe(BigInt(triple.amountSat) * 1000n);
    expect(decoded.paymentHash).toBe(triple.paymentHashHex);
    expect(sha256Hex(hexBytes(triple.preimageHex))).toBe(decoded.paymentHash);
  });

  it('the invoice inside a real Aperture challenge (regtest, 10 sat)', () => {
    const invoice = /invoice="([^"]+)"/.exec(vectors.realChallenge.header)?.[1] ?? '';
    const decoded = decodeInvoice(invoice, { network: 'regtest' });
    expect(decoded.amountMsat).toBe(BigInt(vectors.realChallenge.invoiceAmountSat) * 1000n);
    expect(decoded.paymentHash).toBe(vectors.realChallenge.paymentHashHex);
    expect(decoded.paymentSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(decoded.payeePubkey).toBe(bolt11.decode(invoice).payeeNodeKey);
  });
});

describe('decodeInvoice: input handling and strictness', () => {
  const spec =
    'lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspfj9srp';

  it('strips a lightning: prefix (any case) and surrounding whitespace, and lower-cases', () => {
    for (const input of [`lightning:${spec}`, `LIGHTNING:${spec.toUpperCase()}`, ` ${spec}\n`]) {
      expect(decodeInvoice(input).paymentRequest).toBe(spec);
    }
  });

  it('checks the expected network', () => {
    expect(decodeInvoice(spec, { network: 'mainnet' }).network).toBe('mainnet');
    expectCode(() => decodeInvoice(spec, { network: 'regtest' }), 'wrong_network');
  });

  it('names an unknown currency prefix unsupported_network', () => {
    const { words } = bech32.decode(spec as `${string}1${string}`, false);
    expectCode(
      () => decodeInvoice(bech32.encode('lnsb2500u', words, false)),
      'unsupported_network',
    );
  });

  it('rejects non-strings, over-long input and non-ln strings cheaply', () => {
    expectCode(() => decodeInvoice(42 as unknown as string), 'invalid_invoice');
    expectCode(() => decodeInvoice(`lnbc1${'q'.repeat(8000)}`), 'invalid_invoice');
    expectCode(
      () => decodeInvoice('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'),
      'invalid_invoice',
    );
    expectCode(() => decodeInvoice(''), 'invalid_invoice');
  });

  const data = (...fields: number[][]): number[] => [
    ...timestampWords(SPEC_TIME),
    ...fields.flat(),
  ];
  const otherKey = '11'.repeat(32);
  const otherPayee = Buffer.from(secp256k1.getPublicKey(hexBytes(otherKey), true)).toString('hex');
  const payeeField = (hex: string) => field(19, bech32.toWords(hexBytes(hex)));

  it('reads a hand-built invoice signed independently', () => {
    const decoded = decodeInvoice(signRaw('lnbc10n', data(hashField, field(13, []))));
    expect(decoded).toMatchObject({
      amountMsat: 1000n,
      paymentHash: SPEC_HASH,
      description: '',
      payeePubkey: SPEC_PAYEE,
    });
  });

  it('uses the n field to check the signature', () => {
    expect(
      decodeInvoice(signRaw('lnbc', data(hashField, payeeField(SPEC_PAYEE)))).payeePubkey,
    ).toBe(SPEC_PAYEE);
    expectCode(
      () => decodeInvoice(signRaw('lnbc', data(hashField, payeeField(otherPayee)))),
      'invalid_invoice',
    );
    // A 53-word n field that is not a curve point.
    expectCode(
      () => decodeInvoice(signRaw('lnbc', data(hashField, field(19, new Array(53).fill(31))))),
      'invalid_invoice',
    );
    // With n present, a wrong recovery id does not matter (the spec verifies instead of recovering).
    expect(
      decodeInvoice(signRaw('lnbc', data(hashField, payeeField(SPEC_PAYEE)), SPEC_KEY, 3))
        .payeePubkey,
    ).toBe(SPEC_PAYEE);
  });

  it('recovers the signer: another key gives another payee; a bad recovery id fails', () => {
    expect(decodeInvoice(signRaw('lnbc', data(hashField), otherKey)).payeePubkey).toBe(otherPayee);
    expectCode(
      () => decodeInvoice(signRaw('lnbc', data(hashField), SPEC_KEY, 4)),
      'invalid_invoice',
    );
  });

  it('skips wrong-length p fields, and the first valid p field wins', () => {
    const other = field(1, bech32.toWords(hexBytes('ab'.repeat(32))));
    const short = field(1, new Array(51).fill(0));
    expect(decodeInvoice(signRaw('lnbc', data(short, hashField, other))).paymentHash).toBe(
      SPEC_HASH,
    );
    expectCode(() => decodeInvoice(signRaw('lnbc', data(short))), 'invalid_invoice');
    expectCode(() => decodeInvoice(signRaw('lnbc', data(field(13, [])))), 'invalid_invoice');
  });

  it('rejects malformed fields', () => {
    const invalidUtf8 = field(13, bech32.toWords(Uint8Array.from([0xc3, 0x28])));
    const hugeExpiry = field(6, new Array(11).fill(31));
    const pastEnd = [1, 1, 20, ...new Array(10).fill(0)];
    for (const bad of [invalidUtf8, hugeExpiry, pastEnd, [13, 0]]) {
      expectCode(() => decodeInvoice(signRaw('lnbc', data(hashField, bad))), 'invalid_invoice');
    }
  });

  it('reads amounts exactly and rejects non-canonical or absurd ones', () => {
    const signed = (hrp: string) => decodeInvoice(signRaw(hrp, data(hashField))).amountMsat;
    expect(signed('lnbc10p')).toBe(1n);
    expect(signed('lnbc1n')).toBe(100n);
    expect(signed('lnbc1u')).toBe(100_000n);
    expect(signed('lnbc1m')).toBe(100_000_000n);
    expect(signed('lnbc1')).toBe(100_000_000_000n);
    expect(signed('lnbc21000000')).toBe(MAX_MSAT);
    expect(signed('lnbc')).toBeUndefined();
    for (const hrp of [
      'lnbc0',
      'lnbc010u',
      'lnbc21000001',
      'lnbc1p',
      'lnbc1u1',
      'lnbc1mm',
      'lnbc99999999999999999999999999',
    ]) {
      expectCode(() => decodeInvoice(signRaw(hrp, data(hashField))), 'invalid_invoice');
    }
  });

  it('a re-checksummed amount change yields another payee (payers must check the payee)', () => {
    const { words } = bech32.decode(spec as `${string}1${string}`, false);
    const forged = decodeInvoice(bech32.encode('lnbc2u', words, false));
    expect(forged.amountMsat).toBe(200_000n);
    expect(forged.payeePubkey).not.toBe(SPEC_PAYEE);
  });
});

describe('encodeInvoice', () => {
  const { paymentHash } = createPreimage();
  const minimal = { network: 'regtest', paymentHash, privateKey: SPEC_KEY } as const;

  it.each([
    [1n, 'lnbcrt10p1'],
    [10_000n, 'lnbcrt100n1'],
    [2_500_000n, 'lnbcrt25u1'],
    [2_500_000_000n, 'lnbcrt25m1'],
    [100_000_000_000n, 'lnbcrt11'],
    [123_456_789n, 'lnbcrt1234567890p1'],
    [MAX_MSAT, 'lnbcrt210000001'],
  ])('writes %s msat with the largest exact multiplier (%s)', (amountMsat, start) => {
    const invoice = encodeInvoice({ ...minimal, amountMsat });
    expect(invoice.startsWith(start)).toBe(true);
    expect(decodeInvoice(invoice).amountMsat).toBe(amountMsat);
    expect(bolt11.decode(invoice).millisatoshis).toBe(amountMsat.toString());
  });

  it('uses the prefix of each network', () => {
    const prefixes: Record<LightningNetwork, string> = {
      mainnet: 'lnbc1',
      testnet: 'lntb1',
      signet: 'lntbs1',
      regtest: 'lnbcrt1',
    };
    for (const [network, prefix] of Object.entries(prefixes) as Array<[LightningNetwork, string]>) {
      const invoice = encodeInvoice({ ...minimal, network });
      expect(invoice.startsWith(prefix)).toBe(true);
      expect(decodeInvoice(invoice, { network }).network).toBe(network);
    }
  });

  it('writes what bolt11 (bitcoinjs) reads, with the payment secret feature bits', () => {
    const invoice = encodeInvoice({
      ...minimal,
      amountMsat: 10_000n,
      paymentSecret: '22'.repeat(32),
      description: 'forecast',
      expirySeconds: 600,
      timestamp: SPEC_TIME,
      minFinalCltvExpiry: 40,
    });
    const theirs = bolt11.decode(invoice);
    const tags = Object.fromEntries(theirs.tags.map((t) => [t.tagName, t.data]));
    expect(theirs.payeeNodeKey).toBe(SPEC_PAYEE);
    expect(theirs.timestamp).toBe(SPEC_TIME);
    expect(tags).toMatchObject({
      payment_hash: paymentHash,
      payment_secret: '22'.repeat(32),
      description: 'forecast',
      expire_time: 600,
      min_final_cltv_expiry: 40,
    });
    expect(decodeInvoice(invoice).features).toEqual([8, 14]);
  });

  it('writes an empty description when none is given, and a description hash instead of one', () => {
    expect(decodeInvoice(encodeInvoice(minimal)).description).toBe('');
    const hashed = decodeInvoice(encodeInvoice({ ...minimal, descriptionHash: 'cd'.repeat(32) }));
    expect(hashed.descriptionHash).toBe('cd'.repeat(32));
    expect(hashed.description).toBeUndefined();
    expect(
      decodeInvoice(encodeInvoice({ ...minimal, description: `${'é'.repeat(319)}x` })).description,
    ).toHaveLength(320);
  });

  it('accepts the key as bytes', () => {
    const invoice = encodeInvoice({ ...minimal, privateKey: hexBytes(SPEC_KEY) });
    expect(decodeInvoice(invoice).payeePubkey).toBe(SPEC_PAYEE);
  });

  it.each<[string, Partial<Parameters<typeof encodeInvoice>[0]>, TollwayErrorCode]>([
    ['zero amount', { amountMsat: 0n }, 'invalid_amount'],
    ['negative amount', { amountMsat: -1n }, 'invalid_amount'],
    ['amount over 21e6 BTC', { amountMsat: MAX_MSAT + 1n }, 'invalid_amount'],
    ['short payment hash', { paymentHash: 'ab' }, 'invalid_hex'],
    ['non-hex secret', { paymentSecret: 'zz'.repeat(32) }, 'invalid_hex'],
    ['short key', { privateKey: 'ab'.repeat(31) }, 'invalid_hex'],
    ['zero key', { privateKey: '00'.repeat(32) }, 'invalid_invoice'],
    ['key of 31 bytes', { privateKey: new Uint8Array(31).fill(1) }, 'invalid_invoice'],
    [
      'both descriptions',
      { description: 'a', descriptionHash: 'ab'.repeat(32) },
      'invalid_invoice',
    ],
    ['description of 640 bytes', { description: 'x'.repeat(640) }, 'invalid_invoice'],
    ['negative timestamp', { timestamp: -1 }, 'invalid_invoice'],
    ['timestamp of 2^35', { timestamp: 2 ** 35 }, 'invalid_invoice'],
    ['fractional expiry', { expirySeconds: 1.5 }, 'invalid_invoice'],
    ['absurd expiry', { expirySeconds: Number.MAX_SAFE_INTEGER }, 'invalid_invoice'],
    ['negative cltv', { minFinalCltvExpiry: -1 }, 'invalid_invoice'],
  ])('rejects %s', (_name, change, code) => {
    expectCode(() => encodeInvoice({ ...minimal, ...change }), code);
  });

  it('round-trips random fields, and bolt11 (bitcoinjs) reads the same invoice', () => {
    const hex32 = fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .map((b) => Buffer.from(b).toString('hex'));
    const key = fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .filter((b) => secp256k1.utils.isValidSecretKey(b));
    fc.assert(
      fc.property(
        fc.record(
          {
            network: fc.constantFrom<LightningNetwork>('mainnet', 'testnet', 'signet', 'regtest'),
            amountMsat: fc.bigInt({ min: 1n, max: MAX_MSAT }),
            paymentHash: hex32,
            paymentSecret: hex32,
            description: fc
              .string({ unit: 'grapheme', maxLength: 120 })
              .filter((s) => Buffer.byteLength(s) <= 639),
            expirySeconds: fc.integer({ min: 0, max: 10 * 365 * 86400 }),
            timestamp: fc.integer({ min: 0, max: 2 ** 35 - 1 }),
            minFinalCltvExpiry: fc.integer({ min: 0, max: 2 ** 32 }),
          },
          { requiredKeys: ['network', 'paymentHash'] },
        ),
        key,
        (fields, privateKey) => {
          const invoice = encodeInvoice({ ...fields, privateKey });
          const decoded = decodeInvoice(invoice, { network: fields.network });
          const payee = Buffer.from(secp256k1.getPublicKey(privateKey, true)).toString('hex');
          expect(decoded).toMatchObject({
            ...fields,
            paymentRequest: invoice,
            payeePubkey: payee,
            description: fields.description ?? '',
            expirySeconds: fields.expirySeconds ?? 3600,
            minFinalCltvExpiry: fields.minFinalCltvExpiry ?? 18,
          });
          expect(decoded.amountMsat).toBe(fields.amountMsat);
          const signet = {
            bech32: 'tbs',
            pubKeyHash: 0x6f,
            scriptHash: 0xc4,
            validWitnessVersions: [0, 1],
          };
          const theirs = bolt11.decode(invoice, fields.network === 'signet' ? signet : undefined);
          expect(theirs.payeeNodeKey).toBe(payee);
          expect(theirs.millisatoshis ?? undefined).toBe(fields.amountMsat?.toString());
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('isInvoiceExpired', () => {
  it('is true from expiresAt on', () => {
    expect(isInvoiceExpired({ expiresAt: 1000 }, 999)).toBe(false);
    expect(isInvoiceExpired({ expiresAt: 1000 }, 1000)).toBe(true);
    const fresh = decodeInvoice(
      encodeInvoice({
        network: 'regtest',
        paymentHash: SPEC_HASH,
        privateKey: SPEC_KEY,
        expirySeconds: 60,
      }),
    );
    expect(isInvoiceExpired(fresh)).toBe(false);
    expect(isInvoiceExpired(fresh, fresh.timestamp * 1000 + 60_000)).toBe(true);
  });
});

describe('createPreimage', () => {
  it('gives 32 random bytes and their SHA-256', () => {
    const a = createPreimage();
    const b = createPreimage();
    expect(a.preimage).toMatch(/^[0-9a-f]{64}$/);
    expect(sha256Hex(hexBytes(a.preimage))).toBe(a.paymentHash);
    expect(a.preimage).not.toBe(b.preimage);
  });

  it('takes the preimage when given one', () => {
    const given = createPreimage(new Uint8Array(32).fill(7));
    expect(given.preimage).toBe('07'.repeat(32));
    expect(given.paymentHash).toBe(sha256Hex(hexBytes('07'.repeat(32))));
  });
});
