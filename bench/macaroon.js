// Macaroon verification throughput: Tollway's codec against js-macaroon (npm `macaroon` 3.0.4).
// The same standard-base64 token with 3 caveats is parsed, its signature checked and its caveats
// checked by each side, every call a cold check (no cache on either side).
//
// Short rounds alternate the two sides (which goes first alternates too). A round's rate is per
// CPU-second of this process, which other processes on a shared machine move far less than
// wall-clock time; the ratio is the median of paired rounds, as in bench/engine.js.
// Imports the built package: run `npm run build -w @tollway/sdk` first. The last line printed is
// one JSON object (see bench/run-all.js).
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

const ROUNDS = 20;
const ROUND_MS = 150;

/** One round of calls in batches of 100: calls per CPU-second. */
function round(check) {
  let count = 0;
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  while (performance.now() - start < ROUND_MS) {
    for (let i = 0; i < 100; i++) check();
    count += 100;
  }
  const { user, system } = process.cpuUsage(cpuBefore);
  return count / ((user + system) / 1e6);
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
};

const oursRates = [];
const theirsRates = [];
// Round 0 warms up.
for (let i = 0; i <= ROUNDS; i++) {
  let oursRate;
  let theirsRate;
  if (i % 2 === 0) {
    oursRate = round(ours);
    theirsRate = round(theirs);
  } else {
    theirsRate = round(theirs);
    oursRate = round(ours);
  }
  if (i > 0) oursRates.push(oursRate);
  if (i > 0) theirsRates.push(theirsRate);
}
const ratio = median(oursRates.map((rate, i) => rate / theirsRates[i]));

console.table([
  { check: 'tollway parse+verify', 'ops/CPU-s (median)': Math.round(median(oursRates)) },
  { check: 'npm macaroon import+verify', 'ops/CPU-s (median)': Math.round(median(theirsRates)) },
]);
console.log(
  JSON.stringify({
    name: 'macaroon_verify',
    value: Math.round(median(oursRates)),
    unit: 'ops/CPU-s',
    baseline: Math.round(median(theirsRates)),
    ratio: Math.round(ratio * 100) / 100,
  }),
);
