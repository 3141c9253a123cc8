import { executionAsyncResource } from 'node:async_hooks';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { keepTickShape, keptTickEntry } from './tick-shape.js';

function nextTickEntry(): Promise<object> {
  return new Promise((resolve) => process.nextTick(() => resolve(executionAsyncResource())));
}

describe('keepTickShape', () => {
  it('keeps an entry of the nextTick queue, of the hidden class the entries made later get', async () => {
    keepTickShape();
    const later = await nextTickEntry();
    const kept = keptTickEntry();
    expect(kept).toBeDefined();
    expect(kept).not.toBe(later);
    expect(Reflect.ownKeys(kept as object)).toEqual(Reflect.ownKeys(later));
    // V8's own comparison of hidden classes, allowed for the functions compiled after this.
    setFlagsFromString('--allow-natives-syntax');
    const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)');
    expect(haveSameMap(kept, later)).toBe(true);
    expect(haveSameMap(kept, {})).toBe(false);
  });

  it('keeps one entry, however often it is called', async () => {
    keepTickShape();
    await nextTickEntry();
    const kept = keptTickEntry();
    keepTickShape();
    await nextTickEntry();
    expect(keptTickEntry()).toBe(kept);
  });
});
