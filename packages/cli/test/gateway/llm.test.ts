/**
 * The gateway as an LLM gateway, against doubles of the OpenAI and Anthropic APIs over real HTTP
 * (llm-doubles.ts): one service routes each call by its model to the provider serving it, with
 * that provider's key; a prepaid balance is drawn at the model table's price of the usage each
 * answer reports, to the msat (the expected amounts below are worked by hand from the table);
 * streams pass through as they arrive; abandoned streams, upstream errors, unknown models and
 * reservations that do not fit are charged as documented in docs/guides/llm.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseL402Challenges } from '@tollway/sdk/l402';
import { decodeInvoice } from '@tollway/sdk/lightning';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import {
  ANTHROPIC_SCRIPT,
  type LlmDouble,
  OPENAI_SCRIPT,
  startAnthropicDouble,
  startOpenAiDouble,
} from './llm-doubles.js';
import { accountOf, payL402, payMpp } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };
const ADMIN_TOKEN = 'llm-admin-token-0123456789';
const OPENAI_KEY = 'sk-openai-test-secret';
const ANTHROPIC_KEY = 'sk-ant-test-secret';

/*
 * The prices, at $100,000 per BTC (1 µ$ = 1 msat), and what the doubles' default usage costs:
 * - gpt-4o-mini: 176 uncached × $0.15 + 1024 cached × $0.075 + 300 out × $0.60 per million
 *   = 26.4 + 76.8 + 180 = 283.2 µ$ → 284 msat (rounded up once).
 * - claude-sonnet-4: (40 + 500 cache writes) × $3 + 2000 cache reads × $0.30 + 250 out × $15
 *   per million = 1620 + 600 + 3750 = 5970 µ$ → 5970 msat.
 * - llama-3 (sats): (176 + 1024) × 100 sat + 300 × 400 sat per million = 240 000 000 msat / 1e6
 *   → 240 msat (no cachedInput price: cached tokens cost the input price).
 */
const COST = { openai: 284n, anthropic: 5970n, local: 240n };
const BALANCE_MSAT = 100_000n;

let network: DevNetwork;
let openai: LlmDouble;
let anthropic: LlmDouble;
let local: LlmDouble;
let gateway: Gateway;
const dir = mkdtempSync(join(tmpdir(), 'tollway-llm-'));

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  network.openWallet('agent');
  openai = await startOpenAiDouble(OPENAI_KEY);
  anthropic = await startAnthropicDouble(ANTHROPIC_KEY);
  local = await startOpenAiDouble(undefined);
  const config = parseGatewayConfig(
    {
      listen: '127.0.0.1:0',
      dataDir: dir,
      lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
      admin: { token: ADMIN_TOKEN },
      paywall: { usdPerBtc: '100000', rateLimits: { challenges: false } },
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: `${openai.url}/v1`,
          stripPrefix: true,
          headers: { authorization: 'Bearer ${OPENAI_KEY}' },
          balance: '100 sat',
          llm: {
            providers: {
              anthropic: {
                upstream: `${anthropic.url}/v1`,
                headers: { 'x-api-key': '${ANTHROPIC_KEY}', 'anthropic-version': '2023-06-01' },
              },
              local: { upstream: `${local.url}/v1` },
            },
            models: {
              'gpt-4o-mini': { input: '$0.15', output: '$0.60', cachedInput: '$0.075' },
              'claude-sonnet-4': {
                provider: 'anthropic',
                input: '$3',
                output: '$15',
                cachedInput: '$0.30',
              },
              'llama-3': {
                provider: 'local',
                upstreamModel: 'llama3.1:8b',
                input: '100 sat',
                output: '400 sat',
              },
            },
          },
        },
        {
          name: 'open',
          path: '/open/v1',
          upstream: `${local.url}/v1`,
          stripPrefix: true,
          balance: '100 sat',
          llm: { models: {}, defaultPrices: { input: '100 sat', output: '400 sat' } },
        },
      ],
    },
    { env: { OPENAI_KEY, ANTHROPIC_KEY } },
  );
  gateway = await createGateway({
    config,
    lightning: network.backend('shop'),
    logger: quiet,
    baseDir: dir,
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([openai?.close(), anthropic?.close(), local?.close()]);
  await network?.close();
  rmSync(dir, { recursive: true, force: true });
});

const reset = () => {
  openai.next = OPENAI_SCRIPT;
  anthropic.next = ANTHROPIC_SCRIPT;
  local.next = OPENAI_SCRIPT;
};

function chat(model: string, extra: Record<string, unknown> = {}) {
  // About 3 300 bytes: the reservation's bound on the input (a token per byte) covers the doubles'
  // usage.
  const content = 'Say hello. '.repeat(300);
  return { model, max_tokens: 512, messages: [{ role: 'user', content }], ...extra };
}

function post(path: string, body: unknown, authorization?: string, signal?: AbortSignal) {
  return fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'accept-encoding': 'gzip, br',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** Buys a balance of the service at `path` with the 402 a first call gets. */
async function buy(path: string, body: unknown): Promise<string> {
  const unpaid = await post(path, body);
  expect(unpaid.status).toBe(402);
  return payL402(unpaid, network.backend('agent'));
}

const msat = (header: string | null): bigint => BigInt((header ?? 'none').replace(/ msat$/, ''));

/** The balance's counters once every hold was settled or released (in the background). */
async function spentOf(token: string): Promise<bigint> {
  await vi.waitFor(async () =>
    expect((await gateway.store.getUsage(accountOf(token))).heldMsat).toBe(0n),
  );
  return (await gateway.store.getUsage(accountOf(token))).spentMsat;
}

/** The receipt comment lines at the end of a metered stream. */
function receiptOf(text: string): Record<string, string> {
  return Object.fromEntries(
    [...text.matchAll(/^: (tollway-[a-z]+) (.+)$/gm)].map((match) => [match[1], match[2]]),
  );
}

describe('the LLM gateway', () => {
  it('routes each model to its provider with its key, and charges the table price of the usage to the msat', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    const calls: Array<[string, unknown, bigint]> = [
      ['/v1/chat/completions', chat('gpt-4o-mini'), COST.openai],
      ['/v1/messages', chat('claude-sonnet-4'), COST.anthropic],
      ['/v1/chat/completions', chat('llama-3'), COST.local],
    ];
    let left = BALANCE_MSAT;
    for (const [path, body, cost] of calls) {
      const answer = await post(path, body, token);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('tollway-charged')).toBe(`${cost} msat`);
      left -= cost;
      expect(answer.headers.get('tollway-remaining')).toBe(`${left} msat`);
      expect(msat(answer.headers.get('tollway-reserved'))).toBeGreaterThan(cost);
      const json = (await answer.json()) as { usage: unknown };
      expect(json.usage).toBeDefined();
    }
    expect(await spentOf(token)).toBe(BALANCE_MSAT - left);

    const [toOpenAi] = openai.received.slice(-1);
    expect(toOpenAi?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(toOpenAi?.headers['accept-encoding']).toBe('identity');
    const [toAnthropic] = anthropic.received.slice(-1);
    expect(toAnthropic?.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(toAnthropic?.headers.authorization).toBeUndefined();
    expect(toAnthropic?.path).toBe('/v1/messages');
    const [toLocal] = local.received.slice(-1);
    expect(toLocal?.headers.authorization).toBeUndefined();
    expect(toLocal?.headers['x-api-key']).toBeUndefined();
    expect(toLocal?.body.model).toBe('llama3.1:8b');
  });

  it('streams: asks OpenAI for the usage, keeps the extra chunk from a client that did not ask, ends with the receipt', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    const plain = await post('/v1/chat/completions', chat('gpt-4o-mini', { stream: true }), token);
    expect(plain.headers.get('content-type')).toContain('text/event-stream');
    const reserved = msat(plain.headers.get('tollway-reserved'));
    const text = await plain.text();
    expect(openai.received.at(-1)?.body.stream_options).toEqual({ include_usage: true });
    expect(text).not.toContain('"choices":[]');
    expect(text).not.toContain('"usage":{');
    expect(text).toContain('"content":"Hel"');
    expect(text).toContain('data: [DONE]\n\n: tollway-charged');
    expect(receiptOf(text)).toEqual({
      'tollway-charged': `${COST.openai} msat`,
      'tollway-remaining': `${BALANCE_MSAT - COST.openai} msat`,
    });
    expect(reserved).toBeGreaterThan(COST.openai);

    const asked = chat('gpt-4o-mini', {
      stream: true,
      stream_options: { include_usage: true },
    });
    const withUsage = await (await post('/v1/chat/completions', asked, token)).text();
    expect(openai.received.at(-1)?.body).toEqual(asked);
    expect(withUsage).toContain('"choices":[],"usage":{"prompt_tokens":1200');
    expect(receiptOf(withUsage)['tollway-charged']).toBe(`${COST.openai} msat`);

    const claude = await (
      await post('/v1/messages', chat('claude-sonnet-4', { stream: true }), token)
    ).text();
    expect(anthropic.received.at(-1)?.body.stream_options).toBeUndefined();
    expect(claude).toContain('event: message_stop\ndata: {"type":"message_stop"}\n\n');
    expect(receiptOf(claude)['tollway-charged']).toBe(`${COST.anthropic} msat`);
    expect(await spentOf(token)).toBe(2n * COST.openai + COST.anthropic);
  });

  it('passes the first chunk on before the upstream finished', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    let release = () => {};
    openai.next = { ...OPENAI_SCRIPT, hold: new Promise<void>((resolve) => (release = resolve)) };
    const holding = openai.holding();
    const answer = await post('/v1/chat/completions', chat('gpt-4o-mini', { stream: true }), token);
    await holding;
    const reader = (answer.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('"content":"Hel"')) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      seen += decoder.decode(value, { stream: true });
    }
    expect(seen).not.toContain('[DONE]');
    release();
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      seen += decoder.decode(part.value, { stream: true });
    }
    expect(receiptOf(seen)['tollway-charged']).toBe(`${COST.openai} msat`);
    expect(await spentOf(token)).toBe(COST.openai);
  });

  it('charges an abandoned stream the usage seen, else what was held', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    const abandon = async (double: LlmDouble, path: string, model: string) => {
      let release = () => {};
      const hold = new Promise<void>((resolve) => (release = resolve));
      double.next = { ...double.next, hold };
      const holding = double.holding();
      const controller = new AbortController();
      const answer = await post(path, chat(model, { stream: true }), token, controller.signal);
      await holding;
      const reserved = msat(answer.headers.get('tollway-reserved'));
      controller.abort();
      await vi.waitFor(() => expect(double.abandoned).toBe(true));
      release();
      return reserved;
    };
    // OpenAI reports usage only at the end: none was seen, what was held is charged.
    const held = await abandon(openai, '/v1/chat/completions', 'gpt-4o-mini');
    expect(await spentOf(token)).toBe(held);
    // Anthropic's message_start told the input side and one output token so far:
    // 540 × $3 + 2000 × $0.30 + 1 × $15 per million = 1620 + 600 + 15 µ$ → 2235 msat.
    await abandon(anthropic, '/v1/messages', 'claude-sonnet-4');
    expect(await spentOf(token)).toBe(held + 2235n);
  });

  it('charges nothing for an upstream error, or a JSON answer the upstream broke off', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    openai.next = { ...OPENAI_SCRIPT, errorStatus: 429 };
    const limited = await post('/v1/chat/completions', chat('gpt-4o-mini'), token);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('tollway-charged')).toBe('0');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe(
      'rate_limit_exceeded',
    );
    anthropic.next = { ...ANTHROPIC_SCRIPT, errorStatus: 529 };
    const overloaded = await post('/v1/messages', chat('claude-sonnet-4', { stream: true }), token);
    expect(overloaded.status).toBe(529);
    expect(overloaded.headers.get('tollway-charged')).toBe('0');
    await overloaded.arrayBuffer();
    openai.next = { ...OPENAI_SCRIPT, cut: true };
    const cut = await post('/v1/chat/completions', chat('gpt-4o-mini'), token);
    expect(cut.status).toBe(502);
    expect(cut.headers.get('tollway-charged')).toBe('0');
    expect(((await cut.json()) as { code: string }).code).toBe('upstream_unavailable');
    expect(await spentOf(token)).toBe(0n);
    // A stream broken off after its head left is charged as abandoned: no usage seen, what was held.
    const broken = await post('/v1/chat/completions', chat('gpt-4o-mini', { stream: true }), token);
    const held = msat(broken.headers.get('tollway-reserved'));
    await expect(broken.text()).rejects.toThrow();
    expect(await spentOf(token)).toBe(held);
  });

  it('refuses an unknown model before anything is held or sent; a default price routes it', async () => {
    reset();
    const token = await buy('/v1/chat/completions', chat('gpt-4o-mini'));
    const sent = openai.received.length + local.received.length;
    const unknown = await post('/v1/chat/completions', chat('gpt-5-turbo'), token);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({
      code: 'invalid_model',
      detail:
        'the model gpt-5-turbo is not offered here; models offered: gpt-4o-mini, claude-sonnet-4, llama-3',
    });
    const nameless = await post('/v1/chat/completions', { messages: [] }, token);
    expect(((await nameless.json()) as { code: string }).code).toBe('invalid_model');
    expect(openai.received.length + local.received.length).toBe(sent);
    expect(await spentOf(token)).toBe(0n);

    const open = await buy('/open/v1/chat/completions', chat('mistral-small'));
    const answer = await post('/open/v1/chat/completions', chat('mistral-small'), open);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('tollway-charged')).toBe(`${COST.local} msat`);
    expect(local.received.at(-1)?.body.model).toBe('mistral-small');
    await answer.arrayBuffer();
  });

  it('answers a reservation the balance cannot hold with 402 balance_exhausted and a top-up', async () => {
    reset();
    const token = await buy('/v1/messages', chat('claude-sonnet-4'));
    const first = await post('/v1/messages', chat('claude-sonnet-4'), token);
    expect(first.headers.get('tollway-charged')).toBe(`${COST.anthropic} msat`);
    await first.arrayBuffer();
    // A max_tokens whose reservation (the body's bytes at $3 and the output at $15 per million)
    // is just more than the 94 030 msat left, and less than a new balance.
    const bytes = (tokens: number) =>
      BigInt(JSON.stringify(chat('claude-sonnet-4', { max_tokens: tokens })).length);
    const left = BALANCE_MSAT - COST.anthropic;
    const tokens = Number((left - bytes(5000) * 3n) / 15n) + 1;
    expect(bytes(tokens) * 3n + BigInt(tokens) * 15n).toBeLessThan(BALANCE_MSAT);
    const dear = chat('claude-sonnet-4', { max_tokens: tokens });
    const refused = await post('/v1/messages', dear, token);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { code: string }).code).toBe('balance_exhausted');
    const [offer] = parseL402Challenges(refused.headers.get('www-authenticate') ?? '');
    expect(decodeInvoice(offer?.invoice ?? '').amountMsat).toBe(BALANCE_MSAT);
    const topUp = await payL402(refused, network.backend('agent'));
    const served = await post('/v1/messages', dear, topUp);
    expect(served.status).toBe(200);
    expect(served.headers.get('tollway-charged')).toBe(`${COST.anthropic} msat`);
    await served.arrayBuffer();
  });

  it('sells the balance to an MPP charge too, presented again for each call', async () => {
    reset();
    const unpaid = await post('/v1/chat/completions', chat('gpt-4o-mini'));
    const credential = await payMpp(unpaid, network.backend('agent'));
    for (const left of [BALANCE_MSAT - COST.openai, BALANCE_MSAT - 2n * COST.openai]) {
      const answer = await post('/v1/chat/completions', chat('gpt-4o-mini'), credential);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('tollway-charged')).toBe(`${COST.openai} msat`);
      expect(answer.headers.get('tollway-remaining')).toBe(`${left} msat`);
      await answer.arrayBuffer();
    }
  });

  it('counts tokens, calls and revenue per model, and never shows a provider key', async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const text = await (await fetch(`${gateway.url}/_tollway/metrics`, { headers: admin })).text();
    const value = (line: string) => Number(new RegExp(`^${line} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(
      value(
        'tollway_llm_tokens_total\\{service="llm",model="claude-sonnet-4",kind="cached_input"\\}',
      ),
    ).toBeGreaterThanOrEqual(2000);
    expect(value('tollway_llm_calls_total\\{service="open",model="\\(default\\)"\\}')).toBe(1);
    expect(value('tollway_llm_revenue_msat_total\\{service="open",model="\\(default\\)"\\}')).toBe(
      Number(COST.local),
    );
    const models = (await (
      await fetch(`${gateway.url}/_tollway/models`, { headers: admin })
    ).json()) as { models: Array<Record<string, unknown>> };
    expect(models.models).toContainEqual({
      service: 'open',
      model: '(default)',
      calls: 1,
      inputTokens: '176',
      cachedInputTokens: '1024',
      outputTokens: '300',
      chargedMsat: String(COST.local),
    });
    const services = await (
      await fetch(`${gateway.url}/_tollway/services`, { headers: admin })
    ).text();
    expect(services).not.toContain(OPENAI_KEY);
    expect(services).not.toContain(ANTHROPIC_KEY);
    expect(services).toContain('"x-api-key":"<redacted>"');
  });
});
