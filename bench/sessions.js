// What a call costs an agent that pays per call, by how it pays, on one paywall engine (node
// adapter, SQLite store, the dev Lightning node, anvil for x402), in one run:
//   (s) an MPP lightning session call: a `bearer` credential drawing from the deposit — a hold and
//       a settlement in the store per call;
//   (l) an L402 call with a cached, time-bound token: no store I/O on the hot path;
//   (x) an x402 `exact` call: a 402, an EIP-3009 authorization signed by the official
//       `@x402/fetch` client, verified and settled on anvil by Tollway's self-hosted facilitator.
// Each is measured one call at a time (p50/p99 latency, in alternating rounds so the machine's
// load hits all alike), and the two that need no payment per call also at 10 concurrent calls
// (throughput). x402 settles each call on chain, so it is measured one at a time only.
//
// Imports the built packages: run `npm run build` first. The last line printed is one JSON object:
// {"name":"session_call_latency","value":<session p50 ms>,"unit":"ms","baseline":<x402 exact p50
// ms>,"ratio":<x402 p50 / session p50>, ...the other figures}.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseL402Challenges } from '@tollway/sdk/l402';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import {
  decodeSessionRequest,
  formatPaymentCredential,
  parsePaymentChallenges,
} from '@tollway/sdk/mpp';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, createX402Offer } from '@tollway/sdk/server';
import { createSqliteStore } from '@tollway/sdk/stores/sqlite';
import { createSelfHostedFacilitator } from '@tollway/sdk/x402';
import { startLocalChain } from '@tollway/sdk/x402/local-chain';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { privateKeyToAccount } from 'viem/accounts';

const ROUNDS = 5;
const CALLS_PER_ROUND = 40;
const X402_CALLS_PER_ROUND = 6;
const CONCURRENCY = 10;
const THROUGHPUT_CALLS = 600;

const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-sessions-'));
const network = createDevNetwork({ path: ':memory:' });
network.openWallet('shop', { balanceMsat: 0n });
network.openWallet('agent');
const agent = network.backend('agent');
const chain = await startLocalChain({ accounts: 'anvil-dev' });
const facilitator = await createSelfHostedFacilitator({
  rpcUrl: chain.rpcUrl,
  privateKey: chain.accounts.facilitator.privateKey,
});
const store = createSqliteStore({ path: join(dir, 'store.sqlite') });
const paywall = createPaywall({
  lightning: network.backend('shop'),
  store,
  secrets: [createMasterSecret()],
  rateLimits: { challenges: false, challengesTotal: false },
  sessions: { idleTimeout: '5m' },
  offers: [
    createX402Offer({
      facilitator,
      payTo: chain.accounts.payTo.address,
      network: chain.network,
      asset: chain.asset,
      // 0.001 USDC a call.
      price: 1000n,
    }),
  ],
});
const answer = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
};
const routes = {
  '/session': paywall.route({ service: 'session', price: '1 sat', balance: '100000 sat' }),
  '/l402': paywall.route({ service: 'l402', price: '1 sat', validFor: '1h' }),
  '/x402': paywall.route({ service: 'x402', price: '1 sat' }),
};
const handlers = Object.fromEntries(
  Object.entries(routes).map(([path, route]) => [path, withPaywall(paywall, route, answer)]),
);
const server = createServer((req, res) => void handlers[req.url.split('?')[0]](req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

/** Opens a session on /session: pays its deposit, sends `open`; the bearer credential. */
async function openSession() {
  const offer = await fetch(`${base}/session`);
  await offer.body?.cancel();
  const challenge = parsePaymentChallenges(offer.headers.get('www-authenticate') ?? '').find(
    (c) => c.intent === 'session',
  );
  const request = decodeSessionRequest(challenge.request);
  const { preimage } = await agent.payInvoice({ paymentRequest: request.depositInvoice });
  const { paymentRequest: returnInvoice } = await agent.createInvoice({
    amountMsat: 0n,
    expirySeconds: 86_400,
  });
  const opened = await fetch(`${base}/session`, {
    headers: {
      authorization: formatPaymentCredential({
        challenge,
        payload: { action: 'open', preimage, returnInvoice },
      }),
    },
  });
  if (opened.status !== 200) throw new Error(`open got ${opened.status}`);
  await opened.body?.cancel();
  return formatPaymentCredential({
    challenge,
    payload: { action: 'bearer', sessionId: request.paymentHash, preimage },
  });
}

/** Buys an L402 token for /l402; its credential. */
async function buyToken() {
  const offer = await fetch(`${base}/l402`);
  await offer.body?.cancel();
  const challenge = parseL402Challenges(offer.headers.get('www-authenticate') ?? '').find(
    (c) => c.scheme === 'L402',
  );
  const { preimage } = await agent.payInvoice({ paymentRequest: challenge.invoice });
  return `L402 ${challenge.macaroon}:${preimage}`;
}

const sessionCredential = await openSession();
const l402Credential = await buyToken();
const payer = privateKeyToAccount(chain.accounts.payer.privateKey);
const client = new x402Client().register(chain.network, new ExactEvmScheme(payer));
client.setSpendControls({ allowedAssets: [{ network: chain.network, asset: chain.token }] });
const x402Fetch = wrapFetchWithPayment(fetch, client);

const calls = {
  session: () => fetch(`${base}/session`, { headers: { authorization: sessionCredential } }),
  l402: () => fetch(`${base}/l402`, { headers: { authorization: l402Credential } }),
  x402: () => x402Fetch(`${base}/x402`),
};

/** Makes one call; its wall time in ms. Throws unless it is answered 200. */
async function timed(call) {
  const started = performance.now();
  const response = await call();
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`got ${response.status}`);
  return performance.now() - started;
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Calls/s of `count` calls, `CONCURRENCY` at a time. */
async function throughput(call, count) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) await timed(call);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

const latencies = { session: [], l402: [], x402: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of ['session', 'l402', 'x402']) {
    const count = kind === 'x402' ? X402_CALLS_PER_ROUND : CALLS_PER_ROUND;
    for (let i = 0; i < count; i++) latencies[kind].push(await timed(calls[kind]));
  }
}
const perSecond = { session: [], l402: [] };
for (let round = 0; round < 3; round++) {
  for (const kind of ['session', 'l402']) {
    perSecond[kind].push(await throughput(calls[kind], THROUGHPUT_CALLS / 3));
  }
}
const figure = (kind) => ({
  p50: Number(quantile(latencies[kind], 0.5).toFixed(2)),
  p99: Number(quantile(latencies[kind], 0.99).toFixed(2)),
});
const best = (kind) => Math.round(Math.max(...perSecond[kind]));
const figures = { session: figure('session'), l402: figure('l402'), x402: figure('x402') };
for (const [kind, { p50, p99 }] of Object.entries(figures)) {
  const rate = kind in perSecond ? `  ${best(kind)} calls/s at ${CONCURRENCY} concurrent` : '';
  console.log(`${kind.padEnd(8)} p50 ${p50} ms  p99 ${p99} ms${rate}`);
}

server.close();
await paywall.close();
await store.close();
await network.close();
await chain.close();
rmSync(dir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    name: 'session_call_latency',
    value: figures.session.p50,
    unit: 'ms',
    baseline: figures.x402.p50,
    ratio: Number((figures.x402.p50 / figures.session.p50).toFixed(2)),
    session_p99_ms: figures.session.p99,
    l402_cached_p50_ms: figures.l402.p50,
    l402_cached_p99_ms: figures.l402.p99,
    x402_exact_p99_ms: figures.x402.p99,
    session_calls_per_s: best('session'),
    l402_cached_calls_per_s: best('l402'),
  }),
);
