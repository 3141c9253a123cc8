/**
 * The x402 offer through the whole server stack on a real chain: anvil with TestUSDC, the
 * self-hosted facilitator, the paywall engine with the x402 offer, the node adapter on loopback
 * HTTP; paid by the official `@x402/fetch` client and by hand-signed payments that must fail.
 */
import { createServer, type ServerResponse } from 'node:http';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { wrapFetchWithPayment, x402Client } from '@x402/fetch';
import { type Address, type Hex, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PaidRequest, withPaywall } from '../../src/adapters/node.js';
import { createPayingFetch, getPayment } from '../../src/client/paying-fetch.js';
import { isTollwayError } from '../../src/errors.js';
import { fixedRate } from '../../src/money.js';
import { createPaywall, type Paywall, type PaywallOptions } from '../../src/server/paywall.js';
import { createMasterSecret } from '../../src/server/root-keys.js';
import type { Route } from '../../src/server/route.js';
import { createX402Offer, type X402OfferOptions } from '../../src/server/x402-offer.js';
import { createMemoryStore } from '../../src/stores/memory.js';
import { createEvmWallet } from '../../src/x402/evm-wallet.js';
import { createSelfHostedFacilitator } from '../../src/x402/facilitator.js';
import { parsePaymentRequiredHeader } from '../../src/x402/payment-required.js';
import { parsePaymentResponseHeader } from '../../src/x402/payment-response.js';
import {
  formatPaymentSignatureHeader,
  parsePaymentSignatureHeader,
} from '../../src/x402/payment-signature.js';
import type { X402PaymentRequirements } from '../../src/x402/types.js';
import { formatXPaymentHeader, parsePaymentRequiredV1Body } from '../../src/x402/v1.js';
import { listen } from '../adapters/conformance.js';
import { startTestChain } from '../support/chain.js';
import { createDevSetup } from '../support/paywall.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const PRICE = 10_000n; // $0.01 in USDC base units
const transferTypes = {
  TransferWithAuthorization: [
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' },
    { name: 'validBefore', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const;

describe.skipIf(chain === undefined)('x402 offer on a real chain', () => {
  const c = chain!;
  let paywall: Paywall;
  let route: Route;
  let url: string;
  let close: () => Promise<void>;
  let handlerRuns = 0;
  let requirements: X402PaymentRequirements;

  /**
   * A paywall offering x402 on the test chain, settled by a self-hosted facilitator; `offer`
   * overrides the offer's options, `extra` the paywall's.
   */
  async function chainPaywall(
    offer: Partial<X402OfferOptions> = {},
    extra: Partial<PaywallOptions> = {},
  ): Promise<Paywall> {
    const facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    return createPaywall({
      lightning: createDevSetup().shop,
      store: createMemoryStore(),
      secrets: [createMasterSecret()],
      rates: fixedRate('100000'),
      ...extra,
      offers: [
        createX402Offer({
          facilitator,
          payTo: c.accounts.payTo.address,
          network: c.network,
          asset: { address: c.token, decimals: 6, ...c.tokenDomain },
          ...offer,
        }),
      ],
    });
  }

  beforeAll(async () => {
    paywall = await chainPaywall({}, { rateLimits: { challenges: false } });
    route = paywall.route({ service: 'weather', price: '$0.01' });
    requirements = {
      scheme: 'exact',
      network: c.network,
      asset: c.token,
      amount: PRICE,
      payTo: c.accounts.payTo.address,
      maxTimeoutSeconds: 60,
      extra: { ...c.tokenDomain },
    };
    const served = await listen(
      createServer(
        withPaywall(paywall, route, async (_req, res) => {
          handlerRuns += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
          res.setHeader('Content-Type', 'application/json');
          res.end('{"weather":"sunny"}');
        }),
      ),
    );
    url = `${served.url}/weather`;
    close = served.close;
  });
  afterAll(async () => {
    await close?.();
    await paywall?.close();
  });

  /** A v2 PAYMENT-SIGNATURE with an authorization signed by `signer` (default: `from`). */
  async function signedPayment(change: {
    from?: { address: Address; privateKey: Hex };
    signer?: Hex;
    to?: Address;
    value?: bigint;
    validBefore?: bigint;
    accepted?: X402PaymentRequirements;
  }): Promise<string> {
    const from = change.from ?? c.accounts.payer;
    const authorization = {
      from: from.address,
      to: change.to ?? c.accounts.payTo.address,
      value: change.value ?? PRICE,
      validAfter: 0n,
      validBefore: change.validBefore ?? BigInt(Math.floor(Date.now() / 1000) + 60),
      nonce: toHex(crypto.getRandomValues(new Uint8Array(32))),
    };
    const signature = await privateKeyToAccount(change.signer ?? from.privateKey).signTypedData({
      domain: { ...c.tokenDomain, chainId: 31337, verifyingContract: c.token },
      types: transferTypes,
      primaryType: 'TransferWithAuthorization',
      message: authorization,
    });
    return formatPaymentSignatureHeader({
      x402Version: 2,
      accepted: change.accepted ?? requirements,
      payload: {
        signature,
        authorization: {
          ...authorization,
          value: authorization.value.toString(),
          validAfter: '0',
          validBefore: authorization.validBefore.toString(),
        },
      },
    });
  }

  async function balances(): Promise<[bigint, bigint]> {
    return [
      await c.balanceOf(c.accounts.payer.address),
      await c.balanceOf(c.accounts.payTo.address),
    ];
  }

  it('buys a balance on a route that sells one, and hands the buyer an L402 credential for it', async () => {
    const own = await chainPaywall({}, { rateLimits: { challenges: false } });
    const metered = own.route({ service: 'llm', price: '$0.01', balance: '$0.05' });
    const served = await listen(
      createServer(
        withPaywall(own, metered, async (req, res) => {
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ left: String(req.payment.remainingBalanceMsat) }));
        }),
      ),
    );
    try {
      const offered = await fetch(`${served.url}/chat`);
      const required = parsePaymentRequiredHeader(offered.headers.get('payment-required') ?? '');
      expect(required.accepts[0]?.amount).toBe(50_000n);
      await offered.arrayBuffer();
      const before = await balances();
      const header = await signedPayment({
        value: 50_000n,
        accepted: { ...requirements, amount: 50_000n },
      });
      const bought = await fetch(`${served.url}/chat`, {
        headers: { 'PAYMENT-SIGNATURE': header },
      });
      expect(bought.status).toBe(200);
      // $0.05 at $100 000/BTC is 50 000 msat; this request drew $0.01 (10 000 msat).
      expect(await bought.json()).toEqual({ left: '40000' });
      expect(await balances()).toEqual([before[0] - 50_000n, before[1] + 50_000n]);
      const credential = bought.headers.get('tollway-credential') ?? '';
      expect(credential).toMatch(/^L402 /);
      const next = await fetch(`${served.url}/chat`, { headers: { authorization: credential } });
      expect(await next.json()).toEqual({ left: '30000' });
      // The payment bought the balance once: presented again, it is refused.
      const replay = await fetch(`${served.url}/chat`, {
        headers: { 'PAYMENT-SIGNATURE': header },
      });
      expect([401, 402]).toContain(replay.status);
      await replay.arrayBuffer();
      expect(await balances()).toEqual([before[0] - 50_000n, before[1] + 50_000n]);
    } finally {
      await served.close();
      await own.close();
    }
  });

  it('adds PAYMENT-REQUIRED to the same 402 as L402 and MPP', async () => {
    const response = await fetch(url, { headers: { origin: 'https://app.example.com' } });
    expect(response.status).toBe(402);
    expect(response.headers.get('www-authenticate')).toContain('L402');
    const required = parsePaymentRequiredHeader(response.headers.get('payment-required') ?? '');
    expect(required.accepts).toEqual([requirements]);
    expect(required.resource.url).toBe('/weather');
    const body = (await response.json()) as { offers: Array<{ protocol: string }> };
    expect(body.offers.map((offer) => offer.protocol)).toEqual(['l402', 'mpp', 'x402']);
    expect(response.headers.get('access-control-expose-headers')).toContain('PAYMENT-RESPONSE');
  });

  it('is paid by the official @x402/fetch client, with the money moved on chain', async () => {
    const client = new x402Client();
    client.register(
      'eip155:*',
      new ExactEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey)),
    );
    client.setSpendControls({ allowedAssets: [{ network: c.network, asset: c.token }] });
    const before = await balances();
    const runs = handlerRuns;
    const response = await wrapFetchWithPayment(fetch, client)(url);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ weather: 'sunny' });
    const receipt = parsePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    expect(receipt.success).toBe(true);
    expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(handlerRuns).toBe(runs + 1);
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  const refusals: Array<[string, () => Promise<string>, string]> = [
    ['a wrong signature', () => signedPayment({ signer: generatePrivateKey() }), 'signature'],
    ['a wrong amount', () => signedPayment({ value: PRICE - 1n }), 'value'],
    ['a wrong recipient', () => signedPayment({ to: c.accounts.deployer.address }), 'recipient'],
    [
      'an expired authorization',
      () => signedPayment({ validBefore: BigInt(Math.floor(Date.now() / 1000) - 10) }),
      'valid_before',
    ],
    [
      'an insufficient balance',
      () => {
        const privateKey = generatePrivateKey();
        return signedPayment({
          from: { address: privateKeyToAccount(privateKey).address, privateKey },
        });
      },
      'insufficient_balance',
    ],
  ];

  it.each(refusals)(
    'refuses %s with x402_payment_invalid, moving nothing',
    async (_, make, reason) => {
      const header = await make();
      const before = await balances();
      const runs = handlerRuns;
      const response = await fetch(url, { headers: { 'PAYMENT-SIGNATURE': header } });
      expect(response.status).toBe(402);
      const body = (await response.json()) as { code: string; detail: string };
      expect(body.code).toBe('x402_payment_invalid');
      expect(body.detail).toContain(reason);
      expect(response.headers.get('payment-required')).not.toBeNull();
      expect(handlerRuns).toBe(runs);
      expect(await balances()).toEqual(before);
    },
  );

  it('is paid by the Tollway paying fetch when x402 is preferred over Lightning', async () => {
    const fetch402 = createPayingFetch({
      wallets: [],
      preferences: ['x402', 'l402'],
      x402: {
        wallet: createEvmWallet({
          privateKey: c.accounts.payer.privateKey,
          allowedAssets: [{ network: c.network, address: c.token }],
        }),
        rates: fixedRate('100000'),
      },
    });
    const before = await balances();
    const response = await fetch402(url);
    expect(response.status).toBe(200);
    expect(getPayment(response)?.protocol).toBe('x402');
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  it('refuses a replayed nonce after it was settled', async () => {
    const header = await signedPayment({});
    const first = await fetch(url, { headers: { 'PAYMENT-SIGNATURE': header } });
    expect(first.status).toBe(200);
    const before = await balances();
    const runs = handlerRuns;
    const again = await fetch(url, { headers: { 'PAYMENT-SIGNATURE': header } });
    expect(again.status).toBe(402);
    const body = (await again.json()) as { code: string; detail: string };
    expect(body.code).toBe('x402_payment_invalid');
    expect(body.detail).toContain('nonce_already_used');
    expect(handlerRuns).toBe(runs);
    expect(await balances()).toEqual(before);
  });

  it('runs the handler once for a payment submitted five times at once', async () => {
    const header = await signedPayment({});
    const before = await balances();
    const runs = handlerRuns;
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => fetch(url, { headers: { 'PAYMENT-SIGNATURE': header } })),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    // The others lost the store claim (401 credential_replayed) or met the settled nonce (402).
    expect(statuses.filter((status) => status === 401 || status === 402)).toHaveLength(4);
    expect(handlerRuns).toBe(runs + 1);
    expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);
  });

  /** A paywalled route on its own paywall, settling `settle`, answered by `handler`. */
  async function serveRoute(
    settle: 'after' | 'upfront',
    handler: (req: PaidRequest, res: ServerResponse) => Promise<void>,
  ) {
    const own = await chainPaywall({ settle });
    const served = await listen(
      createServer(withPaywall(own, own.route({ service: 's', price: '$0.01' }), handler)),
    );
    return {
      url: `${served.url}/s`,
      close: async () => {
        await served.close();
        await own.close();
      },
    };
  }

  it('settles after the handler: a failed handler is not paid for, upfront it is', async () => {
    const failing = async (_req: PaidRequest, res: ServerResponse) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('boom');
    };
    for (const [settle, charged] of [
      ['after', 0n],
      ['upfront', PRICE],
    ] as const) {
      const route = await serveRoute(settle, failing);
      try {
        const before = await balances();
        const response = await fetch(route.url, {
          headers: { 'PAYMENT-SIGNATURE': await signedPayment({}) },
        });
        expect(response.status).toBe(500);
        expect(await response.text()).toBe('boom');
        expect(await balances()).toEqual([before[0] - charged, before[1] + charged]);
      } finally {
        await route.close();
      }
    }
  });

  it('settles after the handler answered, and replaces its answer when settlement fails', async () => {
    // The handler spends the same authorization elsewhere first, so the paywall's settlement fails.
    const elsewhere = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.deployer.privateKey,
    });
    let seenByHandler: bigint | undefined;
    const route = await serveRoute('after', async (req, res) => {
      seenByHandler = await c.balanceOf(c.accounts.payTo.address);
      if (req.headers['x-spend-elsewhere'] !== undefined) {
        const payment = parsePaymentSignatureHeader(String(req.headers['payment-signature']));
        expect((await elsewhere.settle(payment, requirements)).success).toBe(true);
      }
      res.setHeader('Content-Type', 'application/json');
      res.end('{"weather":"sunny"}');
    });
    try {
      const before = await balances();
      const paid = await fetch(route.url, {
        headers: { 'PAYMENT-SIGNATURE': await signedPayment({}) },
      });
      expect(paid.status).toBe(200);
      expect(await paid.json()).toEqual({ weather: 'sunny' });
      expect(seenByHandler).toBe(before[1]);
      expect(parsePaymentResponseHeader(paid.headers.get('payment-response') ?? '').success).toBe(
        true,
      );
      expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);

      const failed = await fetch(route.url, {
        headers: { 'PAYMENT-SIGNATURE': await signedPayment({}), 'X-Spend-Elsewhere': '1' },
      });
      expect(failed.status).toBe(402);
      const body = (await failed.json()) as { code: string; weather?: string };
      expect(body.code).toBe('x402_settlement_failed');
      expect(body.weather).toBeUndefined();
      const receipt = parsePaymentResponseHeader(failed.headers.get('payment-response') ?? '');
      expect(receipt.success).toBe(false);
      // Paid once, elsewhere: the paywall's settlement moved nothing more.
      expect(await balances()).toEqual([before[0] - 2n * PRICE, before[1] + 2n * PRICE]);
    } finally {
      await route.close();
    }
  });

  it("prices a function-priced route per request: a payment pays only its request's price", async () => {
    const own = await chainPaywall({}, { rateLimits: { challenges: false } });
    const priced = own.route({
      service: 'tools',
      price: ({ path }) => (path === '/dear' ? '$0.02' : path === '/free' ? 0n : '$0.01'),
    });
    let runs = 0;
    const served = await listen(
      createServer(
        withPaywall(own, priced, (_req, res) => {
          runs += 1;
          res.end('done');
        }),
      ),
    );
    /** The x402 requirements the 402 of `path` lists (one). */
    async function offeredAt(path: string): Promise<X402PaymentRequirements> {
      const response = await fetch(`${served.url}${path}`);
      expect(response.status).toBe(402);
      const header = response.headers.get('payment-required') ?? '';
      const [accepted, ...more] = parsePaymentRequiredHeader(header).accepts;
      if (accepted === undefined || more.length > 0) throw new Error(`not one offer: ${header}`);
      return accepted;
    }
    try {
      const cheap = await offeredAt('/cheap');
      const dear = await offeredAt('/dear');
      expect(cheap).toEqual(requirements);
      expect(dear).toEqual({ ...requirements, amount: 2n * PRICE });
      expect(await (await fetch(`${served.url}/free`)).text()).toBe('done');

      // The cheaper payment, honest about what it accepted, does not pay for the pricier request.
      const before = await balances();
      const header = await signedPayment({ accepted: cheap });
      const refused = await fetch(`${served.url}/dear`, {
        headers: { 'PAYMENT-SIGNATURE': header },
      });
      expect(refused.status).toBe(402);
      const body = (await refused.json()) as { code: string };
      expect(body.code).toBe('x402_payment_invalid');
      // Claiming the dearer requirements with the cheaper authorization: the facilitator refuses.
      const forged = await fetch(`${served.url}/dear`, {
        headers: { 'PAYMENT-SIGNATURE': await signedPayment({ accepted: dear }) },
      });
      expect(forged.status).toBe(402);
      expect(((await forged.json()) as { detail: string }).detail).toContain('value');
      expect(runs).toBe(1);
      expect(await balances()).toEqual(before);

      // The same payment passes on the request it was made for, and settles on chain.
      const paid = await fetch(`${served.url}/cheap`, { headers: { 'PAYMENT-SIGNATURE': header } });
      expect(paid.status).toBe(200);
      expect(await paid.text()).toBe('done');
      expect(parsePaymentResponseHeader(paid.headers.get('payment-response') ?? '').success).toBe(
        true,
      );
      expect(await balances()).toEqual([before[0] - PRICE, before[1] + PRICE]);

      // The right payment for the dearer request passes too.
      const dearPaid = await fetch(`${served.url}/dear`, {
        headers: {
          'PAYMENT-SIGNATURE': await signedPayment({ accepted: dear, value: 2n * PRICE }),
        },
      });
      expect(dearPaid.status).toBe(200);
      expect(runs).toBe(3);
      expect(await balances()).toEqual([before[0] - 3n * PRICE, before[1] + 3n * PRICE]);
    } finally {
      await served.close();
      await own.close();
    }
  });

  it('refuses a v1 X-PAYMENT when v1 is not offered, and v1 on a chain v1 cannot name', async () => {
    const facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    let code: string | undefined;
    try {
      createX402Offer({
        facilitator,
        payTo: c.accounts.payTo.address,
        network: c.network,
        asset: { address: c.token, decimals: 6, ...c.tokenDomain },
        v1: true,
      });
    } catch (error) {
      code = isTollwayError(error) ? error.code : String(error);
    }
    expect(code).toBe('unsupported_network');
    const response = await fetch(url, {
      headers: {
        'X-PAYMENT': formatXPaymentHeader({
          x402Version: 1,
          scheme: 'exact',
          network: 'eip155:84532',
          payload: {},
        }),
      },
    });
    expect(response.status).toBe(402);
    expect(((await response.json()) as { code: string }).code).toBe('payment_required');
  });

  it('makes the 402 body a valid x402 v1 object when v1 is offered', async () => {
    const v1Paywall = await chainPaywall({
      network: 'eip155:84532',
      asset: { address: c.token, decimals: 6, name: 'USDC', version: '2' },
      price: '$0.25',
      v1: true,
    });
    const served = await listen(
      createServer(
        withPaywall(v1Paywall, v1Paywall.route({ service: 'v1', price: '5 sat' }), (_req, res) => {
          res.end('paid');
        }),
      ),
    );
    try {
      const response = await fetch(`${served.url}/v1`);
      expect(response.status).toBe(402);
      const body = parsePaymentRequiredV1Body(await response.text());
      expect(body.accepts).toHaveLength(1);
      expect(body.accepts[0]).toMatchObject({
        network: 'eip155:84532',
        maxAmountRequired: 250_000n,
        resource: '/v1',
        extra: { name: 'USDC', version: '2' },
      });
      // A v1 payment reaches the facilitator (which serves another chain here, and says so).
      const payment = await fetch(`${served.url}/v1`, {
        headers: {
          'X-PAYMENT': formatXPaymentHeader({
            x402Version: 1,
            scheme: 'exact',
            network: 'eip155:84532',
            payload: JSON.parse(atob(await signedPayment({}))).payload,
          }),
        },
      });
      expect(payment.status).toBe(402);
      const refused = (await payment.json()) as { code: string; detail: string };
      expect(refused.code).toBe('x402_payment_invalid');
      expect(refused.detail).toContain('invalid_network');
    } finally {
      await served.close();
      await v1Paywall.close();
    }
  });
});
