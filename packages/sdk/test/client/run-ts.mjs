// Runs a TypeScript file of this repository in a plain Node process (Vite's module runner compiles
// it), so tests can start real child processes over the SDK's sources: node run-ts.mjs <file.ts> …
import { resolve } from 'node:path';
import { runnerImport } from 'vite';

await runnerImport(resolve(process.argv[2]));
