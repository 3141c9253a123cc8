import { defineConfig } from 'vitest/config';

// Tests import the SDK's TypeScript sources (the `tollway-source` export condition), so a test run
// never depends on a stale build.
const conditions = ['tollway-source', 'module', 'node', 'development|production'];
// Vitest hands the SSR conditions to Node (`--conditions`), which then loads dependencies by
// them too. `module` is a bundlers' condition: @opentelemetry/api's build under it imports files
// without extensions, which Node cannot load.
const nodeConditions = conditions.filter((condition) => condition !== 'module');

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: nodeConditions, externalConditions: nodeConditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
