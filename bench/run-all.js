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
  const started = performance.now();
  const run = spawnSync(process.execPath, [new URL(script, here).pathname], { encoding: 'utf8' });
  const seconds = Math.round((performance.now() - started) / 1000);
  process.stderr.write(`bench/${script}: ${seconds} s\n`);
  if (run.status !== 0) {
    process.stderr.write(run.stderr);
    results.push({ name: script, error: `exit ${run.status}` });
    continue;
  }
  const json = run.stdout.split('\n').filter((line) => line.startsWith('{'));
  if (json.length === 0) {
    results.push({ name: script, error: 'printed no JSON line' });
    continue;
  }
  const named = json.filter((line) => line.startsWith('{"name":'));
  results.push(...(named.length > 0 ? named : json.slice(-1)).map((line) => JSON.parse(line)));
}
for (const r of results) console.log(JSON.stringify(r));
