import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../test/support/chain.js';
import { isTollwayError } from '../errors.js';
import { createSelfHostedFacilitator, type Facilitator } from './facilitator.js';
import { createFacilitatorClient } from './facilitator-client.js';
import { createFacilitatorHandler } from './facilitator-http.js';
import { formatFacilitatorRequest } from './facilitator-wire.js';
import type { X402PaymentPayload, X402PaymentRequirements } from './types.js';
import { X402_MAX_BODY_LENGTH } from './wire.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const PRICE = 2_500n;

async function thrownCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
}

describe.skipIf(chain === undefined)('the facilitator HTTP API: handler and client', () => {
  const c = chain!;
  let facilitator: Facilitator;
  let handle: (request: Request) => Promise<Response>;
  const requirements = (): X402PaymentRequirements => ({
    scheme: 'exact',
    network: c.network,
    asset: c.token,
    amount: PRICE,
    payTo: c.accounts.payTo.address,
    maxTimeoutSeconds: 60,
    extra: c.tokenDomain,
  });

  async function pay(): Promise<X402PaymentPayload> {
    const payer = privateKeyToAccount(c.accounts.payer.privateKey);
    const authorization = {
      from: payer.address,
      to: c.accounts.payTo.address,
      value: PRICE,
      validAfter: 0n,
      validBefore: BigInt(Math.floor(Date.now() / 1000) + 60),
      nonce: generatePrivateKey(),
    };
    const signature = await payer.signTypedData({
      domain: { ...c.tokenDomain, chainId: 31337, verifyingContract: c.token },
      types: {
        TransferWithAuthorization: [
          { name: 'from', type: 'address' },
          { name: 'to', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'validAfter', type: 'uint256' },
          { name: 'validBefore', type: 'uint256' },
          { name: 'nonce', type: 'bytes32' },
        ],
      },
      primaryType: 'TransferWithAuthorization',
      message: authorization,
    });
    const wire = Object.fromEntries(Object.entries(authorization).map(([k, v]) => [k, String(v)]));
    return {
      x402Version: 2,
      accepted: requirements(),
      payload: { signature, authorization: wire },
    };
  }

  const post = (path: string, body: string) =>
    handle(
      new Request(`http://facilitator.test${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      }),
    );

  beforeAll(async () => {
    facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    handle = createFacilitatorHandler(facilitator);
  });

  it('answers /supported, /verify and /settle with x402 JSON, settling for real', async () => {
    const supported = await handle(new Request('http://facilitator.test/supported'));
    expect(supported.status).toBe(200);
    const kinds = ((await supported.json()) as { kinds: Array<{ scheme: string }> }).kinds;
    expect(kinds.map((kind) => kind.scheme)).toEqual(['exact', 'upto', 'batch-settlement']);

    const body = formatFacilitatorRequest({ payload: await pay(), requirements: requirements() });
    const verified = await post('/verify', body);
    expect(verified.status).toBe(200);
    expect(await verified.json()).toEqual({ isValid: true, payer: c.accounts.payer.address });

    const before = await c.balanceOf(c.accounts.payTo.address);
    const settled = await post('/facilitator/settle', body);
    expect(settled.status).toBe(200);
    expect(await settled.json()).toMatchObject({ success: true, network: 'eip155:31337' });
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(before + PRICE);

    const again = await post('/settle', body);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({
      success: false,
      errorReason: 'invalid_exact_evm_nonce_already_used',
    });
  });

  it('answers malformed requests with problem bodies, never a 500', async () => {
    const cases: Array<[Request, number]> = [
      [new Request('http://f.test/verify', { method: 'POST', body: '{"x402Version":2' }), 400],
      [
        new Request('http://f.test/verify', {
          method: 'POST',
          body: '{"x402Version":1,"paymentPayload":{}}',
        }),
        400,
      ],
      [
        new Request('http://f.test/settle', {
          method: 'POST',
          body: 'x'.repeat(X402_MAX_BODY_LENGTH + 1),
        }),
        413,
      ],
      [new Request('http://f.test/verify'), 405],
      [new Request('http://f.test/supported', { method: 'POST', body: '{}' }), 405],
      [new Request('http://f.test/discovery/resources'), 404],
    ];
    for (const [request, status] of cases) {
      const response = await handle(request);
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(await response.json()).toMatchObject({ status, code: 'invalid_x402_payload' });
    }
  });

  it('answers 503 facilitator_unavailable when the chain is gone', async () => {
    const doomed = await startTestChain();
    const lost = createFacilitatorHandler(
      await createSelfHostedFacilitator({
        rpcUrl: doomed!.rpcUrl,
        privateKey: doomed!.accounts.facilitator.privateKey,
      }),
    );
    await doomed!.close();
    const body = formatFacilitatorRequest({ payload: await pay(), requirements: requirements() });
    const response = await lost(new Request('http://f.test/verify', { method: 'POST', body }));
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: 'facilitator_unavailable' });
  });

  it('the client settles through the handler, sending the configured headers', async () => {
    const seen: string[] = [];
    const client = createFacilitatorClient({
      url: 'http://facilitator.test/base/',
      headers: { authorization: 'Bearer k' },
      fetch: async (input, init) => {
        const request = new Request(input, init);
        seen.push(
          `${request.method} ${new URL(request.url).pathname} ${request.headers.get('authorization')}`,
        );
        return handle(request);
      },
    });
    const payment = await pay();
    expect(await client.verify(payment, requirements())).toEqual({
      isValid: true,
      payer: c.accounts.payer.address,
    });
    const before = await c.balanceOf(c.accounts.payer.address);
    expect((await client.settle(payment, requirements())).success).toBe(true);
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before - PRICE);
    expect((await client.supported()).signers).toEqual({
      'eip155:*': [c.accounts.facilitator.address],
    });
    expect(seen).toEqual([
      'POST /base/verify Bearer k',
      'POST /base/settle Bearer k',
      'GET /base/supported Bearer k',
    ]);
  });
});

describe('the facilitator client against misbehaving facilitators', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; body: string; delayMs?: number } = { status: 200, body: '{}' };

  beforeAll(async () => {
    server = createServer((_request, response) => {
      const { status, body, delayMs = 0 } = answer;
      setTimeout(
        () => response.writeHead(status, { 'content-type': 'application/json' }).end(body),
        delayMs,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const payment: X402PaymentPayload = {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: 'eip155:8453',
      asset: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
      amount: 1n,
      payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
      maxTimeoutSeconds: 60,
      extra: {},
    },
    payload: {},
  };

  it('returns a refusal sent with a 4xx status as a verdict', async () => {
    answer = {
      status: 400,
      body: '{"isValid":false,"invalidReason":"invalid_payload","payer":null}',
    };
    expect(await createFacilitatorClient({ url }).verify(payment, payment.accepted)).toEqual({
      isValid: false,
      invalidReason: 'invalid_payload',
    });
    answer = {
      status: 402,
      body: '{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"eip155:8453"}',
    };
    expect(await createFacilitatorClient({ url }).settle(payment, payment.accepted)).toMatchObject({
      success: false,
      errorReason: 'insufficient_funds',
    });
  });

  it.each([
    ['a 5xx without a verdict', { status: 502, body: 'Bad Gateway' }, 'facilitator_unavailable'],
    ['a 4xx problem', { status: 404, body: '{"title":"Not Found"}' }, 'facilitator_error'],
    ['a 200 that is not a verdict', { status: 200, body: '{"ok":true}' }, 'facilitator_error'],
    ['a 200 that is not JSON', { status: 200, body: '<html>' }, 'facilitator_error'],
    ['no answer in time', { status: 200, body: '{}', delayMs: 2_000 }, 'facilitator_unavailable'],
  ])('throws on %s', async (_name, canned, code) => {
    answer = canned;
    const client = createFacilitatorClient({ url, timeoutMs: 300 });
    expect(await thrownCode(client.verify(payment, payment.accepted))).toBe(code);
  });

  it('throws facilitator_unavailable when nothing listens', async () => {
    const client = createFacilitatorClient({ url: 'http://127.0.0.1:1' });
    expect(await thrownCode(client.supported())).toBe('facilitator_unavailable');
  });
});
