import { readFileSync } from 'node:fs';
import { errorCodes, errorStatus } from '@tollway/sdk/errors';
import { describe, expect, it } from 'vitest';

// docs/reference/errors.md lists each code as a table row: | `code` | status | meaning |.
const doc = readFileSync(new URL('../docs/reference/errors.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| `([a-z0-9_]+)` \| ([0-9]{3}) \| (.*) \|$/gm)].map(
  ([, code, status, meaning]) => ({ code: code!, status: Number(status), meaning: meaning! }),
);
const documented = rows.map((row) => row.code);

describe('docs/reference/errors.md', () => {
  it('documents every TollwayError code, once, and nothing else', () => {
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(errorCodes).sort());
  });

  it('gives each code the HTTP status and the meaning of the catalogue', () => {
    for (const { code, status, meaning } of rows) {
      const key = code as keyof typeof errorCodes;
      expect({ code, status, meaning }).toEqual({
        code,
        status: errorStatus[key],
        meaning: errorCodes[key],
      });
    }
  });
});
