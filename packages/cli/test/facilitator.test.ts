import { createFacilitatorClient, type X402PaymentRequirements } from '@tollway/sdk/x402';
import { HTTPFacilitatorClient } from '@x402/core/http';
import type { PaymentPayload, PaymentRequirements } from '@x402/core/types';
import { Command } from 'commander';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../sdk/test/support/chain.js';
import { registerFacilitatorCommand } from '../src/commands/facilitator.js';
import { runCli } from './run-cli.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const PRICE = 7_000n;

describe.skipIf(chain === undefined)('tollway facilitator', () => {
  const c = chain!;
  const stop = new AbortController();
  let url: string;
  let exited: Promise<unknown>;
  let stdout = '';
  let exitCode = 0;

  const requirements: () => PaymentRequirements = () => ({
    scheme: 'exact',
    network: c.network,
    asset: c.token,
    amount: PRICE.toString(),
    payTo: c.accounts.payTo.address,
    maxTimeoutSeconds: 60,
    extra: c.tokenDomain,
  });

  async function pay(): Promise<PaymentPayload> {
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

  beforeAll(async () => {
    process.env.TOLLWAY_TEST_FACILITATOR_KEY = c.accounts.facilitator.privateKey;
    const program = new Command('tollway').exitOverride();
    const listening = new Promise<string>((resolve) => {
      registerFacilitatorCommand(
        program,
        {
          stdout: (text) => {
            stdout += text;
            const match = /listening on (http:\/\/\S+)/.exec(stdout);
            if (match?.[1]) resolve(match[1]);
          },
          stderr: (text) => {
            stdout += text;
          },
        },
        (code) => {
          exitCode = code;
        },
        stop.signal,
      );
    });
    const argv = [
      'facilitator',
      '--rpc',
      c.rpcUrl,
      '--key',
      'env:TOLLWAY_TEST_FACILITATOR_KEY',
      '--port',
      '0',
    ];
    exited = program.parseAsync(argv, { from: 'user' });
    url = await Promise.race([listening, exited.then(() => Promise.reject(new Error(stdout)))]);
  });

  afterAll(async () => {
    stop.abort();
    await exited;
    delete process.env.TOLLWAY_TEST_FACILITATOR_KEY;
  });

  it('says what it serves and who settles', () => {
    expect(stdout).toContain(`eip155:31337, settling from ${c.accounts.facilitator.address}`);
  });

  it('answers the official @x402/core HTTPFacilitatorClient: supported, verify, settle for real', async () => {
    const client = new HTTPFacilitatorClient({ url });
    expect(await client.getSupported()).toEqual({
      kinds: [
        { x402Version: 2, scheme: 'exact', network: 'eip155:31337' },
        {
          x402Version: 2,
          scheme: 'upto',
          network: 'eip155:31337',
          extra: { facilitatorAddress: c.accounts.facilitator.address },
        },
        { x402Version: 2, scheme: 'batch-settlement', network: 'eip155:31337' },
      ],
      extensions: [],
      signers: { 'eip155:*': [c.accounts.facilitator.address] },
    });
    const payment = await pay();
    expect(await client.verify(payment, requirements())).toEqual({
      isValid: true,
      payer: c.accounts.payer.address,
    });
    const before = {
      payer: await c.balanceOf(c.accounts.payer.address),
      payTo: await c.balanceOf(c.accounts.payTo.address),
    };
    const settled = await client.settle(payment, requirements());
    expect(settled).toMatchObject({
      success: true,
      network: 'eip155:31337',
      payer: c.accounts.payer.address,
    });
    expect(
      (await c.client.getTransactionReceipt({ hash: settled.transaction as `0x${string}` })).status,
    ).toBe('success');
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(before.payer - PRICE);
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(before.payTo + PRICE);

    expect(await client.settle(payment, requirements())).toMatchObject({
      success: false,
      errorReason: 'invalid_exact_evm_nonce_already_used',
    });
    const wrongAmount = { ...requirements(), amount: '1' };
    expect(await client.verify(await pay(), wrongAmount)).toMatchObject({
      isValid: false,
      invalidReason: 'invalid_exact_evm_payload_authorization_value_mismatch',
    });
  });

  it('answers Tollway’s own facilitator client the same way', async () => {
    const client = createFacilitatorClient({ url });
    const tollwayRequirements: X402PaymentRequirements = { ...requirements(), amount: PRICE };
    const payment = { ...(await pay()), accepted: tollwayRequirements };
    expect((await client.settle(payment, tollwayRequirements)).success).toBe(true);
  });

  it('answers malformed requests with a JSON problem, not a crash', async () => {
    const response = await fetch(`${url}/verify`, {
      method: 'POST',
      body: '{"x402Version":2,',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 400, code: 'invalid_x402_payload' });
    const big = await fetch(`${url}/settle`, { method: 'POST', body: 'x'.repeat(200_000) });
    expect(big.status).toBe(413);
    expect(exitCode).toBe(0);
  });
});

describe('tollway facilitator usage', () => {
  it('is listed in tollway --help', async () => {
    const { code, stdout } = await runCli('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/facilitator\s/);
  });

  it('exits 64 without --rpc or without a key', async () => {
    expect((await runCli('facilitator')).code).toBe(64);
    const noKey = await runCli(
      'facilitator',
      '--rpc',
      'http://127.0.0.1:1',
      '--key',
      'env:TOLLWAY_TEST_UNSET_VARIABLE',
    );
    expect(noKey.code).toBe(64);
    expect(noKey.stderr).toContain('--key');
  });

  it('exits 1 naming the error code for a bad key or an RPC that does not answer', async () => {
    const badKey = await runCli('facilitator', '--rpc', 'http://127.0.0.1:1', '--key', '0x1234');
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('invalid_config');
    const key = generatePrivateKey();
    const noRpc = await runCli('facilitator', '--rpc', 'http://127.0.0.1:1', '--key', key);
    expect(noRpc.code).toBe(1);
    expect(noRpc.stderr).toContain('facilitator_unavailable');
  });
});
