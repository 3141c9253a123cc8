// `tollway fetch` in process against an independent challenge server, paying through a dev
// Lightning node over HTTP, with the agent state in a real SQLite file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedRate } from '@tollway/sdk';
import { createSqliteClientStore } from '@tollway/sdk/client';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall, createX402Offer } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { createSelfHostedFacilitator } from '@tollway/sdk/x402';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../sdk/test/adapters/conformance.js';
import { startTestChain } from '../../sdk/test/support/chain.js';
import {
  type ChallengeServer,
  startChallengeServer,
} from '../../sdk/test/support/challenge-servers.js';
import { main } from '../src/main.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-fetch-'));
let network: DevNetwork;
let devServer: DevServer;
let server: ChallengeServer;

beforeAll(async () => {
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: 0n });
  devServer = await createDevServer({ network });
  server = await startChallengeServer(network.backend('shop'));
});

afterAll(async () => {
  await server.close();
  await devServer.close();
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

let agents = 0;
/** A funded dev wallet and a fresh agent database. */
function agent(balanceMsat = 1_000_000n) {
  const name = `cli-agent${++agents}`;
  const { token } = network.openWallet(name, { balanceMsat });
  return {
    args: [
      '--wallet',
      `dev+${devServer.url}?wallet=${name}&token=${token}`,
      '--db',
      join(dir, `${name}.sqlite`),
    ],
    db: join(dir, `${name}.sqlite`),
    spent: () => balanceMsat - (network.getWallet(name)?.balanceMsat ?? 0n),
  };
}

describe('tollway fetch', () => {
  it('pays a 402, prints one JSON object with --json, and keeps the token for the next run', async () => {
    const a = agent();
    const url = `${server.url}/aperture/report?price=10`;
    const first = await runCli('fetch', url, ...a.args, '--json');
    expect(first.code).toBe(0);
    const printed = JSON.parse(first.stdout);
    expect(printed).toMatchObject({
      status: 200,
      headers: { 'content-type': 'application/json' },
      payment: { protocol: 'l402', amountMsat: '10000', feeMsat: '0' },
    });
    expect(JSON.parse(printed.body)).toMatchObject({ paid: 'l402' });
    expect(a.spent()).toBe(10_000n);

    const second = await runCli('fetch', url, ...a.args, '-v', '--json');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout).payment).toBeNull();
    expect(second.stderr).toContain('* sending the cached l402 credential');
    expect(second.stderr).not.toContain('< 402');
    expect(a.spent()).toBe(10_000n);

    const store = createSqliteClientStore({ path: a.db });
    expect((await store.list()).map((e) => [e.status, e.amountMsat])).toEqual([
      ['succeeded', 10_000n],
    ]);
    await store.close();
  });

  it('prints the body on stdout wherever it goes, like curl; what it paid and each step (-v) on stderr', async () => {
    const a = agent();
    const { code, stdout, stderr } = await runCli(
      'fetch',
      `${server.url}/mpp/body?price=3`,
      ...a.args,
      '-v',
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ form: 'mpp', paid: 'mpp' });
    const steps = stderr.trim().split('\n');
    expect(steps[0]).toBe(`> GET ${server.url}/mpp/body?price=3`);
    expect(steps[1]).toBe('< 402 payment required');
    expect(steps[2]).toMatch(/^\* offer mpp 3 sat \(regtest invoice, expires /);
    expect(steps.slice(3)).toEqual([
      '* paying mpp 3 sat',
      expect.stringMatching(/^\* paid 3 sat \+ 0 sat fee with mpp \(payment hash [0-9a-f]{64}\)$/),
      '< 200 on retry',
      '< 200 OK',
      expect.stringMatching(
        /^tollway fetch: paid 3 sat \+ 0 sat fee with mpp \(payment hash [0-9a-f]{64}\)$/,
      ),
    ]);
    // A body that is not text is written byte for byte.
    const bytes = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe]);
    const binary = await listen(createServer((_req, res) => res.end(bytes)));
    const written: Uint8Array[] = [];
    const exit = await main(['fetch', binary.url, ...a.args], {
      stdout: (output) => written.push(typeof output === 'string' ? Buffer.from(output) : output),
      stderr: () => undefined,
    });
    await binary.close();
    expect(exit).toBe(0);
    expect(Buffer.concat(written)).toEqual(Buffer.from(bytes));
  });

  it('--prefer picks the protocol to pay by, whatever the default order', async () => {
    const a = agent();
    const mpp = await runCli(
      'fetch',
      `${server.url}/multi/p1?price=2`,
      ...a.args,
      '--prefer',
      'mpp',
      '--json',
    );
    expect(JSON.parse(mpp.stdout)).toMatchObject({ status: 200, payment: { protocol: 'mpp' } });
    const l402 = await runCli('fetch', `${server.url}/multi/p2?price=2`, ...a.args, '--json');
    expect(JSON.parse(l402.stdout)).toMatchObject({ status: 200, payment: { protocol: 'l402' } });
    const quote = await runCli(
      'fetch',
      `${server.url}/multi/p3?price=2`,
      ...a.args,
      '--prefer',
      'mpp,l402',
      '--no-pay',
      '--json',
    );
    expect(JSON.parse(quote.stdout).choice).toMatchObject({ protocol: 'mpp' });
    const unknown = await runCli('fetch', `${server.url}/multi/p4`, ...a.args, '--prefer', 'cashu');
    expect([unknown.code, unknown.stderr]).toEqual([
      64,
      expect.stringContaining('--prefer takes l402, mpp, mpp-session, x402'),
    ]);
    const noKey = await runCli('fetch', `${server.url}/multi/p4`, ...a.args, '--prefer', 'x402');
    expect([noKey.code, noKey.stderr]).toEqual([
      64,
      expect.stringContaining('--prefer x402: give --evm-key'),
    ]);
  });

  it('--prefer mpp-session opens a session the next run draws on; --close-sessions collects its refund', async () => {
    const paywall = createPaywall({
      lightning: network.backend('shop'),
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      rateLimits: { challenges: false },
      logger: { warn: () => undefined, error: () => undefined },
      sessions: { idleTimeout: 600 },
    });
    const route = paywall.route({ service: 'calls', price: '10 sat', balance: '50 sat' });
    const api = await listen(
      createServer(
        withPaywall(paywall, route, (_req, res) => {
          res.end('ok');
        }),
      ),
    );
    try {
      const a = agent();
      const url = `${api.url}/calls`;
      const run = (...extra: string[]) =>
        runCli('fetch', url, ...a.args, '--prefer', 'mpp-session', '--json', ...extra);
      const first = JSON.parse((await run()).stdout);
      expect(first).toMatchObject({
        status: 200,
        body: 'ok',
        payment: { protocol: 'mpp-session' },
      });
      expect(first).not.toHaveProperty('closedSessions');
      // The deposit, 50 sat; the session stays open for the next run.
      expect(a.spent()).toBe(50_000n);
      const second = JSON.parse((await run()).stdout);
      expect(second).toMatchObject({ status: 200, payment: null });
      expect(a.spent()).toBe(50_000n);
      const last = JSON.parse((await run('--close-sessions')).stdout);
      expect(last.closedSessions).toEqual([
        expect.objectContaining({
          origin: api.url,
          refundMsat: '20000',
          refundStatus: 'succeeded',
        }),
      ]);
      expect(a.spent()).toBe(30_000n);
      const store = createSqliteClientStore({ path: a.db });
      expect((await store.list({ kind: 'refund' })).map((entry) => entry.amountMsat)).toEqual([
        20_000n,
      ]);
      await store.close();
      // Unless named, a session is not what tollway fetch pays.
      const b = agent();
      const plain = await runCli('fetch', url, ...b.args, '--json');
      expect(JSON.parse(plain.stdout).payment).toMatchObject({ protocol: 'l402' });
    } finally {
      await api.close();
    }
  });

  it('sends -X, -H and -d @file, and replays the body after paying; -o writes the body to a file', async () => {
    const a = agent();
    const data = join(dir, 'question.json');
    writeFileSync(data, '{"q":"forecast"}');
    const out = join(dir, 'answer.json');
    const { code, stdout } = await runCli(
      'fetch',
      `${server.url}/spec/ask`,
      ...a.args,
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/json',
      '-d',
      `@${data}`,
      '-o',
      out,
      '--json',
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ status: 200, bodyFile: out });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({
      method: 'PUT',
      contentType: 'application/json',
      body: '{"q":"forecast"}',
      paid: 'l402',
    });
  });

  it('--no-pay prints the offers and what would be paid, and pays nothing', async () => {
    const a = agent();
    const url = `${server.url}/multi/quote?price=12`;
    const json = await runCli('fetch', url, ...a.args, '--no-pay', '--json');
    expect(json.code).toBe(0);
    const quote = JSON.parse(json.stdout);
    expect(quote.status).toBe(402);
    expect(quote.offers.map((o: { protocol: string }) => o.protocol)).toEqual([
      'l402',
      'mpp',
      'x402',
    ]);
    expect(quote.choice).toMatchObject({
      protocol: 'l402',
      amountMsat: '12000',
      network: 'regtest',
    });
    expect(quote.budget).toEqual({ ok: true });

    const text = await runCli('fetch', url, ...a.args, '--no-pay');
    expect(text.stdout).toMatch(
      /offer {4}l402 12 sat \(regtest invoice, expires .*\) {2}<- would pay/,
    );
    expect(text.stdout).toContain('skipped  x402: capability_unsupported');

    const tooDear = await runCli('fetch', url, ...a.args, '--no-pay', '--max-cost', '5', '--json');
    expect(tooDear.code).toBe(2);
    expect(JSON.parse(tooDear.stdout).budget).toMatchObject({ ok: false, code: 'over_price' });
    expect(a.spent()).toBe(0n);
  });

  it('exits 2 when the price is over --max-cost, and pays nothing', async () => {
    const a = agent();
    const { code, stdout, stderr } = await runCli(
      'fetch',
      `${server.url}/aperture/dear?price=11`,
      ...a.args,
      '--max-cost',
      '10',
      '--json',
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/^tollway fetch: over_price: /);
    expect(JSON.parse(stdout)).toMatchObject({ error: { code: 'over_price' } });
    expect(a.spent()).toBe(0n);
  });

  it('exits 3 when the payment fails or no offer can be paid', async () => {
    const poor = agent(5_000n);
    const failed = await runCli('fetch', `${server.url}/aperture/poor?price=10`, ...poor.args);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toContain('payment_failed');

    const a = agent();
    const x402 = await runCli('fetch', `${server.url}/x402v2/only`, ...a.args);
    expect(x402.code).toBe(3);
    expect(x402.stderr).toContain('no_payable_offer');

    const noWallet = await runCli(
      'fetch',
      `${server.url}/aperture/x`,
      '--db',
      join(dir, 'nowallet.sqlite'),
    );
    expect(noWallet.code).toBe(3);
    expect(noWallet.stderr).toContain('no wallet: give --wallet');
  });

  it('exits 3 naming the wallet fault when its token is refused or it cannot be reached', async () => {
    const db = ['--db', join(dir, 'broken-wallet.sqlite')];
    const { token } = network.openWallet('cli-broken');
    for (const [wallet, code] of [
      [`dev+${devServer.url}?wallet=cli-broken&token=${'00'.repeat(32)}`, 'unauthorized'],
      [`dev+http://127.0.0.1:1?wallet=cli-broken&token=${token}`, 'backend_unavailable'],
    ] as const) {
      const run = await runCli(
        'fetch',
        `${server.url}/aperture/w`,
        '--wallet',
        wallet,
        ...db,
        '--json',
      );
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(new RegExp(`^tollway fetch: ${code}: `));
      expect(run.stderr).toContain('check --wallet');
      expect(run.stderr).not.toContain('wrong_network');
      expect(JSON.parse(run.stdout)).toMatchObject({ error: { code } });
    }
  });

  it('exits 4 on a non-2xx final status or a connection failure', async () => {
    const a = agent();
    const missing = await runCli('fetch', `${server.url}/no-such-form`, ...a.args, '--json');
    expect(missing.code).toBe(4);
    expect(JSON.parse(missing.stdout)).toMatchObject({ status: 404, payment: null });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await runCli('fetch', `http://127.0.0.1:${port}/`, ...a.args, '--json');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^tollway fetch: fetch failed/);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: 'network_error' } });
  });

  it('reads --max-cost and --max-fee in the one amount grammar, and refuses in the unit given', async () => {
    // A fresh agent for each run: an Aperture token opens the whole service, so it would be reused.
    const fetchWith = (url: string, ...flags: string[]) =>
      runCli('fetch', url, ...agent().args, ...flags);
    expect(
      (await fetchWith(`${server.url}/aperture/g?price=10`, '--max-cost', '10 sats')).code,
    ).toBe(0);
    const half = await fetchWith(`${server.url}/aperture/g?price=1`, '--max-cost', '0.5 sat');
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('price 1 sat is above the per-request cap of agent (0.5 sat)');
    const noRate = await fetchWith(`${server.url}/aperture/g?price=2`, '--max-cost', '$0.001');
    expect(noRate.code).toBe(64);
    expect(noRate.stderr).toContain('--max-cost in dollars needs --usd-per-btc');
    const rated = ['--max-cost', '$0.001', '--usd-per-btc', '100000'];
    const over = await fetchWith(`${server.url}/aperture/g?price=2`, ...rated);
    expect(over.code).toBe(2);
    expect(over.stderr).toContain(
      'price 2 sat is above the per-request cap of agent ($0.001, 1 sat now)',
    );
    expect((await fetchWith(`${server.url}/aperture/g?price=1`, ...rated)).code).toBe(0);
    const fee = await fetchWith(`${server.url}/aperture/g`, '--max-fee', '$1');
    expect(fee.code).toBe(64);
    expect(fee.stderr).toContain('--max-fee takes sats, not dollars');
  });

  it('exits 64 on usage mistakes', async () => {
    const a = agent();
    expect((await runCli('fetch', `${server.url}/spec/x`, ...a.args, '-H', 'no colon')).code).toBe(
      64,
    );
    expect(
      (await runCli('fetch', `${server.url}/spec/x`, ...a.args, '--max-cost', 'lots')).code,
    ).toBe(64);
    expect((await runCli('fetch', 'not a url', ...a.args)).code).toBe(64);
    expect(
      (await runCli('fetch', `${server.url}/spec/x`, '--wallet', 'nope://x', '--db', a.db)).code,
    ).toBe(64);
  });
});

const chain = await startTestChain();
afterAll(() => chain?.close());

describe.skipIf(chain === undefined)('tollway fetch pays x402 with an EVM key', () => {
  const c = chain!;
  const PRICE = 10_000n; // $0.01 in TestUSDC base units
  let url: string;
  /** The same route offering L402 and MPP beside x402. */
  let mixedUrl: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    const serve = async (protocols: Array<'l402' | 'mpp'>) => {
      const paywall = createPaywall({
        lightning: network.backend('shop'),
        store: createMemoryStore(),
        secrets: [createMasterSecret()],
        rates: fixedRate('100000'),
        rateLimits: { challenges: false },
        protocols,
        offers: [
          createX402Offer({
            facilitator,
            payTo: c.accounts.payTo.address,
            network: c.network,
            asset: { address: c.token, decimals: 6, ...c.tokenDomain },
          }),
        ],
      });
      const route = paywall.route({ service: 'weather', price: '$0.01' });
      const served = await listen(
        createServer(
          withPaywall(paywall, route, (_req, res) => {
            res.setHeader('Content-Type', 'application/json');
            res.end('{"weather":"sunny"}');
          }),
        ),
      );
      return {
        url: `${served.url}/weather`,
        close: async () => {
          await served.close();
          await paywall.close();
        },
      };
    };
    const x402Only = await serve([]);
    const mixed = await serve(['l402', 'mpp']);
    url = x402Only.url;
    mixedUrl = mixed.url;
    close = async () => {
      await x402Only.close();
      await mixed.close();
    };
  });
  afterAll(() => close?.());

  const evmArgs = () => [
    '--evm-key',
    c.accounts.payer.privateKey,
    '--evm-asset',
    `${c.network}:${c.token}`,
  ];

  it('pays the x402 offer on chain and records it in the ledger', async () => {
    const db = join(dir, 'evm-agent.sqlite');
    const payer = await c.balanceOf(c.accounts.payer.address);
    const payTo = await c.balanceOf(c.accounts.payTo.address);
    const { code, stdout, stderr } = await runCli(
      'fetch',
      url,
      ...evmArgs(),
      '--usd-per-btc',
      '100000',
      '--db',
      db,
      '-v',
      '--json',
    );
    expect(stderr).toContain(`* offer x402 v2 exact: $0.01 (10000 base units of ${c.token})`);
    expect(stderr).toMatch(
      /\* paid 10 sat \(the token amount at --usd-per-btc\) with x402 \(EIP-3009 authorization nonce 0x[0-9a-f]{64}\)/,
    );
    expect(stderr).not.toContain('payment hash');
    expect(code).toBe(0);
    const printed = JSON.parse(stdout);
    expect(printed).toMatchObject({
      status: 200,
      payment: { protocol: 'x402', amountMsat: '10000', feeMsat: '0' },
    });
    expect(JSON.parse(printed.body)).toEqual({ weather: 'sunny' });
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer - PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(payTo + PRICE);
    const store = createSqliteClientStore({ path: db });
    // The payment, and the charge its answer's receipt states (settled after the answer).
    expect(
      (await store.list()).map((e) => [e.kind, e.protocol, e.status, e.amountMsat]).sort(),
    ).toEqual([
      ['draw', 'x402', 'succeeded', 10_000n],
      ['purchase', 'x402', 'succeeded', 10_000n],
    ]);
    await store.close();
  });

  it('says why it pays x402 rather than L402, and pays L402 first when preferred', async () => {
    const paid = await runCli(
      'fetch',
      mixedUrl,
      ...evmArgs(),
      '--usd-per-btc',
      '100000',
      '--db',
      join(dir, 'evm-mixed.sqlite'),
      '-v',
    );
    expect(paid.code).toBe(0);
    expect(paid.stderr).toContain(
      '* skipped l402: no Lightning wallet (give --wallet or set TOLLWAY_WALLET)',
    );
    expect(paid.stderr).toMatch(/tollway fetch: paid 10 sat .* with x402/);
    const preferred = await runCli(
      'fetch',
      mixedUrl,
      ...evmArgs(),
      ...agent().args,
      '--usd-per-btc',
      '100000',
      '--prefer',
      'mpp',
      '--json',
    );
    expect(JSON.parse(preferred.stdout)).toMatchObject({
      status: 200,
      payment: { protocol: 'mpp' },
    });
    const x402First = await runCli(
      'fetch',
      mixedUrl,
      ...evmArgs(),
      ...agent().args,
      '--usd-per-btc',
      '100000',
      '--prefer',
      'x402',
      '--json',
    );
    expect(JSON.parse(x402First.stdout)).toMatchObject({
      status: 200,
      payment: { protocol: 'x402' },
    });
  });

  it('reads the key from env:NAME, and keeps to --max-cost', async () => {
    process.env.TOLLWAY_TEST_EVM_KEY = c.accounts.payer.privateKey;
    try {
      const payer = await c.balanceOf(c.accounts.payer.address);
      const { code, stderr } = await runCli(
        'fetch',
        url,
        '--evm-key',
        'env:TOLLWAY_TEST_EVM_KEY',
        '--evm-asset',
        `${c.network}:${c.token}`,
        '--usd-per-btc',
        '100000',
        '--max-cost',
        '5',
        '--db',
        join(dir, 'evm-cheap.sqlite'),
      );
      expect(code).toBe(2);
      expect(stderr).toMatch(/^tollway fetch: (over_price|budget_exceeded): /);
      expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer);
    } finally {
      delete process.env.TOLLWAY_TEST_EVM_KEY;
    }
  });

  it('refuses x402 offers without --usd-per-btc, and other tokens, saying why', async () => {
    const payer = await c.balanceOf(c.accounts.payer.address);
    const noRate = await runCli('fetch', url, ...evmArgs(), '--db', join(dir, 'evm-norate.sqlite'));
    expect(noRate.code).toBe(3);
    expect(noRate.stderr).toContain('no_payable_offer');
    expect(noRate.stderr).toContain('x402 offers are refused without --usd-per-btc');

    const other = await runCli(
      'fetch',
      url,
      '--evm-key',
      c.accounts.payer.privateKey,
      '--evm-asset',
      `${c.network}:0x${'11'.repeat(20)}`,
      '--usd-per-btc',
      '100000',
      '--db',
      join(dir, 'evm-other.sqlite'),
    );
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('no_payable_offer');
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(payer);
  });

  it('exits 64 on a bad key, asset, rate, RPC endpoint or call count', async () => {
    const db = ['--db', join(dir, 'evm-usage.sqlite')];
    const asset = ['--evm-asset', `${c.network}:${c.token}`];
    expect((await runCli('fetch', url, '--evm-key', 'zz', ...asset, ...db)).code).toBe(64);
    expect((await runCli('fetch', url, '--evm-key', `0x${'22'.repeat(32)}`, ...db)).code).toBe(64);
    expect(
      (
        await runCli(
          'fetch',
          url,
          '--evm-key',
          `0x${'22'.repeat(32)}`,
          '--evm-asset',
          '0xabc',
          ...db,
        )
      ).code,
    ).toBe(64);
    expect((await runCli('fetch', url, ...evmArgs(), '--usd-per-btc', 'lots', ...db)).code).toBe(
      64,
    );
    expect(
      (await runCli('fetch', url, '--evm-key', 'env:TOLLWAY_NO_SUCH_VAR', ...asset, ...db)).code,
    ).toBe(64);
    const noKey = await runCli('fetch', url, '--evm-rpc', c.rpcUrl, ...asset, ...db);
    expect([noKey.code, noKey.stderr]).toEqual([
      64,
      expect.stringContaining('--evm-rpc needs --evm-key'),
    ]);
    const notHttp = await runCli('fetch', url, ...evmArgs(), '--evm-rpc', 'ws://x', ...db);
    expect([notHttp.code, notHttp.stderr]).toEqual([
      64,
      expect.stringContaining('--evm-rpc takes an http(s) URL'),
    ]);
    const noCalls = await runCli('fetch', url, ...evmArgs(), '--expect-calls', '0', ...db);
    expect([noCalls.code, noCalls.stderr]).toEqual([
      64,
      expect.stringContaining('--expect-calls takes a whole number of calls'),
    ]);
  });
});
