/**
 * Input generators for the `*.fuzz.test.ts` files: a seeded PRNG (so a failure replays), random
 * strings over an alphabet rich in header syntax, and mutations of valid seeds. Hand-rolled rather
 * than fast-check arbitraries because the fuzz files run 100k+ inputs each in a few seconds.
 */
import { expect } from 'vitest';
import { isTollwayError } from '../src/errors.js';

/** A deterministic generator of floats in [0, 1) (mulberry32). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters that mean something to the header, base64, hex and JSON parsers, and some that don't. */
const SPECIAL = [
  '"',
  '\\',
  ',',
  '=',
  ' ',
  '\t',
  ':',
  ';',
  '/',
  '+',
  '-',
  '_',
  '{',
  '}',
  '[',
  ']',
  '\r',
  '\n',
  '\0',
  'é',
  'あ',
  '\u2028',
  '\ud800',
  '😀',
  'L402',
  'LSAT',
  'Payment',
  'payment',
  'macaroon=',
  'token=',
  'invoice=',
  'id=',
  'realm=',
  'request=',
  'lnbc1',
  'AgEE',
  '0',
  'f',
  'A',
  'z',
  'eyJ',
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** A random string of up to `maxParts` pieces, each a special piece or a printable ASCII char. */
export function randomText(random: () => number, maxParts: number): string {
  const parts = Math.floor(random() * maxParts);
  let text = '';
  for (let i = 0; i < parts; i++) {
    text +=
      random() < 0.5 ? pick(random, SPECIAL) : String.fromCharCode(32 + Math.floor(random() * 95));
  }
  return text;
}

/** A seed with 1–4 random edits: insert, delete, replace, duplicate a slice, truncate, or splice. */
export function mutate(random: () => number, seeds: readonly string[]): string {
  let text = pick(random, seeds);
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (text.length + 1));
    const choice = Math.floor(random() * 6);
    if (choice === 0) text = text.slice(0, at) + randomText(random, 3) + text.slice(at);
    else if (choice === 1) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8));
    else if (choice === 2) text = text.slice(0, at) + pick(random, SPECIAL) + text.slice(at + 1);
    else if (choice === 3)
      text =
        text.slice(0, at) +
        text.slice(at, at + Math.floor(random() * 40)).repeat(2) +
        text.slice(at);
    else if (choice === 4) text = text.slice(0, at);
    else text = text.slice(0, at) + pick(random, seeds).slice(Math.floor(random() * 40));
  }
  return text;
}

/**
 * Runs `parse` on `count` inputs from `next`, failing on the first exception that is not a
 * TollwayError (with the input in the message). Returns how many inputs parsed without error.
 * Stack traces are switched off meanwhile: most inputs throw, and capturing a stack costs more
 * than parsing; the error's class and code, which are what is checked, do not depend on it.
 */
export function fuzz(count: number, next: () => string, parse: (input: string) => unknown): number {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let parsed = 0;
  try {
    for (let i = 0; i < count; i++) {
      const input = next();
      try {
        parse(input);
        parsed++;
      } catch (error) {
        if (!isTollwayError(error)) {
          expect.fail(`non-TollwayError ${String(error)} for input ${JSON.stringify(input)}`);
        }
      }
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  return parsed;
}
