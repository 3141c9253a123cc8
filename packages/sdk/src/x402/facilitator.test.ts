import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { createTestClient, type Hex, http } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain } from '../../test/support/chain.js';
import { isTollwayError } from '../errors.js';
import { createSelfHostedFacilitator, type SelfHostedFacilitator } from './facilitator.js';
import type { X402PaymentPayload, X402PaymentRequirements } from './types.js';
import { requirementsToWire } from './wire.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

const PRICE = 10_000n;
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

async function thrownCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isTollwayError(error) ? error.code : `untyped: ${String(error)}`;
  }
}

describe.skipIf(chain === undefined)('self-hosted facilitator on a real chain', () => {
  const c = chain!;
  let facilitator: SelfHostedFacilitator;

  const requirements = (): X402PaymentRequirements => ({
    scheme: 'exact',
    network: c.network,
    asset: c.token,
    amount: PRICE,
    payTo: c.accounts.payTo.address,
    maxTimeoutSeconds: 60,
    extra: c.tokenDomain,
  });

  /** An EIP-3009 payment signed with viem; each option spoils one part of it. */
  async function pay(
    options: { key?: Hex; from?: Hex; to?: Hex; value?: bigint; validBefore?: bigint } = {},
  ): Promise<X402PaymentPayload> {
    const accepted = requirements();
    const signer = privateKeyToAccount(options.key ?? c.accounts.payer.privateKey);
    const authorization = {
      from: options.from ?? signer.address,
      to: options.to ?? c.accounts.payTo.address,
      value: options.value ?? PRICE,
      validAfter: 0n,
      validBefore: options.validBefore ?? BigInt(Math.floor(Date.now() / 1000) + 60),
      nonce: generatePrivateKey(),
    };
    const signature = await signer.signTypedData({
      domain: { ...c.tokenDomain, chainId: 31337, verifyingContract: c.token },
      types: transferTypes,
      primaryType: 'TransferWithAuthorization',
      message: authorization,
    });
    const wire = Object.fromEntries(Object.entries(authorization).map(([k, v]) => [k, String(v)]));
    return { x402Version: 2, accepted, payload: { signature, authorization: wire } };
  }

  const balances = async () => ({
    payer: await c.balanceOf(c.accounts.payer.address),
    payTo: await c.balanceOf(c.accounts.payTo.address),
    sent: await c.client.getTransactionCount({ address: c.accounts.facilitator.address }),
  });

  beforeAll(async () => {
    facilitator = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
      network: 'eip155:31337',
    });
  });

  it('verifies and settles a real EIP-3009 payment: payer -price, payTo +price, gas paid by the facilitator', async () => {
    const payment = await pay();
    const before = await balances();
    expect(await facilitator.verify(payment, requirements())).toEqual({
      isValid: true,
      payer: c.accounts.payer.address,
    });
    const receipt = await facilitator.settle(payment, requirements());
    expect(receipt).toMatchObject({
      success: true,
      network: 'eip155:31337',
      payer: c.accounts.payer.address,
    });
    const tx = await c.client.getTransactionReceipt({ hash: receipt.transaction as Hex });
    expect(tx.status).toBe('success');
    expect(tx.from.toLowerCase()).toBe(c.accounts.facilitator.address.toLowerCase());
    expect(tx.to?.toLowerCase()).toBe(c.token.toLowerCase());
    const after = await balances();
    expect(after.payer).toBe(before.payer - PRICE);
    expect(after.payTo).toBe(before.payTo + PRICE);
    expect(after.sent).toBe(before.sent + 1);
    expect(await c.client.getBalance({ address: c.accounts.payer.address })).toBe(0n);
  });

  type RpcCall = { jsonrpc: '2.0'; id: number; method: string; params: unknown[] };

  /** Sends one JSON-RPC call to the chain; its answer. */
  async function forward(call: RpcCall): Promise<{ result?: unknown; error?: unknown }> {
    const answer = await fetch(c.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(call),
    });
    return (await answer.json()) as { result?: unknown; error?: unknown };
  }

  /**
   * A facilitator whose JSON-RPC calls go through a recording proxy: `calls` lists them. `answer`
   * may answer a call itself (an RPC of another make); otherwise it goes to the chain.
   */
  async function countedFacilitator(
    answer: (call: RpcCall) => Promise<object | undefined> = async () => undefined,
  ): Promise<{ counted: SelfHostedFacilitator; calls: RpcCall[]; close: () => void }> {
    const calls: RpcCall[] = [];
    const proxy = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const call = JSON.parse(Buffer.concat(chunks).toString()) as RpcCall;
      calls.push(call);
      const answered = (await answer(call)) ?? (await forward(call));
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, ...answered }));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const counted = await createSelfHostedFacilitator({
      rpcUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      privateKey: c.accounts.facilitator.privateKey,
    });
    return { counted, calls, close: () => proxy.close() };
  }

  /**
   * The methods of `calls`, a receipt's polling counted as one read: between two reads of a
   * receipt not there yet, viem reads the transaction (and may read the block number), however
   * fast the chain mines, so how many such reads a settlement makes depends on the machine's load.
   */
  function withPollingFolded(calls: readonly RpcCall[]): string[] {
    const polling = new Set(['eth_getTransactionByHash', 'eth_blockNumber']);
    const methods = calls.map((call) => call.method).filter((method) => !polling.has(method));
    return methods.filter(
      (method, i) => method !== 'eth_getTransactionReceipt' || methods[i - 1] !== method,
    );
  }

  it('simulates the transfer once per payment: in verify, not again in settle', async () => {
    // Settling relies on the transaction's gas estimate, which fails for a transfer that would
    // revert, so nothing is broadcast; a second simulation would cost a round trip per payment.
    const { counted, calls, close } = await countedFacilitator();
    try {
      const payment = await pay();
      expect((await counted.verify(payment, requirements())).isValid).toBe(true);
      const verifyCalls = calls.filter((call) => call.method === 'eth_call').length;
      calls.length = 0;
      expect((await counted.settle(payment, requirements())).success).toBe(true);
      expect(verifyCalls).toBe(1);
      expect(calls.filter((call) => call.method === 'eth_call')).toEqual([]);
      expect(calls.map((call) => call.method)).toContain('eth_sendRawTransactionSync');
    } finally {
      close();
    }
  });

  it('sends a settlement and gets its receipt in one round trip (eth_sendRawTransactionSync)', async () => {
    const { counted, calls, close } = await countedFacilitator();
    try {
      const payment = await pay();
      const before = await balances();
      expect((await counted.verify(payment, requirements())).isValid).toBe(true);
      calls.length = 0;
      const receipt = await counted.settle(payment, requirements());
      expect(receipt.success).toBe(true);
      expect(calls.map((call) => call.method)).toEqual([
        'eth_fillTransaction',
        'eth_sendRawTransactionSync',
      ]);
      expect((await balances()).payTo).toBe(before.payTo + PRICE);
    } finally {
      close();
    }
  });

  it('sends plainly, from then on, through an RPC without eth_sendRawTransactionSync', async () => {
    const { counted, calls, close } = await countedFacilitator(async (call) =>
      call.method === 'eth_sendRawTransactionSync'
        ? { error: { code: -32601, message: 'Method not found' } }
        : undefined,
    );
    try {
      const before = await balances();
      for (const round of [1, 2]) {
        const payment = await pay();
        calls.length = 0;
        expect(await counted.settle(payment, requirements())).toMatchObject({ success: true });
        const sync = round === 1 ? ['eth_sendRawTransactionSync'] : [];
        const sent = withPollingFolded(calls).filter((method) => method !== 'eth_getCode');
        expect(sent).toEqual([
          'eth_fillTransaction',
          ...sync,
          'eth_sendRawTransaction',
          'eth_getTransactionReceipt',
        ]);
      }
      expect((await balances()).payTo).toBe(before.payTo + 2n * PRICE);
    } finally {
      close();
    }
  });

  it('polls for the receipt when the node stops waiting for it (EIP-7966 error 4)', async () => {
    const { counted, calls, close } = await countedFacilitator(async (call) => {
      if (call.method !== 'eth_sendRawTransactionSync') return undefined;
      const sent = await forward({ ...call, method: 'eth_sendRawTransaction' });
      return { error: { code: 4, message: 'receipt not ready', data: sent.result } };
    });
    try {
      const before = await balances();
      const settled = await counted.settle(await pay(), requirements());
      expect(settled.success).toBe(true);
      expect(withPollingFolded(calls).slice(-2)).toEqual([
        'eth_sendRawTransactionSync',
        'eth_getTransactionReceipt',
      ]);
      expect(calls.at(-1)?.params[0]).toBe(settled.transaction);
      const after = await balances();
      expect(after.payTo).toBe(before.payTo + PRICE);
      expect(after.sent).toBe(before.sent + 1);
    } finally {
      close();
    }
  });

  it('answers a transaction the node refuses as a failed settlement, sending nothing else', async () => {
    const { counted, calls, close } = await countedFacilitator(async (call) =>
      call.method === 'eth_sendRawTransactionSync'
        ? { error: { code: -32000, message: 'insufficient funds for gas * price + value' } }
        : undefined,
    );
    try {
      const before = await balances();
      const refused = await counted.settle(await pay(), requirements());
      expect(refused).toMatchObject({ success: false, transaction: '' });
      expect(calls.map((call) => call.method)).not.toContain('eth_sendRawTransaction');
      expect(await balances()).toEqual(before);
    } finally {
      close();
    }
  });

  it("reads the payer's code once for verify and settle of a payment", async () => {
    // x402's scheme asks for it twice in verify and twice again in settle; one answer serves all.
    const { counted, calls, close } = await countedFacilitator();
    try {
      const payment = await pay();
      expect((await counted.verify(payment, requirements())).isValid).toBe(true);
      expect((await counted.settle(payment, requirements())).success).toBe(true);
      const payerCode = calls.filter(
        (call) =>
          call.method === 'eth_getCode' &&
          String(call.params[0]).toLowerCase() === c.accounts.payer.address.toLowerCase(),
      );
      expect(payerCode).toHaveLength(1);
    } finally {
      close();
    }
  });

  it('settles a payment made by the official @x402/evm client', async () => {
    const scheme = new ExactEvmScheme(privateKeyToAccount(c.accounts.payer.privateKey));
    const created = await scheme.createPaymentPayload(2, requirementsToWire(requirements()));
    const payment: X402PaymentPayload = { ...created, accepted: requirements() };
    const before = await balances();
    expect((await facilitator.settle(payment, requirements())).success).toBe(true);
    expect((await balances()).payTo).toBe(before.payTo + PRICE);
  });

  it.each([
    ['a signature by another key', { key: generatePrivateKey() }, 'invalid_exact_evm_signature'],
    [
      'the wrong amount',
      { value: PRICE - 1n },
      'invalid_exact_evm_payload_authorization_value_mismatch',
    ],
    [
      'the wrong recipient',
      { to: privateKeyToAccount(generatePrivateKey()).address },
      'invalid_exact_evm_recipient_mismatch',
    ],
    [
      'an expired authorization',
      { validBefore: BigInt(Math.floor(Date.now() / 1000) - 10) },
      'invalid_exact_evm_payload_authorization_valid_before',
    ],
  ] as const)(
    'refuses %s with %s, in verify and settle, moving nothing',
    async (_name, spoil, reason) => {
      const options = 'key' in spoil ? { ...spoil, from: c.accounts.payer.address } : spoil;
      const payment = await pay(options);
      const before = await balances();
      expect(await facilitator.verify(payment, requirements())).toMatchObject({
        isValid: false,
        invalidReason: reason,
      });
      expect(await facilitator.settle(payment, requirements())).toMatchObject({
        success: false,
        errorReason: reason,
        transaction: '',
      });
      expect(await balances()).toEqual(before);
    },
  );

  it('refuses a payer without the tokens with insufficient_balance (read through Multicall3)', async () => {
    const poor = generatePrivateKey();
    const payment = await pay({ key: poor });
    const before = await balances();
    expect(await facilitator.verify(payment, requirements())).toMatchObject({
      isValid: false,
      invalidReason: 'invalid_exact_evm_insufficient_balance',
    });
    expect(await facilitator.settle(payment, requirements())).toMatchObject({
      success: false,
      errorReason: 'invalid_exact_evm_insufficient_balance',
    });
    expect((await balances()).sent).toBe(before.sent);
  });

  it('refuses a replayed nonce without sending anything, and the chain refuses it to a fresh facilitator', async () => {
    const payment = await pay();
    expect((await facilitator.settle(payment, requirements())).success).toBe(true);
    const before = await balances();
    const replay = await facilitator.settle(payment, requirements());
    expect(replay).toMatchObject({
      success: false,
      errorReason: 'invalid_exact_evm_nonce_already_used',
      transaction: '',
    });
    expect(await facilitator.verify(payment, requirements())).toMatchObject({
      isValid: false,
      invalidReason: 'invalid_exact_evm_nonce_already_used',
    });
    const fresh = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
    });
    expect(await fresh.verify(payment, requirements())).toMatchObject({
      isValid: false,
      invalidReason: 'invalid_exact_evm_nonce_already_used',
    });
    expect(await fresh.settle(payment, requirements())).toMatchObject({
      success: false,
      transaction: '',
    });
    expect(await balances()).toEqual(before);
  });

  it('settles two concurrent submissions of one payment exactly once', async () => {
    const payment = await pay();
    const before = await balances();
    const results = await Promise.all([
      facilitator.settle(payment, requirements()),
      facilitator.settle(payment, requirements()),
      facilitator.settle(structuredClone(payment), requirements()),
    ]);
    expect(results.filter((r) => r.success)).toHaveLength(1);
    expect(
      results.filter((r) => r.errorReason === 'invalid_exact_evm_nonce_already_used'),
    ).toHaveLength(2);
    const after = await balances();
    expect(after.sent).toBe(before.sent + 1);
    expect(after.payTo).toBe(before.payTo + PRICE);
  });

  it('answers settlement_pending when the receipt is late, then reconciles the same transaction', async () => {
    const slow = await createSelfHostedFacilitator({
      rpcUrl: c.rpcUrl,
      privateKey: c.accounts.facilitator.privateKey,
      confirmationTimeoutMs: 300,
    });
    const test = createTestClient({ chain: c.chain, transport: http(c.rpcUrl), mode: 'anvil' });
    const payment = await pay();
    const before = await balances();
    await test.setAutomine(false);
    try {
      const pending = await slow.settle(payment, requirements());
      expect(pending).toMatchObject({ success: false, errorReason: 'settlement_pending' });
      expect(pending.transaction).toMatch(/^0x[0-9a-f]{64}$/);
      await test.mine({ blocks: 1 });
      const settled = await slow.settle(payment, requirements());
      expect(settled).toMatchObject({ success: true, transaction: pending.transaction });
    } finally {
      await test.setAutomine(true);
    }
    const after = await balances();
    expect(after.sent).toBe(before.sent + 1);
    expect(after.payTo).toBe(before.payTo + PRICE);
  });

  it('refuses what it does not serve before touching the chain', async () => {
    const payment = await pay();
    const other = { ...requirements(), network: 'eip155:8453' as const };
    expect(await facilitator.verify(payment, other)).toMatchObject({
      invalidReason: 'invalid_network',
    });
    const upto = { ...requirements(), scheme: 'upto' };
    expect(await facilitator.settle(payment, upto)).toMatchObject({
      errorReason: 'unsupported_scheme',
    });
    expect(await facilitator.verify({ ...payment, x402Version: 1 }, requirements())).toMatchObject({
      invalidReason: 'invalid_x402_version',
    });
    const permit2 = { ...payment, payload: { signature: '0x00', permit2Authorization: {} } };
    expect(await facilitator.settle(permit2, requirements())).toMatchObject({
      errorReason: 'invalid_payload',
    });
  });

  it('lists what it supports and who pays the gas', async () => {
    expect(await facilitator.supported()).toEqual({
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
    expect(facilitator.address).toBe(c.accounts.facilitator.address);
  });

  it('refuses bad configuration, and an RPC that does not answer', async () => {
    const key = c.accounts.facilitator.privateKey;
    expect(
      await thrownCode(createSelfHostedFacilitator({ rpcUrl: c.rpcUrl, privateKey: '0x1234' })),
    ).toBe('invalid_config');
    expect(
      await thrownCode(
        createSelfHostedFacilitator({ rpcUrl: c.rpcUrl, privateKey: `0x${'0'.repeat(64)}` }),
      ),
    ).toBe('invalid_config');
    expect(
      await thrownCode(createSelfHostedFacilitator({ rpcUrl: 'ftp://x', privateKey: key })),
    ).toBe('invalid_config');
    expect(
      await thrownCode(
        createSelfHostedFacilitator({ rpcUrl: c.rpcUrl, privateKey: key, network: 'eip155:1' }),
      ),
    ).toBe('invalid_config');
    expect(
      await thrownCode(
        createSelfHostedFacilitator({ rpcUrl: 'http://127.0.0.1:1', privateKey: key }),
      ),
    ).toBe('facilitator_unavailable');
  });

  it('throws facilitator_unavailable when the chain goes away', async () => {
    const doomed = await startTestChain();
    const lost = await createSelfHostedFacilitator({
      rpcUrl: doomed!.rpcUrl,
      privateKey: doomed!.accounts.facilitator.privateKey,
    });
    await doomed!.close();
    // x402's EVM scheme alone would answer invalid_exact_evm_signature here.
    expect(await thrownCode(lost.verify(await pay(), requirements()))).toBe(
      'facilitator_unavailable',
    );
    expect(await thrownCode(lost.settle(await pay(), requirements()))).toBe(
      'facilitator_unavailable',
    );
  });
});
