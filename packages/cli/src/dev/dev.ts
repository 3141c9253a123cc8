/**
 * `tollway dev`, the one-command SANDBOX: a dev Lightning node, a gateway in front of a sample API,
 * and a demo agent that pays for a request end to end while printing every step. State (balances,
 * tokens, payments, secrets) lives in `<dir>/.tollway/` (mode 0700, its files 0600), so a restart
 * keeps it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatMsat } from '@tollway/sdk';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import type { LocalChain as DevChain } from '@tollway/sdk/x402/local-chain';
import { parseGatewayConfig } from '../gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../gateway/gateway.js';
import {
  type DemoResult,
  type MeteredDemoResult,
  runDemo,
  runMeteredDemo,
  runX402Demo,
  type X402DemoResult,
} from './demo.js';
import {
  devConnection,
  onFreePort,
  privateStateDir,
  removeDevNodeAddress,
  stateDirOf,
  writeDevNodeAddress,
} from './node.js';
import { createSampleUpstream, SAMPLE_PRICES, type SampleUpstream } from './sample-upstream.js';
import { runSessionDemo, type SessionDemoResult } from './session-demo.js';

/** The dev wallets: the gateway's, the demo agent's, and the one printed for another terminal. */
const DEV_WALLETS = { gateway: 'gateway', agent: 'demo-agent', you: 'you' } as const;

/** Options of {@link startDevSandbox}. */
export interface DevSandboxOptions {
  /** The folder whose `.tollway/` holds the state. */
  dir: string;
  /** The gateway's port (0: any); the dev node's HTTP API takes the next one. Taken ports are replaced by free ones. */
  port: number;
  /** Receives the printout, one line at a time. */
  print: (line: string) => void;
  /** Receives warnings and errors of the gateway. */
  warn: (line: string) => void;
  /** Also offer x402: start a local EVM chain (anvil) with test tokens. Default false. */
  x402?: boolean;
}

/** The x402 part of a sandbox started with `x402: true`. */
interface DevSandboxX402 {
  chain: DevChain;
  /** The command that pays a dollar-priced route with x402 from another terminal. */
  fetchCommand: string;
  /** Runs the x402 demo once against the gateway. */
  demo(): Promise<X402DemoResult>;
}

/** A running sandbox; see {@link startDevSandbox}. */
export interface DevSandbox {
  gatewayUrl: string;
  /** The dashboard, signed in by its `?token=`. */
  dashboardUrl: string;
  /** Base URL of the admin JSON API. */
  adminUrl: string;
  /** The admin token (kept in `.tollway/admin-token`). */
  adminToken: string;
  /** The dev node's HTTP API. */
  nodeUrl: string;
  /** The command that pays for a request from another terminal. */
  fetchCommand: string;
  network: DevNetwork;
  /** Present when started with `x402: true`. */
  x402?: DevSandboxX402;
  /** Runs the demo agent once against the gateway. */
  demo(): Promise<DemoResult>;
  /** Makes one metered LLM call (`POST /v1/chat/completions`) with a balance it buys. */
  meteredDemo(): Promise<MeteredDemoResult>;
  /** Opens an MPP session on the metered route: calls, a top-up, a close with its refund. */
  sessionDemo(): Promise<SessionDemoResult>;
  /** Stops the gateway, the sample API and the dev node, in that order. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const DEMO_PATH = '/v1/forecast?city=Lisbon';
const METERED_PATH = '/v1/chat/completions';
const METERED_MODEL = 'tollway-mini';
const FETCH_PATH = '/v1/forecast?city=Paris';
/** `tollway fetch --max-cost` takes whole sats. */
const FETCH_MAX_COST_SAT = '100';
/** With `--x402`, `/v1/stream` is priced in dollars (20 sat at the rate below) so it offers x402. */
const X402_STREAM_PRICE = '$0.02';
const X402_USD_PER_BTC = '100000';
const X402_PATH = '/v1/stream';
const FACILITATOR_KEY_ENV = 'TOLLWAY_DEV_FACILITATOR_KEY';
/** Sessions on the services that sell a balance: closed and refunded after this long idle. */
const SESSION_IDLE_TIMEOUT = '5m';

/** Reads the admin token kept in the state folder, creating it (mode 0600) on first start. */
async function adminTokenIn(stateDir: string): Promise<string> {
  const file = join(stateDir, 'admin-token');
  try {
    await writeFile(file, `${randomBytes(24).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  return (await readFile(file, 'utf8')).trim();
}

/** What the sandbox's gateway config is made of. */
interface SandboxConfigParts {
  stateDir: string;
  port: number;
  /** The sample API's URL. */
  upstream: string;
  adminToken: string;
  /** `dev+http://…` of the gateway's wallet (the gateway itself is handed the in-process backend). */
  lightning: string;
  /** The local chain, when x402 is on. */
  chain?: DevChain;
}

/** The gateway config of the sandbox: the sample API's routes and their prices. */
function sandboxConfig({
  stateDir,
  port,
  upstream,
  adminToken,
  lightning,
  chain,
}: SandboxConfigParts) {
  const sessions = { idleTimeout: SESSION_IDLE_TIMEOUT };
  const x402 =
    chain === undefined
      ? { paywall: { sessions } }
      : {
          paywall: { sessions, usdPerBtc: X402_USD_PER_BTC },
          x402: {
            network: chain.network,
            asset: chain.asset,
            payTo: chain.accounts.payTo.address,
            facilitator: { rpcUrl: chain.rpcUrl, privateKey: `\${${FACILITATOR_KEY_ENV}}` },
          },
        };
  return parseGatewayConfig(
    {
      listen: `${HOST}:${port}`,
      dataDir: stateDir,
      lightning,
      admin: { token: adminToken },
      ...x402,
      services: [
        {
          name: 'hello',
          path: '/free',
          upstream,
          auth: 'off',
          description: 'Sample greeting (free)',
        },
        {
          name: 'forecast',
          path: '/v1/forecast',
          upstream,
          price: SAMPLE_PRICES.forecast,
          validFor: '1h',
          description: 'Sample weather forecast',
        },
        {
          // Before `chat`, whose path covers this one.
          name: 'llm',
          path: '/v1/chat/completions',
          upstream,
          balance: SAMPLE_PRICES.completions.balance,
          llm: {
            models: SAMPLE_PRICES.completions.models,
            defaultMaxTokens: SAMPLE_PRICES.completions.defaultMaxTokens,
          },
          description: 'Sample OpenAI-compatible chat, metered per token',
        },
        {
          name: 'chat',
          path: '/v1/chat',
          upstream,
          price: SAMPLE_PRICES.chat['tollway-mini'],
          pricing: [{ field: 'model', prices: SAMPLE_PRICES.chat }],
          uses: 1,
          description: 'Sample chat, priced by model',
        },
        {
          name: 'stream',
          path: '/v1/stream',
          upstream,
          price: chain === undefined ? SAMPLE_PRICES.stream : X402_STREAM_PRICE,
          validFor: '1h',
          description: 'Sample server-sent events',
        },
      ],
    },
    {
      env:
        chain === undefined ? {} : { [FACILITATOR_KEY_ENV]: chain.accounts.facilitator.privateKey },
      source: 'tollway dev',
    },
  );
}

/** Single-quotes a shell word. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Starts the sandbox: opens the dev network in `<dir>/.tollway/` (wallets `gateway`, `demo-agent`
 * and `you`, each funded with play money on first start), serves the dev node's HTTP API, the
 * sample API and the gateway, and returns their addresses.
 *
 * @example
 * ```ts
 * const sandbox = await startDevSandbox({ dir: process.cwd(), port: 8402, print: console.log, warn: console.error });
 * const result = await sandbox.demo();
 * await sandbox.close();
 * ```
 */
export async function startDevSandbox(options: DevSandboxOptions): Promise<DevSandbox> {
  const { print } = options;
  const stateDir = stateDirOf(options.dir);
  await privateStateDir(stateDir);
  const network = createDevNetwork({ path: join(stateDir, 'dev-lightning.sqlite') });
  let node: DevServer | undefined;
  let upstream: SampleUpstream | undefined;
  let gateway: Gateway | undefined;
  let chain: DevChain | undefined;
  const close = async (): Promise<void> => {
    await gateway?.close();
    await upstream?.close();
    if (node !== undefined) await removeDevNodeAddress(stateDir);
    await node?.close();
    await network.close();
    await chain?.close();
  };
  try {
    if (options.x402 === true) {
      // Loaded only here: `tollway dev` without --x402 needs neither anvil nor viem.
      const { startLocalChain } = await import('@tollway/sdk/x402/local-chain');
      chain = await startLocalChain({ accounts: 'anvil-dev' });
    }
    const devChain = chain;
    const gatewayWallet = network.openWallet(DEV_WALLETS.gateway);
    network.openWallet(DEV_WALLETS.agent);
    const you = network.openWallet(DEV_WALLETS.you);
    const adminToken = await adminTokenIn(stateDir);
    const nodePort = options.port === 0 ? 0 : options.port + 1;
    node = await onFreePort(
      nodePort,
      'dev Lightning node',
      (port) => createDevServer({ network, host: HOST, port }),
      print,
    );
    const nodeUrl = node.url;
    await writeDevNodeAddress(stateDir, { url: nodeUrl, adminToken: network.adminToken });
    const sample = await createSampleUpstream({ host: HOST });
    upstream = sample;
    const logger: GatewayLogger = {
      info: () => {},
      warn: (context, message) => options.warn(`[gateway] ${message} ${JSON.stringify(context)}`),
      error: (context, message) => options.warn(`[gateway] ${message} ${JSON.stringify(context)}`),
    };
    gateway = await onFreePort(
      options.port,
      'gateway',
      (port) =>
        createGateway({
          config: sandboxConfig({
            stateDir,
            port,
            upstream: sample.url,
            adminToken,
            lightning: devConnection(nodeUrl, gatewayWallet),
            ...(devChain === undefined ? {} : { chain: devChain }),
          }),
          baseDir: options.dir,
          env: {},
          lightning: network.backend(DEV_WALLETS.gateway),
          logger,
        }),
      print,
    );
    const gatewayUrl = gateway.url;
    return {
      gatewayUrl,
      dashboardUrl: `${gateway.adminUrl}/dashboard?token=${adminToken}`,
      adminUrl: gateway.adminUrl,
      adminToken,
      nodeUrl,
      fetchCommand: [
        'npx tollway fetch',
        shellQuote(`${gatewayUrl}${FETCH_PATH}`),
        '--wallet',
        shellQuote(devConnection(nodeUrl, you)),
        '--max-cost',
        FETCH_MAX_COST_SAT,
      ].join(' '),
      network,
      ...(devChain === undefined
        ? {}
        : {
            x402: {
              chain: devChain,
              fetchCommand: [
                'npx tollway fetch',
                shellQuote(`${gatewayUrl}${X402_PATH}`),
                '--evm-key',
                devChain.accounts.payer.privateKey,
                '--evm-asset',
                `${devChain.network}:${devChain.token}`,
                '--usd-per-btc',
                X402_USD_PER_BTC,
                '--max-cost',
                FETCH_MAX_COST_SAT,
              ].join(' '),
              demo: () =>
                runX402Demo({
                  url: `${gatewayUrl}${X402_PATH}`,
                  chain: devChain,
                  usdPerBtc: X402_USD_PER_BTC,
                  print,
                }),
            },
          }),
      demo: () =>
        runDemo({
          url: `${gatewayUrl}${DEMO_PATH}`,
          wallet: network.backend(DEV_WALLETS.agent),
          walletName: DEV_WALLETS.agent,
          print,
        }),
      meteredDemo: () =>
        runMeteredDemo({
          url: `${gatewayUrl}${METERED_PATH}`,
          model: METERED_MODEL,
          wallet: network.backend(DEV_WALLETS.agent),
          walletName: DEV_WALLETS.agent,
          print,
        }),
      sessionDemo: () =>
        runSessionDemo({
          url: `${gatewayUrl}${METERED_PATH}`,
          model: METERED_MODEL,
          wallet: network.backend(DEV_WALLETS.agent),
          walletName: DEV_WALLETS.agent,
          print,
        }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Options of {@link runDev}. */
export interface RunDevOptions extends DevSandboxOptions {
  /** Run the demo, then stop: exit 0 when it succeeded. */
  once: boolean;
  /** Aborted on Ctrl-C: the sandbox shuts down and `runDev` resolves. */
  signal: AbortSignal;
}

/**
 * Runs `tollway dev`: starts the sandbox, prints where everything is, runs the demo agent and
 * (unless `once`) keeps serving until `signal` aborts. Resolves to the exit code.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * process.once('SIGINT', () => stop.abort());
 * process.exitCode = await runDev({ dir: process.cwd(), port: 8402, once: false, signal: stop.signal, print: console.log, warn: console.error });
 * ```
 */
export async function runDev(options: RunDevOptions): Promise<number> {
  const { print, signal } = options;
  print('tollway dev: a SANDBOX with a dev Lightning node and play money. No real bitcoin moves.');
  if (options.x402 === true) {
    print('--x402: a local EVM chain (anvil, SANDBOX) with test tokens. No real USDC moves.');
  }
  print(`state: ${join(options.dir, '.tollway')} (kept across restarts; delete it to start over)`);
  print('');
  const sandbox = await startDevSandbox(options);
  try {
    print(`  gateway             ${sandbox.gatewayUrl}`);
    print(`  dev Lightning node  ${sandbox.nodeUrl}  (SANDBOX, play money)`);
    if (sandbox.x402 !== undefined) {
      const { chain } = sandbox.x402;
      print(
        `  local EVM chain     ${chain.rpcUrl}  (SANDBOX anvil pid ${chain.anvilPid}, ${chain.network})`,
      );
      print(`  test token          ${chain.token}  ("USD Coin" v2, 6 decimals, test tokens)`);
    }
    print('');
    print('  route                      price (a payment buys a token)');
    print('  GET  /free/hello           free');
    print(`  GET  /v1/forecast?city=…   ${SAMPLE_PRICES.forecast}, token valid for 1 hour`);
    print(
      `  POST /v1/chat              ${SAMPLE_PRICES.chat['tollway-mini']} for "model": "tollway-mini", ${SAMPLE_PRICES.chat['tollway-max']} for "tollway-max"; one request`,
    );
    const { completions } = SAMPLE_PRICES;
    const mini = completions.models['tollway-mini'];
    print(
      `  POST ${METERED_PATH.padEnd(22)}OpenAI-compatible, metered: a ${completions.balance} balance, each call draws its tokens (tollway-mini: ${mini.input} in, ${mini.output} out per million)`,
    );
    if (sandbox.x402 === undefined) {
      print(
        `  GET  /v1/stream            ${SAMPLE_PRICES.stream}, server-sent events, valid for 1 hour`,
      );
    } else {
      print(
        `  GET  /v1/stream            ${X402_STREAM_PRICE} (at $${X402_USD_PER_BTC}/BTC), server-sent events: an L402 token valid for 1 hour, or x402 for one request`,
      );
    }
    print('');
    print(`Demo: the agent "${DEV_WALLETS.agent}" buys GET ${DEMO_PATH} with its own dev wallet`);
    const result = await sandbox.demo();
    const agent = sandbox.network.getWallet(DEV_WALLETS.agent);
    if (result.ok) {
      print(
        `Demo done: paid ${formatMsat(result.amountMsat + result.feeMsat)}, got 200. "${DEV_WALLETS.agent}" now holds ${formatMsat(agent?.balanceMsat ?? 0n)} of play money.`,
      );
    } else {
      print(`Demo failed at step ${result.step}: ${result.message}`);
    }
    print('');
    print(
      `Metered demo: "${DEV_WALLETS.agent}" buys a balance and makes one LLM call, charged per token`,
    );
    const metered = await sandbox.meteredDemo();
    if (metered.ok) {
      print(
        `Metered demo done: bought ${formatMsat(metered.boughtMsat)}, reserved ${formatMsat(metered.reservedMsat)}, charged ${formatMsat(metered.chargedMsat)}, ${formatMsat(metered.remainingMsat)} left.`,
      );
    } else {
      print(`Metered demo failed at step ${metered.step}: ${metered.message}`);
    }
    print('');
    print(
      `Session demo: "${DEV_WALLETS.agent}" opens an MPP session on the same route: one deposit, several calls, a top-up, a refund`,
    );
    const session = await sandbox.sessionDemo();
    if (session.ok) {
      print(
        `Session demo done: deposited ${formatMsat(session.depositedMsat)}, ${session.chargedMsat.length} calls charged, ${formatMsat(session.refundMsat)} refunded, net cost ${formatMsat(session.netMsat)}.`,
      );
    } else {
      print(`Session demo failed at step ${session.step}: ${session.message}`);
    }
    let ok = result.ok && metered.ok && session.ok;
    if (sandbox.x402 !== undefined) {
      print('');
      print(
        `x402 demo: the payer ${sandbox.x402.chain.accounts.payer.address} buys GET ${X402_PATH} with test tokens (SANDBOX)`,
      );
      const paid = await sandbox.x402.demo();
      if (paid.ok) print(`x402 demo done: settled in ${paid.transaction}, got 200.`);
      else print(`x402 demo failed at step ${paid.step}: ${paid.message}`);
      ok &&= paid.ok;
    }
    if (options.once) return ok ? 0 : 1;

    const you = sandbox.network.getWallet(DEV_WALLETS.you);
    print('');
    print('Running. Open:');
    print(`  dashboard  ${sandbox.dashboardUrl}`);
    print(`  admin API  ${sandbox.adminUrl}  (send Authorization: Bearer ${sandbox.adminToken})`);
    print('');
    print(
      `Pay from another terminal, with the dev wallet "${DEV_WALLETS.you}" (${formatMsat(you?.balanceMsat ?? 0n)} of play money):`,
    );
    print(`  ${sandbox.fetchCommand}`);
    print('Another dev wallet: npx tollway wallet create <name>');
    if (sandbox.x402 !== undefined) {
      print('');
      print('Pay with x402 from another terminal (SANDBOX anvil dev key, test tokens):');
      print(`  ${sandbox.x402.fetchCommand}`);
    }
    print('');
    print(
      'Press Ctrl-C to stop. Balances, tokens and payments stay in .tollway/ for the next start.',
    );
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    print('Stopping…');
    return 0;
  } finally {
    await sandbox.close();
  }
}
