#!/usr/bin/env node
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
// The command has finished and closed what it opened: leave now instead of waiting for idle
// keep-alive connections (to the paid API, to the wallet) to time out. Only output still being
// written is waited for: an empty write calls back once everything written before it is out.
await Promise.all(
  [process.stdout, process.stderr].map((stream) => new Promise((done) => stream.write('', done))),
);
process.exit();
