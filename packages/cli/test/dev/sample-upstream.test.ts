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
