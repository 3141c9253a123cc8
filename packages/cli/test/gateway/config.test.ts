import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTollwayError } from '@tollway/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig, parseGatewayConfig } from '../../src/gateway/config.js';
import { checkGatewayConfig } from '../../src/gateway/gateway.js';
import { runCli } from '../run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIGHTNING = 'dev+http://127.0.0.1:9?wallet=shop&token=t';

function problemsOf(input: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseGatewayConfig(input, { env });
  } catch (error) {
    if (isTollwayError(error, 'invalid_config')) return (error.details?.problems as string[]) ?? [];
    throw error;
  }
  return [];
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('gateway config', () => {
  it('fills defaults and reads listen addresses', () => {
    const config = parseGatewayConfig({
      lightning: LIGHTNING,
      listen: '[::1]:9000',
      services: [{ name: 'api', upstream: 'http://127.0.0.1:8080', price: '10 sat' }],
    });
    expect(config.listen).toEqual({ host: '::1', port: 9000 });
    expect(config.shutdownTimeout).toBe(10_000);
    expect(config.services[0]).toMatchObject({
      path: '/',
      auth: true,
      stripPrefix: false,
      preserveHost: false,
    });
    expect(parseGatewayConfig({ lightning: LIGHTNING, listen: 8402, services: [] }).listen).toEqual(
      {
        host: '127.0.0.1',
        port: 8402,
      },
    );
  });

  it('names every field that is wrong, and why', () => {
    expect(
      problemsOf(
        {
          lightning: LIGHTNING,
          listen: 'nowhere',
          colour: 'blue',
          services: [
            {
              name: 'x',
              upstream: 'ftp://nope',
              price: '10 eur',
              pricing: [{ field: 'model' }],
              timeouts: { idle: '5 years' },
            },
            {
              name: 'x',
              upstream: 'http://127.0.0.1:1',
              auth: 'maybe',
              headers: { 'X-Key': '${MISSING_KEY}' },
            },
            { name: 'bad name!', upstream: 'http://127.0.0.1:1', allowlist: ['~(', 'docs'] },
          ],
        },
        {},
      ),
    ).toEqual([
      'services[1].headers.X-Key: environment variable MISSING_KEY is not set (write ${MISSING_KEY:-default} for a default)',
      "listen: must be a port or 'host:port' (e.g. '0.0.0.0:8402')",
      'services[0].upstream: must be an http:// or https:// URL',
      "services[0].timeouts.idle: must be milliseconds or text such as '500ms', '30s', '2m'",
      "services[0].price: must be an amount such as '10 sat', '2500 msat' or '$0.01'",
      'services[0].pricing[0]: a pricing rule needs `price` or `prices`',
      'services[0].pricing[0]: `field` and `prices` go together',
      'services[1].auth: must be on or off',
      'services[2].name: must be 1-64 letters, digits, `_` or `-`, starting with a letter or digit',
      "services[2].allowlist[0]: must be a path prefix starting with '/' or '~' and a regular expression",
      "services[2].allowlist[1]: must be a path prefix starting with '/' or '~' and a regular expression",
      'services[2].price: is required unless `auth: off`',
      'colour: unknown field; see docs/reference/config.md for the fields here',
    ]);
    const twice = { name: 'x', upstream: 'http://127.0.0.1:1', auth: 'off' };
    expect(problemsOf({ lightning: LIGHTNING, services: [twice, twice] })).toEqual([
      'services[1].name: "x" is used twice',
    ]);
  });

  it('checks x402.upto: true settles through the self-hosted facilitator, a remote one names its account', () => {
    const x402 = (facilitator: Record<string, string>, upto: unknown) => ({
      lightning: LIGHTNING,
      x402: {
        network: 'eip155:8453',
        asset: { address: `0x${'11'.repeat(20)}`, decimals: 6, name: 'USD Coin', version: '2' },
        payTo: `0x${'22'.repeat(20)}`,
        facilitator,
        upto,
      },
      services: [{ name: 'api', upstream: 'http://127.0.0.1:9', price: '10 sat' }],
    });
    const selfHosted = { rpcUrl: 'http://127.0.0.1:8545', privateKey: '33'.repeat(32) };
    const remote = { url: 'https://facilitator.example' };
    expect(problemsOf(x402(selfHosted, true))).toEqual([]);
    expect(problemsOf(x402(remote, { facilitatorAddress: `0x${'44'.repeat(20)}` }))).toEqual([]);
    expect(problemsOf(x402(remote, true))).toEqual([
      'x402.upto: give {facilitatorAddress}: the account of the remote facilitator that settles upto payments (its /supported names it)',
    ]);
    expect(problemsOf(x402(selfHosted, 'yes'))).toEqual([
      'x402.upto: must be true (the self-hosted facilitator settles) or {facilitatorAddress}',
    ]);
  });

  it('checks mcp.paymentRequired: http by default; tool-result needs dollars and the x402 offer', async () => {
    const service = (mcp: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      lightning: LIGHTNING,
      paywall: { usdPerBtc: '65000' },
      services: [
        {
          name: 'tools',
          upstream: 'http://127.0.0.1:9',
          mcp: { tools: { a: '$0.01' }, ...mcp },
          ...extra,
        },
      ],
    });
    const parsed = parseGatewayConfig(service({}), { env: {} });
    expect(parsed.services[0]?.mcp?.paymentRequired).toBe('http');
    expect(problemsOf(service({ paymentRequired: 'tool-result' }))).toEqual([]);
    expect(problemsOf(service({ paymentRequired: 'sometimes' }))).toEqual([
      'services[0].mcp.paymentRequired: must be "http" or "tool-result"',
    ]);
    expect(problemsOf(service({ paymentRequired: 'tool-result', tools: { a: '10 sat' } }))).toEqual(
      [
        'services[0].mcp.paymentRequired: `tool-result` needs dollar prices (x402 is paid in a USD token)',
      ],
    );
    expect(problemsOf(service({ paymentRequired: 'tool-result' }, { x402: false }))).toEqual([
      'services[0].mcp.paymentRequired: `tool-result` answers with the x402 offer, which `x402: false` turns off',
    ]);
    expect(problemsOf(service({ paymentRequired: 'tool-result' }, { uses: 5 }))).toEqual([
      'services[0].mcp.paymentRequired: `tool-result` sells single calls, not `uses` or a `balance`',
    ]);
    // Without a top-level `x402` block there is no offer to answer with.
    await expect(
      checkGatewayConfig(
        parseGatewayConfig(service({ paymentRequired: 'tool-result' }), { env: {} }),
        {},
        dir,
      ),
    ).rejects.toMatchObject({
      code: 'invalid_config',
      message: expect.stringContaining(
        'mcp.paymentRequired: tool-result needs the top-level `x402` block',
      ),
    });
  });

  it('checks an llm block: its model table, its providers, and what it cannot be sold with', async () => {
    const service = (llm: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      lightning: LIGHTNING,
      services: [
        {
          name: 'llm',
          path: '/v1',
          upstream: 'http://127.0.0.1:9/v1',
          balance: '5000 sat',
          llm,
          ...extra,
        },
      ],
    });
    const good = {
      providers: { local: { upstream: 'http://127.0.0.1:11434/v1' } },
      models: {
        'gpt-4o-mini': { input: '150 sat', output: '600 sat', cachedInput: '75 sat' },
        llama: { provider: 'local', upstreamModel: 'llama3.1:8b', input: '0 sat', output: '0 sat' },
      },
      defaultMaxTokens: 2048,
    };
    expect(problemsOf(service(good))).toEqual([]);
    await expect(
      checkGatewayConfig(parseGatewayConfig(service(good), { env: {} }), {}, dir),
    ).resolves.toBeUndefined();
    expect(
      problemsOf(
        service({
          providers: { local: { upstream: 'ftp://x' } },
          models: {
            a: { input: '1 sat', output: '$1' },
            b: { input: '1 sat', output: '1 sat', outputs: '2 sat' },
          },
        }),
      ),
    ).toEqual([
      'services[0].llm.providers.local.upstream: must be an http:// or https:// URL',
      'services[0].llm.models.a: give input, output and cachedInput in one unit (all sats or all dollars)',
      'services[0].llm.models.b.outputs: unknown field; did you mean `output`?',
      "services[0].llm.models.a.output: '$1' is in dollars, and invoices are in sats: set `paywall.usdPerBtc` (for example `usdPerBtc: '65000'`), or write the price in sats",
    ]);
    const { balance: _balance, ...unsold } = service({
      providers: { local: { upstream: 'http://127.0.0.1:11434/v1' } },
      models: { a: { provider: 'remote', input: '$1', output: '$1' } },
      defaultPrices: { provider: 'elsewhere', input: '1 sat', output: '2 sat' },
    }).services[0] as Record<string, unknown>;
    expect(
      problemsOf({
        lightning: LIGHTNING,
        services: [{ ...unsold, price: '1 sat', uses: 3 }],
      }),
    ).toEqual([
      'services[0].price: an `llm` service is priced by its model table, per token',
      'services[0].uses: an `llm` service is priced by its model table, per token',
      'services[0].balance: is required with `llm`: what one payment buys, drawn per call',
      'services[0].llm.models.a.provider: "remote" is not in `llm.providers`; the providers are local (without `provider`, a model goes to the service\'s `upstream`)',
      'services[0].llm.defaultPrices.provider: "elsewhere" is not in `llm.providers`; the providers are local (without `provider`, a model goes to the service\'s `upstream`)',
      "services[0].llm.models.a.input: '$1' is in dollars, and invoices are in sats: set `paywall.usdPerBtc` (for example `usdPerBtc: '65000'`), or write the price in sats",
      "services[0].llm.models.a.output: '$1' is in dollars, and invoices are in sats: set `paywall.usdPerBtc` (for example `usdPerBtc: '65000'`), or write the price in sats",
    ]);
    expect(problemsOf(service({ models: {} }))).toEqual([
      'services[0].llm.models: must name at least one model (or set `llm.defaultPrices`)',
    ]);
  });

  it('says what a misspelled or misplaced key meant, and what a value may be', () => {
    const base = { lightning: LIGHTNING, services: [] };
    const service = { name: 'api', upstream: 'http://127.0.0.1:8080', price: '10 sat' };
    expect(
      problemsOf({
        ...base,
        paywal: {},
        services: [{ name: 'api', upstrem: 'http://127.0.0.1:8080', price: '10 sat' }],
      }),
    ).toEqual([
      'services[0].upstream: is required',
      'services[0].upstrem: unknown field; did you mean `upstream`?',
      'paywal: unknown field; did you mean `paywall`?',
    ]);
    expect(problemsOf({ ...base, services: [{ ...service, trustProxy: true }] })).toEqual([
      'services[0].trustProxy: unknown field; `trustProxy` belongs in `paywall`',
    ]);
    expect(problemsOf({ ...base, admin: { tokn: 'x', colour: 1 } })).toEqual([
      'admin.tokn: unknown field; did you mean `token`?',
      'admin.colour: unknown field; the fields here are `token`, `listen`, `overlayFile`, `env`',
    ]);
    expect(problemsOf({ ...base, services: [{ ...service, validFor: true }] })).toEqual([
      "services[0].validFor: must be whole seconds or text such as '90s', '15m', '1h', '7d'",
    ]);
    expect(problemsOf({ ...base, paywall: { trustProxy: 'x' } })).toEqual([
      'paywall.trustProxy: must be true or false or a number',
    ]);
  });

  it('names paywall.usdPerBtc for a dollar price without a rate, wherever the price is', () => {
    const dollars = {
      lightning: LIGHTNING,
      services: [
        {
          name: 'api',
          upstream: 'http://127.0.0.1:8080',
          price: '$0.001',
          pricing: [{ field: 'model', prices: { small: '2 sat', large: '$0.01' } }],
        },
      ],
    };
    const advice =
      "is in dollars, and invoices are in sats: set `paywall.usdPerBtc` (for example `usdPerBtc: '65000'`), or write the price in sats";
    expect(problemsOf(dollars)).toEqual([
      `services[0].price: '$0.001' ${advice}`,
      `services[0].pricing[0].prices.large: '$0.01' ${advice}`,
    ]);
    expect(problemsOf({ ...dollars, paywall: { usdPerBtc: '65000' } })).toEqual([]);
    // One amount grammar: YAML numbers are sats.
    const numbers = parseGatewayConfig(
      {
        lightning: LIGHTNING,
        services: [{ name: 'api', upstream: 'http://127.0.0.1:8080', price: 10 }],
      },
      { env: {} },
    );
    expect(numbers.services[0]?.price).toBe('10');
  });

  it('expands ${ENV} and ${ENV:-default}; $$ is a dollar sign', () => {
    const config = parseGatewayConfig(
      {
        lightning: '${LN}',
        services: [
          {
            name: 'api',
            upstream: 'http://${HOST:-127.0.0.1}:8080',
            price: '10 sat',
            headers: { Authorization: 'Bearer ${KEY}', 'X-Price': '$$5' },
          },
        ],
      },
      { env: { LN: LIGHTNING, KEY: 'k1' } },
    );
    expect(config.lightning).toBe(LIGHTNING);
    expect(config.services[0]?.upstream).toBe('http://127.0.0.1:8080');
    expect(config.services[0]?.headers).toEqual({ Authorization: 'Bearer k1', 'X-Price': '$5' });
  });

  it('reports YAML syntax errors with their line, and resolves relative paths against the file', async () => {
    const broken = write('broken.yaml', 'lightning: x\nservices:\n  - name: [unclosed\n');
    await expect(loadGatewayConfig(broken, {})).rejects.toThrow(
      /broken\.yaml:\n {2}Flow sequence .+ at line \d+, column \d+$/,
    );
    const good = write(
      'good.yaml',
      `lightning: ${LIGHTNING}\ndataDir: state\nstore: sqlite:db/t.sqlite\nservices: []\n`,
    );
    const config = await loadGatewayConfig(good, {});
    expect(config.dataDir).toBe(join(dir, 'state'));
    expect(config.store).toEqual({ kind: 'sqlite', path: join(dir, 'db/t.sqlite') });
  });

  it('`tollway serve --check` exits 0 for a valid config and 1 naming the fields of an invalid one', async () => {
    const valid = write(
      'valid.yaml',
      [
        `lightning: ${LIGHTNING}`,
        'services:',
        '  - name: llm',
        '    path: /v1',
        '    upstream: https://api.example.com/v1',
        '    stripPrefix: true',
        '    price: 5 sat',
        '    pricing:',
        '      - { method: POST, field: model, prices: { small: 1 sat, big: 20 sat } }',
        '  - name: docs',
        '    upstream: http://127.0.0.1:3000',
        '    auth: off',
        '',
      ].join('\n'),
    );
    const ok = await runCli('serve', '--config', valid, '--check');
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toContain('valid (2 services: llm, docs)');

    const engineRefused = write(
      'refused.yaml',
      `lightning: ${LIGHTNING}\nservices:\n  - { name: a, upstream: 'http://127.0.0.1:1', price: 20 sat, balance: 10 sat }\n`,
    );
    const refused = await runCli('serve', '--config', engineRefused, '--check');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'services[0] (a): the price of a request exceeds the balance sold',
    );

    const badLightning = write('ln.yaml', 'lightning: carrier-pigeon://x\nservices: []\n');
    const ln = await runCli('serve', '--config', badLightning, '--check');
    expect(ln.code).toBe(1);
    expect(ln.stderr).toMatch(/invalid_config: lightning: /);

    const missing = await runCli('serve', '--config', join(dir, 'absent.yaml'), '--check');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('absent.yaml: cannot be read');
  });
});
