import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  type Address,
  createWalletClient,
  encodeFunctionData,
  type Hex,
  hashDomain,
  http,
  parseSignature,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, it } from 'vitest';
import { anvilBinary, MULTICALL3_ADDRESS, startTestChain, testUsdcAbi, WATCHDOG } from './chain.js';

const chain = await startTestChain();
afterAll(() => chain?.close());

/** True while `pid` is a live process (a zombie waiting to be reaped counts as gone). */
function isRunning(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !isRunning(pid);
}

describe.skipIf(chain === undefined)('test chain', () => {
  const c = chain!;
  const types = {
    TransferWithAuthorization: [
      { name: 'from', type: 'address' },
      { name: 'to', type: 'address' },
      { name: 'value', type: 'uint256' },
      { name: 'validAfter', type: 'uint256' },
      { name: 'validBefore', type: 'uint256' },
      { name: 'nonce', type: 'bytes32' },
    ],
    ReceiveWithAuthorization: [
      { name: 'from', type: 'address' },
      { name: 'to', type: 'address' },
      { name: 'value', type: 'uint256' },
      { name: 'validAfter', type: 'uint256' },
      { name: 'validBefore', type: 'uint256' },
      { name: 'nonce', type: 'bytes32' },
    ],
    CancelAuthorization: [
      { name: 'authorizer', type: 'address' },
      { name: 'nonce', type: 'bytes32' },
    ],
  } as const;
  const domain = () => ({
    name: 'USD Coin',
    version: '2',
    chainId: 31337,
    verifyingContract: c.token,
  });
  let nonceCounter = 0;
  const nextNonce = (): Hex => `0x${(++nonceCounter).toString(16).padStart(64, '0')}`;
  const now = () => BigInt(Math.floor(Date.now() / 1000));

  async function sign(
    primaryType: 'TransferWithAuthorization' | 'ReceiveWithAuthorization',
    message: { to: Address; value: bigint; validAfter?: bigint; validBefore?: bigint; nonce: Hex },
    key: Hex = c.accounts.payer.privateKey,
  ) {
    const full = {
      from: c.accounts.payer.address,
      validAfter: 0n,
      validBefore: now() + 600n,
      ...message,
    };
    const signature = await privateKeyToAccount(key).signTypedData({
      domain: domain(),
      types,
      primaryType,
      message: full,
    });
    const { v, r, s } = parseSignature(signature);
    return [
      full.from,
      full.to,
      full.value,
      full.validAfter,
      full.validBefore,
      full.nonce,
      Number(v),
      r,
      s,
    ] as const;
  }

  /** Sends a token call from `sender` (the facilitator by default); resolves with the receipt status. */
  async function send(
    functionName: string,
    args: readonly unknown[],
    sender = c.accounts.facilitator,
  ) {
    const wallet = createWalletClient({
      account: privateKeyToAccount(sender.privateKey),
      chain: c.chain,
      transport: http(c.rpcUrl),
    });
    try {
      const hash = await wallet.writeContract({
        address: c.token,
        abi: testUsdcAbi,
        functionName,
        args,
      });
      return (await c.client.waitForTransactionReceipt({ hash })).status;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  const read = (functionName: string, args: readonly unknown[] = []) =>
    c.client.readContract({ address: c.token, abi: testUsdcAbi, functionName, args });

  it('is chain 31337 with the token deployed, the payer funded with tokens only', async () => {
    expect(await c.client.getChainId()).toBe(31337);
    expect(await read('name')).toBe('USD Coin');
    expect(await read('version')).toBe('2');
    expect(await read('decimals')).toBe(6);
    expect(await read('DOMAIN_SEPARATOR')).toBe(
      hashDomain({
        domain: { ...domain(), chainId: 31337n },
        types: {
          EIP712Domain: [
            { name: 'name', type: 'string' },
            { name: 'version', type: 'string' },
            { name: 'chainId', type: 'uint256' },
            { name: 'verifyingContract', type: 'address' },
          ],
        },
      }),
    );
    expect(await c.balanceOf(c.accounts.payer.address)).toBe(10_000_000n);
    expect(await c.client.getBalance({ address: c.accounts.payer.address })).toBe(0n);
    expect(await c.client.getBalance({ address: c.accounts.facilitator.address })).toBeGreaterThan(
      0n,
    );
  });

  it('answers tryAggregate at the canonical Multicall3 address, reporting failed calls', async () => {
    // Declared `view` (it is payable) so viem lets readContract call it, as the facilitator does.
    const abi = [
      {
        type: 'function',
        name: 'tryAggregate',
        stateMutability: 'view',
        inputs: [
          { name: 'requireSuccess', type: 'bool' },
          {
            name: 'calls',
            type: 'tuple[]',
            components: [
              { name: 'target', type: 'address' },
              { name: 'callData', type: 'bytes' },
            ],
          },
        ],
        outputs: [
          {
            name: 'returnData',
            type: 'tuple[]',
            components: [
              { name: 'success', type: 'bool' },
              { name: 'returnData', type: 'bytes' },
            ],
          },
        ],
      },
    ] as const;
    const balanceCall = encodeFunctionData({
      abi: testUsdcAbi,
      functionName: 'balanceOf',
      args: [c.accounts.payer.address],
    });
    const mintCall = encodeFunctionData({
      abi: testUsdcAbi,
      functionName: 'mint',
      args: [c.accounts.payTo.address, 1n],
    });
    const results = await c.client.readContract({
      address: MULTICALL3_ADDRESS,
      abi,
      functionName: 'tryAggregate',
      args: [
        false,
        [
          { target: c.token, callData: balanceCall },
          { target: c.token, callData: mintCall },
        ],
      ],
    });
    expect(results.map((result) => result.success)).toEqual([true, false]);
    expect(results[0]?.returnData).toBe(`0x${(10_000_000).toString(16).padStart(64, '0')}`);
  });

  it('moves tokens on a signed transferWithAuthorization, once per nonce', async () => {
    const nonce = nextNonce();
    const args = await sign('TransferWithAuthorization', {
      to: c.accounts.payTo.address,
      value: 250n,
      nonce,
    });
    const before = await c.balanceOf(c.accounts.payTo.address);
    expect(await send('transferWithAuthorization', args)).toBe('success');
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(before + 250n);
    expect(await read('authorizationState', [c.accounts.payer.address, nonce])).toBe(true);
    expect(await send('transferWithAuthorization', args)).toMatch(
      /authorization is used or canceled/,
    );
  });

  it('refuses expired, not yet valid, wrongly signed, tampered and unfunded authorizations', async () => {
    const to = c.accounts.payTo.address;
    const expired = await sign('TransferWithAuthorization', {
      to,
      value: 1n,
      validBefore: now() - 1n,
      nonce: nextNonce(),
    });
    expect(await send('transferWithAuthorization', expired)).toMatch(/authorization is expired/);
    const early = await sign('TransferWithAuthorization', {
      to,
      value: 1n,
      validAfter: now() + 3600n,
      nonce: nextNonce(),
    });
    expect(await send('transferWithAuthorization', early)).toMatch(
      /authorization is not yet valid/,
    );
    const stranger = await sign(
      'TransferWithAuthorization',
      { to, value: 1n, nonce: nextNonce() },
      c.accounts.payTo.privateKey,
    );
    expect(await send('transferWithAuthorization', stranger)).toMatch(/invalid signature/);
    const tampered = await sign('TransferWithAuthorization', { to, value: 1n, nonce: nextNonce() });
    expect(
      await send('transferWithAuthorization', [tampered[0], tampered[1], 2n, ...tampered.slice(3)]),
    ).toMatch(/invalid signature/);
    const tooMuch = await sign('TransferWithAuthorization', {
      to,
      value: 11_000_000n,
      nonce: nextNonce(),
    });
    expect(await send('transferWithAuthorization', tooMuch)).toMatch(
      /transfer amount exceeds balance/,
    );
  });

  it('lets only the payee submit receiveWithAuthorization', async () => {
    const args = await sign('ReceiveWithAuthorization', {
      to: c.accounts.payTo.address,
      value: 5n,
      nonce: nextNonce(),
    });
    expect(await send('receiveWithAuthorization', args)).toMatch(/caller must be the payee/);
    await c.client.request({
      method: 'anvil_setBalance' as never,
      params: [c.accounts.payTo.address, '0xde0b6b3a7640000'] as never,
    });
    const before = await c.balanceOf(c.accounts.payTo.address);
    expect(await send('receiveWithAuthorization', args, c.accounts.payTo)).toBe('success');
    expect(await c.balanceOf(c.accounts.payTo.address)).toBe(before + 5n);
  });

  it('makes a canceled nonce unusable', async () => {
    const nonce = nextNonce();
    const signature = await privateKeyToAccount(c.accounts.payer.privateKey).signTypedData({
      domain: domain(),
      types,
      primaryType: 'CancelAuthorization',
      message: { authorizer: c.accounts.payer.address, nonce },
    });
    const { v, r, s } = parseSignature(signature);
    expect(
      await send('cancelAuthorization', [c.accounts.payer.address, nonce, Number(v), r, s]),
    ).toBe('success');
    expect(await read('authorizationState', [c.accounts.payer.address, nonce])).toBe(true);
    const args = await sign('TransferWithAuthorization', {
      to: c.accounts.payTo.address,
      value: 1n,
      nonce,
    });
    expect(await send('transferWithAuthorization', args)).toMatch(
      /authorization is used or canceled/,
    );
  });

  it('refuses mint from anyone but the deployer', async () => {
    expect(await send('mint', [c.accounts.payer.address, 1n])).toMatch(/caller is not the owner/);
  });
});

describe.skipIf(chain === undefined)('anvil process lifetime', () => {
  it('close() kills anvil itself, not only its watchdog', async () => {
    const other = await startTestChain();
    expect(isRunning(other!.anvilPid)).toBe(true);
    await other!.close();
    expect(await waitUntilGone(other!.anvilPid)).toBe(true);
  });

  it('anvil dies with the process that started it, even on SIGKILL', async () => {
    // A parent that starts anvil under the watchdog, prints anvil's pid, and then just waits.
    const parentScript = `
      const { spawn } = require('node:child_process');
      const child = spawn('/bin/sh', ['-c', ${JSON.stringify(WATCHDOG)}, ${JSON.stringify(anvilBinary())},
        '--host', '127.0.0.1', '--port', '0', '--accounts', '0'], { stdio: ['pipe', 'pipe', 'ignore'] });
      child.stdout.on('data', (d) => process.stdout.write(d));
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', parentScript], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let output = '';
    const pid = await new Promise<number>((resolve) => {
      parent.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        if (/Listening on/.test(output)) resolve(Number(/anvil pid (\d+)/.exec(output)?.[1]));
      });
    });
    expect(isRunning(pid)).toBe(true);
    parent.kill('SIGKILL');
    expect(await waitUntilGone(pid)).toBe(true);
  });
});
