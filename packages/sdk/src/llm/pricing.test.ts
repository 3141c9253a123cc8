import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { fixedRate } from '../money.js';
import { createLlmPricing, type UsageReading } from './pricing.js';

const encoder = new TextEncoder();
const headers = new Headers();
const request = (body: unknown) => ({
  method: 'POST',
  path: '/v1/chat/completions',
  query: new URLSearchParams(),
  headers,
  body,
});

describe('createLlmPricing', () => {
  const pricing = createLlmPricing({
    models: {
      'sat-model': { input: '150 sat', output: '600 sat', cachedInput: '75 sat' },
      'usd-model': { input: '$0.15', output: '$0.60' },
    },
    rates: fixedRate('100000'),
  });

  it('prices usage exactly to the msat, rounded up once per request', async () => {
    // 1000×150 000 + 24×75 000 + 300×600 000 msat per million tokens = 331 800 000 / 1e6 → 332 msat.
    expect(
      await pricing.cost('sat-model', {
        inputTokens: 1000,
        cachedInputTokens: 24,
        outputTokens: 300,
      }),
    ).toBe(332n);
    expect(
      await pricing.cost('sat-model', { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 }),
    ).toBe(0n);
    // $0.15/M × 1000 + $0.60/M × 300 = $0.00033 = 330 µ$; at $100 000/BTC, 1 µ$ = 1 msat → 330 msat.
    expect(
      await pricing.cost('usd-model', {
        inputTokens: 1000,
        cachedInputTokens: 0,
        outputTokens: 300,
      }),
    ).toBe(330n);
    expect(
      await pricing.cost('usd-model', { inputTokens: 1, cachedInputTokens: 0, outputTokens: 0 }),
    ).toBe(1n);
  });

  it('reserves the input (a token per body byte at most) and max_tokens of output', async () => {
    const body = {
      model: 'sat-model',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    };
    const bytes = BigInt(encoder.encode(JSON.stringify(body)).length);
    expect(await pricing.price(request(body))).toBe(
      (bytes * 150_000n + 100n * 600_000n + 999_999n) / 1_000_000n,
    );
    const fallback = { model: 'sat-model', messages: [] };
    const fallbackBytes = BigInt(encoder.encode(JSON.stringify(fallback)).length);
    expect(await pricing.price(request(fallback))).toBe(
      (fallbackBytes * 150_000n + 4096n * 600_000n + 999_999n) / 1_000_000n,
    );
    for (const field of ['max_completion_tokens', 'max_output_tokens']) {
      const other = {
        model: 'sat-model',
        [field]: 100,
        messages: [{ role: 'user', content: 'hi' }],
      };
      const size = BigInt(encoder.encode(JSON.stringify(other)).length);
      expect(await pricing.price(request(other))).toBe(
        (size * 150_000n + 100n * 600_000n + 999_999n) / 1_000_000n,
      );
    }
  });

  it('counts the input bytes of any text as UTF-8 encodes it', async () => {
    // 1000 sat per million tokens: one msat per token, so the reservation is the byte count.
    const perByte = createLlmPricing({ models: { m: { input: '1000 sat', output: '0 sat' } } });
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary' }), async (content) => {
        const body = { model: 'm', max_tokens: 1, messages: [{ role: 'user', content }] };
        const bytes = BigInt(encoder.encode(JSON.stringify(body)).length);
        expect(await perByte.price(request(body))).toBe(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses an unknown model (400 invalid_model) unless default prices are set', async () => {
    const error = await Promise.resolve(pricing.price(request({ model: 'other' }))).catch(
      (e: unknown) => e,
    );
    expect(isTollwayError(error, 'invalid_model')).toBe(true);
    expect((error as Error).message).toBe(
      'the model other is not offered here; models offered: sat-model, usd-model',
    );
    const open = createLlmPricing({
      models: {},
      defaultPrices: { input: '1 sat', output: '2 sat' },
    });
    expect(
      await open.cost('anything', {
        inputTokens: 1_000_000,
        cachedInputTokens: 0,
        outputTokens: 0,
      }),
    ).toBe(1000n);
  });

  it('meters the usage an answer reports, and nothing it does not', async () => {
    const reading = pricing.meter.open({
      request: request({ model: 'sat-model' }),
      status: 200,
      headers: undefined,
    });
    reading.write(
      encoder.encode(
        JSON.stringify({
          usage: { prompt_tokens: 1000, completion_tokens: 300, total_tokens: 1300 },
        }),
      ),
    );
    expect(await reading.cost(true)).toBe(330n);
    const silent = pricing.meter.open({
      request: request({ model: 'sat-model' }),
      status: 200,
      headers: undefined,
    });
    silent.write(encoder.encode('{"choices":[]}'));
    expect(await silent.cost(true)).toBeUndefined();
  });

  it('tells onUsage what each metered answer reported and cost', async () => {
    const readings: UsageReading[] = [];
    const told = createLlmPricing({
      models: { 'sat-model': { input: '150 sat', output: '600 sat', cachedInput: '75 sat' } },
      onUsage: (reading) => readings.push(reading),
    });
    const answer = { request: request({ model: 'sat-model' }), status: 200, headers: undefined };
    const reading = told.meter.open(answer);
    reading.write(
      encoder.encode(
        '{"usage":{"prompt_tokens":1024,"completion_tokens":300,"total_tokens":1324,"prompt_tokens_details":{"cached_tokens":24}}}',
      ),
    );
    expect(await reading.cost(true)).toBe(332n);
    const silent = told.meter.open(answer);
    silent.write(encoder.encode('{"choices":[]}'));
    await silent.cost(false);
    expect(readings).toEqual([
      {
        model: 'sat-model',
        usage: { inputTokens: 1000, cachedInputTokens: 24, outputTokens: 300 },
        costMsat: 332n,
      },
    ]);
  });

  it('refuses a table it cannot price: mixed units, bad amounts, dollars without a rate', () => {
    const code = (run: () => unknown) => {
      try {
        run();
        return 'none';
      } catch (error) {
        return isTollwayError(error) ? error.code : 'other';
      }
    };
    expect(code(() => createLlmPricing({ models: { m: { input: '1 sat', output: '$1' } } }))).toBe(
      'invalid_price',
    );
    expect(
      code(() => createLlmPricing({ models: { m: { input: 'lots', output: '1 sat' } } })),
    ).toBe('invalid_price');
    expect(code(() => createLlmPricing({ models: { m: { input: '$1', output: '$1' } } }))).toBe(
      'invalid_config',
    );
  });
});
