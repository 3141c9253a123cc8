// Runs every benchmark in bench/ (each a standalone script) one after another and prints the JSON
// lines each ends with (most print one; bench/cli.js prints one per measurement). Benchmarks import
// the built package: run `npm run build` first.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const only = process.argv[2];
const scripts = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run-all.js' && (!only || f.includes(only)))
  .sort();
const results = [];
for (const script of scripts) {
  process.stderr.write(`bench/${script} …\n`);
  const run = spawnSync(process.execPath, [new URL(script, here).pathname], { encoding: 'utf8' });
  if (run.status !== 0) {
    process.stderr.write(run.stderr);
    results.push({ name: script, error: `exit ${run.status}` });
    continue;
  }
  const lines = run.stdout.trim().split('\n');
  const json = lines.filter((line) => line.startsWith('{"name":'));
  results.push(...(json.length > 0 ? json : lines.slice(-1)).map((line) => JSON.parse(line)));
}
for (const r of results) console.log(JSON.stringify(r));
