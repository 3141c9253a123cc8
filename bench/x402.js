// x402 paid-request latency: Tollway's paywall (engine + node adapter + x402 offer + in-process
// self-hosted facilitator) against the official @x402/express middleware (with @x402/core's
// in-process facilitator), on the same anvil chain with the same EIP-3009 token, paid by the same
// official @x402/fetch client. One paid request = 402, sign, paid retry, verify, settle on chain
// (anvil mines at once), response. A third server is @x402/express with Tollway's self-hosted
// facilitator (called in-process through its HTTP handler, as a remote server would), which sets
// the two facilitators side by side on the same server. Requests rotate among the servers so that
// all see the same machine load; each figure is the median of its requests. The ratio is
// official/Tollway of those medians; `paired_ratio` is the median of each iteration's own
// official/Tollway (its requests run back to back), which a burst of load on a shared machine
// moves less; `facilitator_ratio` and `facilitator_paired_ratio` are the same for the official
// facilitator against Tollway's, both behind @x402/express.
//
// Imports the built package: run `npm run build -w @tollway/sdk` first. The last line printed is one
// JSON object: {"name":"x402_paid_latency","value":<tollway p50 ms>,"unit":"ms",
// "baseline":<official p50 ms>,"ratio":<official/tollway>,"paired_ratio":<median official/tollway>,
// "facilitator_ratio":<official/tollway facilitator>,"facilitator_paired_ratio":<median of those>}.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, createX402Offer } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { createFacilitatorHandler, createSelfHostedFacilitator } from '@tollway/sdk/x402';
import { x402Facilitator } from '@x402/core/facilitator';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { ExactEvmScheme as ClientScheme } from '@x402/evm/exact/client';
import { ExactEvmScheme as FacilitatorScheme } from '@x402/evm/exact/facilitator';
import { ExactEvmScheme as ServerScheme } from '@x402/evm/exact/server';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import express from 'express';
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  publicActions,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

const REQUESTS = Number(process.env.X402_BENCH_REQUESTS ?? 30);
const WARMUP = 3;
const PRICE = '10000';
const NETWORK = 'eip155:31337';
const DOMAIN = { name: 'USD Coin', version: '2' };

/** Starts anvil on a free port; resolves with its RPC URL and the child. */
async function startAnvil() {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const binary = createRequire(import.meta.url).resolve(
    `@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`,
  );
  const child = spawn(binary, ['--host', '127.0.0.1', '--port', '0', '--accounts', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const rpcUrl = await new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /Listening on (127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(`http://${match[1]}`);
    });
    child.once('exit', (code) => reject(new Error(`anvil exited (${code}): ${output}`)));
  });
  return { rpcUrl, child };
}

/** Deploys TestUSDC, funds two facilitator keys with ETH and a payer with tokens. */
async function setUpChain(rpcUrl) {
  const { contracts } = JSON.parse(
    readFileSync(new URL('../packages/sdk/contracts/artifacts.json', import.meta.url), 'utf8'),
  );
  const chain = defineChain({ ...foundry, rpcUrls: { default: { http: [rpcUrl] } } });
  const transport = http(rpcUrl);
  const client = createPublicClient({ chain, transport, pollingInterval: 50 });
  const test = createTestClient({ chain, transport, mode: 'anvil' });
  const keys = {
    deployer: generatePrivateKey(),
    tollwayFacilitator: generatePrivateKey(),
    officialFacilitator: generatePrivateKey(),
    expressTollwayFacilitator: generatePrivateKey(),
    payer: generatePrivateKey(),
    payTo: generatePrivateKey(),
  };
  for (const name of [
    'deployer',
    'tollwayFacilitator',
    'officialFacilitator',
    'expressTollwayFacilitator',
  ]) {
    await test.setBalance({
      address: privateKeyToAccount(keys[name]).address,
      value: 10n ** 20n,
    });
  }
  await test.setCode({
    address: '0xcA11bde05977b3631167028862bE2a173976CA11',
    bytecode: contracts.Multicall3Lite.deployedBytecode,
  });
  const deployer = createWalletClient({
    account: privateKeyToAccount(keys.deployer),
    chain,
    transport,
  });
  const { abi, bytecode } = contracts.TestUSDC;
  const { contractAddress: token } = await client.waitForTransactionReceipt({
    hash: await deployer.deployContract({ abi, bytecode }),
  });
  await client.waitForTransactionReceipt({
    hash: await deployer.writeContract({
      address: token,
      abi,
      functionName: 'mint',
      args: [privateKeyToAccount(keys.payer).address, 10n ** 12n],
    }),
  });
  return { chain, transport, token, keys };
}

function listen(server) {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)),
  );
}

async function tollwayServer(rpcUrl, token, keys) {
  const facilitator = await createSelfHostedFacilitator({
    rpcUrl,
    privateKey: keys.tollwayFacilitator,
  });
  const paywall = createPaywall({
    lightning: await devLightning(),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false, challengesTotal: false },
    protocols: [],
    offers: [
      createX402Offer({
        facilitator,
        payTo: privateKeyToAccount(keys.payTo).address,
        network: NETWORK,
        asset: { address: token, decimals: 6, ...DOMAIN },
        price: BigInt(PRICE),
      }),
    ],
  });
  const route = paywall.route({ service: 'weather', price: '10 sat' });
  const server = createServer(
    withPaywall(paywall, route, (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end('{"weather":"sunny"}');
    }),
  );
  return { url: `${await listen(server)}/weather`, server };
}

async function devLightning() {
  const { createDevNetwork } = await import('@tollway/sdk/lightning/dev');
  const network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  return network.backend('shop');
}

/** @x402/core's facilitator, in-process, with its own key. */
function officialFacilitator(chain, transport, keys) {
  const account = privateKeyToAccount(keys.officialFacilitator);
  const wallet = createWalletClient({ account, chain, transport, pollingInterval: 50 }).extend(
    publicActions,
  );
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (args) => wallet.readContract(args),
    verifyTypedData: (args) => wallet.verifyTypedData(args),
    writeContract: (args) => wallet.writeContract(args),
    sendTransaction: (args) => wallet.sendTransaction(args),
    waitForTransactionReceipt: (args) => wallet.waitForTransactionReceipt(args),
    getCode: (args) => wallet.getCode(args),
  });
  const facilitator = new x402Facilitator().register(NETWORK, new FacilitatorScheme(signer));
  return {
    verify: (payload, requirements) => facilitator.verify(payload, requirements),
    settle: (payload, requirements) => facilitator.settle(payload, requirements),
    getSupported: async () => facilitator.getSupported(),
  };
}

/** Tollway's self-hosted facilitator, with its own key, as @x402/core's client interface. */
async function tollwayFacilitator(rpcUrl, keys) {
  const handle = createFacilitatorHandler(
    await createSelfHostedFacilitator({ rpcUrl, privateKey: keys.expressTollwayFacilitator }),
  );
  const call = async (endpoint, init) => {
    const response = await handle(new Request(`http://facilitator/${endpoint}`, init));
    if (!response.ok) throw new Error(`facilitator /${endpoint}: ${await response.text()}`);
    return response.json();
  };
  const post = (endpoint, payload, requirements) =>
    call(endpoint, {
      method: 'POST',
      body: JSON.stringify({
        x402Version: payload.x402Version,
        paymentPayload: payload,
        paymentRequirements: requirements,
      }),
    });
  return {
    verify: (payload, requirements) => post('verify', payload, requirements),
    settle: (payload, requirements) => post('settle', payload, requirements),
    getSupported: () => call('supported'),
  };
}

async function officialServer(facilitator, token, keys) {
  const resourceServer = new x402ResourceServer(facilitator).register(NETWORK, new ServerScheme());
  const app = express();
  app.use(
    paymentMiddleware(
      {
        'GET /weather': {
          accepts: {
            scheme: 'exact',
            network: NETWORK,
            payTo: privateKeyToAccount(keys.payTo).address,
            price: { amount: PRICE, asset: token, extra: DOMAIN },
            maxTimeoutSeconds: 60,
          },
          description: 'weather',
          mimeType: 'application/json',
        },
      },
      resourceServer,
    ),
  );
  app.get('/weather', (_req, res) => res.json({ weather: 'sunny' }));
  const server = createServer(app);
  return { url: `${await listen(server)}/weather`, server };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const { rpcUrl, child } = await startAnvil();
try {
  const { chain, transport, token, keys } = await setUpChain(rpcUrl);
  const tollway = await tollwayServer(rpcUrl, token, keys);
  const official = await officialServer(officialFacilitator(chain, transport, keys), token, keys);
  const expressTollway = await officialServer(await tollwayFacilitator(rpcUrl, keys), token, keys);
  const client = new x402Client();
  client.register('eip155:*', new ClientScheme(privateKeyToAccount(keys.payer)));
  client.setSpendControls({ allowedAssets: [{ network: NETWORK, asset: token }] });
  const pay = wrapFetchWithPayment(fetch, client);
  const servers = [
    ['tollway', tollway],
    ['official', official],
    ['expressTollway', expressTollway],
  ];
  const times = { tollway: [], official: [], expressTollway: [] };
  const pairs = { server: [], facilitator: [] };
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    const elapsedOf = {};
    // Each server goes first, second and third in turn.
    for (const [name, target] of [...servers.slice(i % 3), ...servers.slice(0, i % 3)]) {
      const start = performance.now();
      const response = await pay(target.url);
      await response.text();
      const elapsed = performance.now() - start;
      if (response.status !== 200) throw new Error(`${name} answered ${response.status}`);
      if (i >= WARMUP) times[name].push(elapsed);
      elapsedOf[name] = elapsed;
    }
    if (i >= WARMUP) {
      pairs.server.push(elapsedOf.official / elapsedOf.tollway);
      pairs.facilitator.push(elapsedOf.official / elapsedOf.expressTollway);
    }
  }
  const tollwayP50 = median(times.tollway);
  const officialP50 = median(times.official);
  const expressTollwayP50 = median(times.expressTollway);
  console.log(
    `x402 paid request, p50 of ${REQUESTS}: Tollway ${tollwayP50.toFixed(1)} ms, ` +
      `@x402/express ${officialP50.toFixed(1)} ms, median of paired ratios ` +
      `${median(pairs.server).toFixed(3)}; @x402/express with Tollway's facilitator ` +
      `${expressTollwayP50.toFixed(1)} ms, median of paired ratios ` +
      `${median(pairs.facilitator).toFixed(3)}`,
  );
  for (const [, server] of servers) server.server.close();
  console.log(
    JSON.stringify({
      name: 'x402_paid_latency',
      value: Number(tollwayP50.toFixed(2)),
      unit: 'ms',
      baseline: Number(officialP50.toFixed(2)),
      ratio: Number((officialP50 / tollwayP50).toFixed(3)),
      paired_ratio: Number(median(pairs.server).toFixed(3)),
      facilitator_ratio: Number((officialP50 / expressTollwayP50).toFixed(3)),
      facilitator_paired_ratio: Number(median(pairs.facilitator).toFixed(3)),
    }),
  );
} finally {
  child.kill('SIGKILL');
}
