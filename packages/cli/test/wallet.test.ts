import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

describe('tollway wallet against a dev node over HTTP', () => {
  let network: DevNetwork;
  let server: DevServer;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    network = createDevNetwork({
      path: join(mkdtempSync(join(tmpdir(), 'tollway-wallet-')), 'dev.sqlite'),
    });
    server = await createDevServer({ network, port: 0 });
    const create = async (name: string) => {
      const { code, stdout } = await runCli(
        'wallet',
        'create',
        name,
        '--dev-url',
        server.url,
        '--admin-token',
        network.adminToken,
      );
      expect(code).toBe(0);
      return JSON.parse(stdout).connectionString as string;
    };
    alice = await create('alice');
    bob = await create('bob');
  });
  afterAll(async () => {
    await server?.close();
    network?.close();
  });

  it('creates an invoice in one wallet and pays it from another, once', async () => {
    const invoice = await runCli('wallet', 'invoice', '21', '--memo', 'coffee', '--wallet', alice);
    expect(invoice.code).toBe(0);
    const { paymentRequest, paymentHash } = JSON.parse(invoice.stdout);
    expect(paymentRequest).toMatch(/^lnbcrt210n1/);

    const before = await runCli('wallet', 'balance', '--json', '--wallet', bob);
    const paid = await runCli(
      'wallet',
      'pay',
      paymentRequest,
      '--max-fee',
      '1 sat',
      '--wallet',
      bob,
    );
    expect(paid.code).toBe(0);
    expect(JSON.parse(paid.stdout)).toMatchObject({
      paymentHash,
      amountMsat: '21000',
      feeMsat: '0',
    });
    const again = await runCli('wallet', 'pay', paymentRequest, '--wallet', bob);
    expect(JSON.parse(again.stdout).preimage).toBe(JSON.parse(paid.stdout).preimage);
    const after = await runCli('wallet', 'balance', '--json', '--wallet', bob);
    expect(
      BigInt(JSON.parse(before.stdout).balanceMsat) - BigInt(JSON.parse(after.stdout).balanceMsat),
    ).toBe(21_000n);

    const looked = await runCli('wallet', 'lookup', paymentHash, '--wallet', alice);
    expect(JSON.parse(looked.stdout).invoice).toMatchObject({
      state: 'settled',
      amountPaidMsat: '21000',
    });
    const sent = await runCli('wallet', 'lookup', paymentHash, '--wallet', bob);
    expect(JSON.parse(sent.stdout).payment).toMatchObject({ state: 'succeeded' });
  });

  it('shows info and a human balance', async () => {
    const info = await runCli('wallet', 'info', '--wallet', alice);
    expect(JSON.parse(info.stdout)).toMatchObject({
      kind: 'dev',
      network: 'regtest',
      canPay: true,
    });
    expect(JSON.parse(info.stdout).alias).toContain('SANDBOX');
    const balance = await runCli('wallet', 'balance', '--wallet', alice);
    expect(balance.stdout).toMatch(/^\d+ sat\n$/);
  });

  it('decodes an invoice without a wallet', async () => {
    const { stdout } = await runCli('wallet', 'invoice', '2500 msat', '--wallet', alice);
    const decoded = await runCli('wallet', 'decode', JSON.parse(stdout).paymentRequest);
    expect(decoded.code).toBe(0);
    expect(JSON.parse(decoded.stdout)).toMatchObject({ network: 'regtest', amountMsat: '2500' });
  });

  it('fails with a code, not a stack trace', async () => {
    expect(await runCli('wallet', 'balance')).toMatchObject({ code: 64 });
    const garbage = await runCli('wallet', 'decode', 'lnbcrt1notaninvoice');
    expect([garbage.code, garbage.stderr]).toEqual([1, expect.stringContaining('invalid_invoice')]);
    const wrongToken = alice.replace(/token=[0-9a-f]+/, 'token=00');
    const refused = await runCli('wallet', 'balance', '--wallet', wrongToken);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('unauthorized')]);
    const dollars = await runCli('wallet', 'invoice', '$1', '--wallet', alice);
    expect([dollars.code, dollars.stderr]).toEqual([
      64,
      expect.stringContaining('<amount> takes sats, not dollars'),
    ]);
    const malformed = await runCli('wallet', 'invoice', '1e3', '--wallet', alice);
    expect([malformed.code, malformed.stderr]).toEqual([64, expect.stringContaining('write sats')]);
  });
});
