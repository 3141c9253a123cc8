import { describe, expect, it } from 'vitest';
import { createSingleFlight } from './single-flight.js';

describe('createSingleFlight', () => {
  it('runs one flight per origin and scope and lets the others share it', async () => {
    const flights = createSingleFlight<number>();
    let runs = 0;
    let release: (value: number) => void = () => undefined;
    const work = () => {
      runs += 1;
      return new Promise<number>((resolve) => {
        release = resolve;
      });
    };
    const first = flights.run('https://a', '/', work);
    const second = flights.run('https://a', '/', work);
    const otherScope = flights.run('https://a', '/x', async () => 7);
    const otherOrigin = flights.run('https://b', '/', async () => 8);
    expect([first.leader, second.leader, otherScope.leader, otherOrigin.leader]).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(second.promise).toBe(first.promise);
    release(42);
    await expect(Promise.all([first.promise, second.promise])).resolves.toEqual([42, 42]);
    expect(runs).toBe(1);
    const after = flights.run('https://a', '/', async () => 1);
    expect(after.leader).toBe(true);
    await after.promise;
  });

  it('waits for flights whose scope covers a path, failed ones included', async () => {
    const flights = createSingleFlight<number>();
    const events: string[] = [];
    let fail: (error: Error) => void = () => undefined;
    const failing = flights.run(
      'https://a',
      '/api',
      () => new Promise<number>((_, reject) => (fail = reject)),
    );
    failing.promise.catch(() => events.push('flight failed'));
    const waiting = flights.settled('https://a', '/api/v1').then(() => events.push('settled'));
    await flights.settled('https://a', '/apix');
    await flights.settled('https://b', '/api');
    events.push('unrelated paths did not wait');
    fail(new Error('no'));
    await waiting;
    expect(events).toEqual(['unrelated paths did not wait', 'flight failed', 'settled']);
  });
});
