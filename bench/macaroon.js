// Macaroon verification throughput: Tollway's codec against js-macaroon (npm `macaroon` 3.0.4).
// The same standard-base64 token with 3 caveats is parsed, its signature checked and its caveats
// checked by each side. Imports the built package: run `npm run build -w @tollway/sdk` first.
// The last line printed is one JSON object (see bench/run-all.js).
import { createRequire } from 'node:module';
import {
  createMacaroon,
  encodeIdentifier,
  firstPartyCaveats,
  formatMacaroon,
  parseMacaroon,
  verifyCaveats,
  verifyMacaroonSignature,
} from '@tollway/sdk/l402';
import { Bench } from 'tinybench';

const jsMacaroon = createRequire(import.meta.url)('macaroon');

const rootKey = new Uint8Array(32).fill(0x42);
const token = formatMacaroon(
  createMacaroon({
    rootKey,
    identifier: encodeIdentifier({
      version: 0,
      paymentHash: new Uint8Array(32).fill(1),
      tokenId: new Uint8Array(32).fill(2),
    }),
    caveats: [
      'services=forecast:0',
      'forecast_capabilities=daily,hourly',
      'forecast_valid_until=4102444800',
    ],
  }),
);
const now = Date.now() / 1000;
const request = { service: 'forecast', capability: 'daily', now };

function ours() {
  const m = parseMacaroon(token);
  if (!verifyMacaroonSignature(m, rootKey)) throw new Error('ours: bad signature');
  if (!verifyCaveats(firstPartyCaveats(m), request).ok) throw new Error('ours: caveats');
}

// The same three checks, written plainly for js-macaroon's per-caveat callback.
function checkCaveat(caveat) {
  const index = caveat.indexOf('=');
  const condition = caveat.slice(0, index);
  const value = caveat.slice(index + 1);
  if (condition === 'services') {
    return value.split(',').some((s) => s.split(':')[0] === 'forecast') ? null : 'service';
  }
  if (condition === 'forecast_capabilities') {
    return value.split(',').includes('daily') ? null : 'capability';
  }
  if (condition === 'forecast_valid_until') return now < Number(value) ? null : 'expired';
  return 'unknown caveat';
}

function theirs() {
  jsMacaroon.importMacaroon(token).verify(rootKey, checkCaveat);
}

ours();
theirs();

const bench = new Bench({ time: 2000, warmupTime: 300 });
bench.add('tollway parse+verify', ours).add('npm macaroon import+verify', theirs);
await bench.run();
console.table(bench.table());

const [oursTask, theirsTask] = bench.tasks;
const value = oursTask?.result?.throughput.mean ?? 0;
const baseline = theirsTask?.result?.throughput.mean ?? 0;
console.log(
  JSON.stringify({
    name: 'macaroon_verify',
    value: Math.round(value),
    unit: 'ops/s',
    baseline: Math.round(baseline),
    ratio: Math.round((value / baseline) * 100) / 100,
  }),
);
