import { defineConfig } from 'vitest/config';

// Tests import the SDK's TypeScript sources (the `tollway-source` export condition), so a test run
// never depends on a stale build.
const conditions = ['tollway-source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
