import { describe, expect, it } from 'vitest';
import { createEventMeter } from './event-meter.js';

const text = new TextEncoder();
const request = {
  method: 'GET',
  path: '/ticks',
  query: new URLSearchParams(),
  headers: new Headers(),
  body: undefined,
};

function costOf(chunks: readonly string[]): bigint | undefined {
  const reading = createEventMeter('2 sat').open({ request, status: 200, headers: undefined });
  for (const chunk of chunks) reading.write(text.encode(chunk));
  return reading.costSoFar?.();
}

describe('createEventMeter', () => {
  it('charges each event from its first field line, comments and blank lines free', () => {
    expect(costOf(['data: 1\n\n', ': keep-alive\n\n', 'event: tick\ndata: 2\n\n'])).toBe(4000n);
    expect(costOf(['da'])).toBe(2000n);
    expect(costOf(['data: 1\r\n\r\ndata: 2\r\n', '\r\n', 'data: 3\n'])).toBe(6000n);
    expect(costOf(['data: a\ndata: b\n', '\ndata: c\n\n'])).toBe(4000n);
    expect(costOf(['\n\n: x\n\n'])).toBe(0n);
  });

  it('refuses a dollar price', () => {
    expect(() => createEventMeter('$0.01')).toThrow('sats or msat');
  });
});
