import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSampleUpstream, type SampleUpstream } from '../../src/dev/sample-upstream.js';

/** The JSON body of a response, as the loose record a test reads fields of. */
async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

describe('the sample upstream API', () => {
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await createSampleUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it('greets on the free route', async () => {
    const res = await fetch(`${upstream.url}/free/hello`);
    expect(res.status).toBe(200);
    expect((await json(res)).message).toContain('free');
  });

  it('forecasts the same weather for the same city, and asks for a city', async () => {
    const one = await json(await fetch(`${upstream.url}/v1/forecast?city=Oslo`));
    const two = await json(await fetch(`${upstream.url}/v1/forecast?city=oslo`));
    expect(one.city).toBe('Oslo');
    expect(one.days).toHaveLength(3);
    expect(one.days).toEqual(two.days);
    expect((await fetch(`${upstream.url}/v1/forecast`)).status).toBe(400);
  });

  it('answers a chat in the model it was asked for, and refuses a body without one', async () => {
    const post = (body: string) =>
      fetch(`${upstream.url}/v1/chat`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    const res = await post(JSON.stringify({ model: 'tollway-max', prompt: 'three little words' }));
    expect(await res.json()).toEqual({
      model: 'tollway-max',
      reply: '(tollway-max) You wrote 3 words. Thanks!',
    });
    expect((await post('{"prompt":"no model"}')).status).toBe(400);
    expect((await post('not json')).status).toBe(400);
  });

  it('completes chats as OpenAI does, counting usage from the prompt and max_tokens', async () => {
    const complete = (body: Record<string, unknown>) =>
      fetch(`${upstream.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // 2 messages: ceil(12 / 4) + 4 and ceil(5 / 4) + 4 tokens.
    const messages = [
      { role: 'system', content: 'Be terse, ok' },
      { role: 'user', content: 'Hello' },
    ];
    const answer = await json(await complete({ model: 'tollway-mini', max_tokens: 5, messages }));
    expect(answer).toMatchObject({
      object: 'chat.completion',
      model: 'tollway-mini',
      choices: [
        {
          message: { role: 'assistant', content: 'This is the sample API' },
          finish_reason: 'length',
        },
      ],
      usage: { prompt_tokens: 13, completion_tokens: 5, total_tokens: 18 },
    });

    const stream = async (extra: Record<string, unknown>) => {
      const res = await complete({
        model: 'tollway-max',
        max_tokens: 3,
        messages,
        stream: true,
        ...extra,
      });
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      return (await res.text()).split('\n\n').filter(Boolean);
    };
    const plain = await stream({});
    expect(plain.at(-1)).toBe('data: [DONE]');
    expect(plain.join('')).not.toContain('usage');
    const text = plain
      .slice(0, -1)
      .map(
        (event) =>
          JSON.parse(event.slice('data: '.length)) as {
            choices: Array<{ delta: { content?: string } }>;
          },
      )
      .map((chunk) => chunk.choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toBe('This is the');
    const counted = await stream({ stream_options: { include_usage: true } });
    expect(JSON.parse((counted.at(-2) ?? '').slice('data: '.length))).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 13, completion_tokens: 3, total_tokens: 16 },
    });
    expect(counted[1]).toContain('"usage":null');

    const refused = await complete({ messages });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe(
      'invalid_request_error',
    );
  });

  it('streams five server-sent events, then an end event', async () => {
    const res = await fetch(`${upstream.url}/v1/stream`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.match(/^data: \{"tick":\d,"of":5\}$/gm)).toHaveLength(5);
    expect(text).toContain('event: end');
  });

  it('lists its routes on a 404', async () => {
    const res = await fetch(`${upstream.url}/nope`);
    expect(res.status).toBe(404);
    expect((await json(res)).routes).toContain('POST /v1/chat');
  });
});
