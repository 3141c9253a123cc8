import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, isTollwayError } from '../../errors.js';
import { createPreimage } from '../bolt11.js';
import { createDevBackend } from './backend.js';
import { createDevNetwork, type DevNetwork } from './node.js';
import { createDevServer, DEV_SANDBOX_HEADER, type DevServer } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-dev-server-'));
let network: DevNetwork;
let server: DevServer;
const logs: string[] = [];
let shopToken: string;
let agentToken: string;

beforeAll(async () => {
  network = createDevNetwork({ path: join(dir, 'dev-lightning.sqlite') });
  server = await createDevServer({ network, log: (line) => logs.push(line) });
  shopToken = network.openWallet('shop', { balanceMsat: 0n }).token;
  agentToken = network.openWallet('agent', { balanceMsat: 1_000_000n }).token;
});
afterAll(async () => {
  await server.close();
  await network.close();
  rmSync(dir, { recursive: true, force: true });
});

async function api(
  method: string,
  path: string,
  token: string | undefined,
  body?: string,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const response = await fetch(server.url + path, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body }),
  });
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as Record<string, unknown>,
  };
}

function expectProblem(
  reply: { status: number; headers: Headers; json: Record<string, unknown> },
  status: number,
  code: string,
): void {
  expect([reply.status, reply.json.code]).toEqual([status, code]);
  expect(reply.headers.get('content-type')).toBe('application/problem+json');
  expect(reply.json).toEqual({
    title: errorCodes[code as keyof typeof errorCodes],
    status,
    code,
    detail: expect.any(String),
  });
}

describe('dev node HTTP API', () => {
  it('labels itself a sandbox in headers, bodies and logs', async () => {
    const info = await api('GET', '/v1/wallets/shop/info', shopToken);
    expect(info.status).toBe(200);
    expect(info.headers.get('x-tollway-sandbox')).toBe(DEV_SANDBOX_HEADER);
    expect(info.json).toMatchObject({ pubkey: network.pubkey, network: 'regtest', sandbox: true });
    expect(info.json.alias).toMatch(/SANDBOX/);
    expect(logs[0]).toMatch(/SANDBOX.*listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it('creates wallets with the admin token only, and returns an existing one unchanged', async () => {
    expectProblem(
      await api('POST', '/v1/wallets', agentToken, '{"name":"x"}'),
      401,
      'unauthorized',
    );
    const made = await api(
      'POST',
      '/v1/wallets',
      network.adminToken,
      '{"name":"carol","balanceMsat":"5000"}',
    );
    expect(made.status).toBe(200);
    expect(made.json).toMatchObject({ name: 'carol', balanceMsat: '5000', sandbox: true });
    const again = await api('POST', '/v1/wallets', network.adminToken, '{"name":"carol"}');
    expect(again.json).toEqual(made.json);
    const balance = await api('GET', '/v1/wallets/carol/balance', String(made.json.token));
    expect(balance.json).toEqual({ balanceMsat: '5000' });
  });

  it("refuses a missing token, a wrong token and another wallet's token", async () => {
    expectProblem(await api('GET', '/v1/wallets/shop/balance', undefined), 401, 'unauthorized');
    expectProblem(
      await api('GET', '/v1/wallets/shop/balance', 'f'.repeat(64)),
      401,
      'unauthorized',
    );
    expectProblem(await api('GET', '/v1/wallets/shop/balance', agentToken), 401, 'unauthorized');
    expectProblem(await api('GET', '/v1/wallets/ghost/balance', agentToken), 401, 'unauthorized');
    expectProblem(
      await api('GET', '/v1/wallets/shop/balance', network.adminToken),
      401,
      'unauthorized',
    );
  });

  it('answers bad requests with 4xx problem bodies', async () => {
    const pay = '/v1/wallets/agent/payments';
    const invoices = '/v1/wallets/agent/invoices';
    const zeros = '0'.repeat(64);
    // [method, path, body, status, code], all with the agent's token.
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ['GET', '/nowhere', undefined, 404, 'capability_unsupported'],
      ['DELETE', '/v1/wallets/agent/balance', undefined, 404, 'capability_unsupported'],
      ['GET', `${invoices}/${zeros}/wait/more`, undefined, 404, 'capability_unsupported'],
      ['POST', pay, '{not json', 400, 'invalid_json'],
      ['POST', pay, '[]', 400, 'invalid_json'],
      ['POST', pay, '{"paymentRequest":42}', 400, 'invalid_json'],
      ['POST', pay, '{"paymentRequest":"lnbcrt1xyz"}', 400, 'invalid_invoice'],
      ['POST', pay, JSON.stringify({ paymentRequest: 'x'.repeat(70_000) }), 400, 'invalid_json'],
      ['POST', invoices, '{"amountMsat":1000}', 400, 'invalid_json'],
      ['POST', invoices, '{"amountMsat":"-1"}', 400, 'invalid_amount'],
      ['POST', invoices, '{"amountMsat":"1e3"}', 400, 'invalid_amount'],
      ['POST', invoices, `{"amountMsat":"${10n ** 19n}"}`, 400, 'invalid_amount'],
      ['POST', invoices, '{"amountMsat":"1","expirySeconds":1.5}', 400, 'invalid_invoice'],
      ['GET', `${invoices}/zz`, undefined, 400, 'invalid_hex'],
      ['GET', `${invoices}/${zeros}`, undefined, 404, 'invoice_not_found'],
      ['GET', `${invoices}/${zeros}/wait?timeoutMs=-1`, undefined, 400, 'invalid_json'],
      ['GET', `/v1/wallets/agent/payments/${zeros}`, undefined, 404, 'invoice_not_found'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const reply = await api(method, path, agentToken, body);
      expect([method, path, reply.status, reply.json.code]).toEqual([method, path, status, code]);
      expectProblem(reply, status, code);
    }
  });

  it('never answers 5xx to arbitrary requests (property)', async () => {
    const hash = fc.oneof(
      fc.constant('a'.repeat(64)),
      fc.string({ maxLength: 70 }).map(encodeURIComponent),
    );
    // Mostly real routes with odd parts, so the handlers behind authentication are reached too.
    const request = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          ['POST', '/v1/wallets'],
          ['POST', '/v1/wallets/agent/invoices'],
          ['POST', '/v1/wallets/agent/payments'],
        ),
      },
      {
        weight: 3,
        arbitrary: fc
          .tuple(
            fc.constantFrom('GET', 'POST'),
            fc.constantFrom('info', 'balance', 'invoices', 'payments', 'nope'),
            hash,
            fc.constantFrom('', '/wait', '/wait?timeoutMs=x', '/wait?timeoutMs=0'),
          )
          .map(([method, resource, h, tail]) => [
            method,
            `/v1/wallets/agent/${resource}/${h}${tail}`,
          ]),
      },
      {
        weight: 1,
        arbitrary: fc
          .array(fc.string({ maxLength: 8 }).map(encodeURIComponent), { maxLength: 6 })
          .map((segments) => ['PUT', `/${segments.join('/')}`]),
      },
    );
    const text = fc.oneof(fc.string(), fc.bigInt().map(String), fc.constant('lnbcrt10n1pjunk'));
    const body = fc.oneof(
      { weight: 1, arbitrary: fc.json() },
      { weight: 1, arbitrary: fc.string() },
      {
        weight: 6,
        arbitrary: fc
          .record(
            {
              name: fc.oneof(text, fc.integer()),
              balanceMsat: fc.oneof(text, fc.integer()),
              amountMsat: fc.oneof(text, fc.integer()),
              maxFeeMsat: text,
              paymentRequest: fc.oneof(text, fc.integer()),
              memo: fc.oneof(text, fc.integer()),
              expirySeconds: fc.oneof(fc.integer(), fc.double(), text),
              descriptionHash: fc.oneof(text, fc.constant('b'.repeat(64))),
            },
            { requiredKeys: [] },
          )
          .map((value) => JSON.stringify(value)),
      },
    );
    await fc.assert(
      fc.asyncProperty(
        request,
        body,
        fc.boolean(),
        async ([method = 'GET', target = '/'], requestBody, rightToken) => {
          const own = target === '/v1/wallets' ? network.adminToken : agentToken;
          const token = rightToken ? own : 'nope';
          const reply = await api(
            method,
            target,
            token,
            method === 'GET' ? undefined : requestBody,
          );
          expect(reply.status).toBeLessThan(500);
          if (reply.status >= 400) expect(typeof reply.json.code).toBe('string');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('settles a payment made by another process through the API', async () => {
    const shop = network.backend('shop');
    const invoice = await shop.createInvoice({ amountMsat: 12_000n, memo: 'cross-process' });
    const waiting = createDevBackend({
      url: server.url,
      wallet: 'shop',
      token: shopToken,
    }).waitForSettlement(invoice.paymentHash, { timeoutMs: 20_000 });
    const script = join(dir, 'pay.mjs');
    writeFileSync(
      script,
      `const [url, wallet, token, paymentRequest] = process.argv.slice(2);
const response = await fetch(url + '/v1/wallets/' + wallet + '/payments', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
  body: JSON.stringify({ paymentRequest }),
});
process.stdout.write(JSON.stringify({ status: response.status, body: await response.json() }));
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [
      script,
      server.url,
      'agent',
      agentToken,
      invoice.paymentRequest,
    ]);
    const child = JSON.parse(stdout) as { status: number; body: Record<string, string> };
    expect(child.status).toBe(200);
    expect(child.body.amountMsat).toBe('12000');
    const preimage = child.body.preimage ?? '';
    expect(createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex')).toBe(
      invoice.paymentHash,
    );
    const settled = await waiting;
    expect(settled).toMatchObject({ state: 'settled', amountPaidMsat: 12_000n, preimage });
    expect(
      logs.some((line) => line.includes(invoice.paymentHash) && line.includes('SANDBOX')),
    ).toBe(true);
  });

  it('lets exactly 10 of 50 concurrent HTTP payments through a balance that covers 10', async () => {
    network.openWallet('payer50', { balanceMsat: 10_000n });
    network.openWallet('payee50', { balanceMsat: 0n });
    const payee = network.backend('payee50');
    const payer = createDevBackend({
      url: server.url,
      wallet: 'payer50',
      token: network.getWallet('payer50')?.token ?? '',
    });
    const invoices = await Promise.all(
      Array.from({ length: 50 }, () => payee.createInvoice({ amountMsat: 1_000n })),
    );
    const results = await Promise.allSettled(
      invoices.map((invoice) => payer.payInvoice({ paymentRequest: invoice.paymentRequest })),
    );
    await payer.close();
    const codes = results.flatMap((r) =>
      r.status === 'rejected' && isTollwayError(r.reason) ? [r.reason.code] : [],
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(codes).toEqual(Array(40).fill('insufficient_balance'));
    expect(network.getWallet('payer50')?.balanceMsat).toBe(0n);
    expect(network.getWallet('payee50')?.balanceMsat).toBe(10_000n);
  });

  it('long-polls: a wait answers as soon as the invoice is paid', async () => {
    const shop = createDevBackend({ url: server.url, wallet: 'shop', token: shopToken });
    const invoice = await shop.createInvoice({ amountMsat: 3_000n });
    const started = Date.now();
    const waiting = shop.waitForSettlement(invoice.paymentHash, { timeoutMs: 20_000 });
    setTimeout(() => {
      void network.backend('agent').payInvoice({ paymentRequest: invoice.paymentRequest });
    }, 200);
    expect((await waiting).state).toBe('settled');
    expect(Date.now() - started).toBeLessThan(5_000);
    const unpaid = await shop.createInvoice({ amountMsat: 3_000n });
    await expect(shop.waitForSettlement(unpaid.paymentHash, { timeoutMs: 100 })).rejects.toThrow(
      /still open/,
    );
    await expect(shop.lookupInvoice(createPreimage().paymentHash)).rejects.toMatchObject({
      code: 'invoice_not_found',
    });
    await shop.close();
  });
});
