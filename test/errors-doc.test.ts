import { readFileSync } from 'node:fs';
import { errorCodes } from '@tollway/sdk/errors';
import { describe, expect, it } from 'vitest';

// docs/reference/errors.md lists each code as a table row starting with | `code` |.
const doc = readFileSync(new URL('../docs/reference/errors.md', import.meta.url), 'utf8');
const documented = [...doc.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);

describe('docs/reference/errors.md', () => {
  it('documents every TollwayError code, once, and nothing else', () => {
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(errorCodes).sort());
  });
});
