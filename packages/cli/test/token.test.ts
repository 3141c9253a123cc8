import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseL402Challenges } from '@tollway/sdk/l402';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../sdk/test/adapters/conformance.js';
import { runCli } from './run-cli.js';

// Vectors from the shared L402 vectors (checked against an independent implementation).
const vectors = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/l402-vectors.json', import.meta.url), 'utf8'),
);
const full = vectors.macaroons[1];
const aperture = vectors.realChallenge;
const apertureMacaroon = /macaroon="([^"]+)"/.exec(aperture.header)?.[1] as string;

describe('tollway token decode', () => {
  it('prints a real Aperture token as JSON', async () => {
    const { code, stdout } = await runCli('token', 'decode', apertureMacaroon);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      location: 'lsat',
      identifier: {
        version: 0,
        paymentHash: aperture.paymentHashHex,
        tokenId: aperture.tokenIdHex,
      },
      caveats: aperture.caveats,
      signature: aperture.signatureHex,
    });
  });

  it('reads a whole Authorization value and checks the preimage against the payment hash', async () => {
    const { code, stdout } = await runCli(
      'token',
      'decode',
      `LSAT ${full.base64}:${full.preimageHex.toUpperCase()}`,
    );
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.preimage).toBe(full.preimageHex);
    expect(out.preimageMatchesPaymentHash).toBe(true);
    expect(out.identifier.tokenId).toBe(full.tokenIdHex);
  });

  it('reports a malformed token with its code and exit 1', async () => {
    const { code, stderr } = await runCli(
      'token',
      'decode',
      vectors.negative.invalidMacaroonFromSpecExample,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/invalid_macaroon|invalid_base64/);
  });
});

describe('tollway token verify', () => {
  const token = `${full.base64}:${full.preimageHex}`;

  it('accepts a valid token with its root key and preimage', async () => {
    const { code, stdout } = await runCli('token', 'verify', token, '--root-key', full.rootKeyHex);
    expect([code, stdout]).toEqual([
      0,
      'valid: checked preimage, signature, caveats (service svc)\n',
    ]);
  });

  it('names the reason a token is refused', async () => {
    const cases: Array<[string[], string]> = [
      [['--root-key', '00'.repeat(32)], 'invalid_signature'],
      [['--root-key', full.rootKeyHex, '--preimage', '11'.repeat(32)], 'preimage_mismatch'],
      [['--root-key', full.rootKeyHex, '--now', '4102444800'], 'token_expired'],
      [['--root-key', full.rootKeyHex, '--service', 'other'], 'wrong_service'],
      [['--root-key', full.rootKeyHex, '--capability', 'multiply'], 'caveat_not_satisfied'],
    ];
    for (const [flags, reason] of cases) {
      const { code, stdout } = await runCli('token', 'verify', token, ...flags, '--json');
      expect([flags, code, JSON.parse(stdout).code]).toEqual([flags, 1, reason]);
    }
  });

  it('checks signature and caveats alone when no preimage is given, and says so', async () => {
    const { code, stdout } = await runCli(
      'token',
      'verify',
      full.base64,
      '--root-key',
      full.rootKeyHex,
    );
    expect(code).toBe(0);
    expect(stdout).toContain('not the payment: no preimage given');
  });

  it('is a usage error without --root-key', async () => {
    const { code, stderr } = await runCli('token', 'verify', token);
    expect(code).toBe(64);
    expect(stderr).toContain('--root-key');
  });
});

describe('tollway token verify with the master secret of a paywall', () => {
  const secret = createMasterSecret();
  const older = createMasterSecret();
  const dir = mkdtempSync(join(tmpdir(), 'tollway-token-'));
  const network = createDevNetwork({ path: ':memory:' });
  let credential: string;

  beforeAll(async () => {
    network.openWallet('shop');
    const payer = network.openWallet('payer');
    const paywall = createPaywall({
      lightning: network.backend('shop'),
      store: createMemoryStore(),
      secrets: [secret],
      rateLimits: { challenges: false },
    });
    const route = paywall.route({
      service: 'forecast',
      price: '1 sat',
      scope: { paths: ['/v1/forecast'], methods: ['GET'] },
    });
    const served = await listen(
      createServer(withPaywall(paywall, route, (_req, res) => void res.end())),
    );
    const unpaid = await fetch(`${served.url}/v1/forecast`);
    const [offer] = parseL402Challenges(unpaid.headers.get('www-authenticate') ?? '');
    if (offer === undefined) throw new Error('no L402 challenge');
    const paid = await network.backend(payer.name).payInvoice({ paymentRequest: offer.invoice });
    credential = `${offer.macaroon}:${paid.preimage}`;
    await served.close();
    await paywall.close();
  });
  afterAll(async () => {
    await network.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('derives the root key from the secret, and says which scope it did not check', async () => {
    const { code, stdout } = await runCli('token', 'verify', credential, '--master-secret', secret);
    expect(code).toBe(0);
    expect(stdout).toBe(
      'valid: checked preimage, signature, caveats (service forecast), not the path: give --path (the token grants /v1/forecast), not the method: give --method (the token grants GET)\n',
    );
    const post = await runCli(
      'token',
      'verify',
      credential,
      '--master-secret',
      secret,
      '--method',
      'POST',
      '--json',
    );
    expect([post.code, JSON.parse(post.stdout).code]).toEqual([1, 'caveat_not_satisfied']);
    const scoped = await runCli(
      'token',
      'verify',
      credential,
      '--master-secret',
      secret,
      '--method',
      'get',
      '--path',
      '/v1/forecast',
    );
    expect(scoped.stdout).toBe('valid: checked preimage, signature, caveats (service forecast)\n');
  });

  it('reads the gateway secrets file (current first) or a variable, and refuses another secret', async () => {
    const file = join(dir, 'secrets');
    writeFileSync(file, `# tollway master secrets\n${older}\n${secret}\n`);
    expect((await runCli('token', 'verify', credential, '--master-secret', `@${file}`)).code).toBe(
      0,
    );
    process.env.TOLLWAY_TEST_SECRETS = `${older},${secret}`;
    try {
      expect(
        (await runCli('token', 'verify', credential, '--master-secret', 'env:TOLLWAY_TEST_SECRETS'))
          .code,
      ).toBe(0);
    } finally {
      delete process.env.TOLLWAY_TEST_SECRETS;
    }
    const wrong = await runCli('token', 'verify', credential, '--master-secret', older, '--json');
    expect([wrong.code, JSON.parse(wrong.stdout).code]).toEqual([1, 'invalid_signature']);
    const both = await runCli(
      'token',
      'verify',
      credential,
      '--master-secret',
      secret,
      '--root-key',
      '00',
    );
    expect(both.code).toBe(64);
  });
});

describe('the installed tollway bin', () => {
  const bin = new URL('../bin/tollway.js', import.meta.url).pathname;
  // Under CI the build must exist (npm test builds first); locally it may not yet.
  it.skipIf(!process.env.CI && !existsSync(new URL('../dist/main.js', import.meta.url)))(
    'runs from the build',
    () => {
      const out = execFileSync(process.execPath, [bin, 'token', 'decode', apertureMacaroon], {
        encoding: 'utf8',
      });
      expect(JSON.parse(out).signature).toBe(aperture.signatureHex);
    },
  );
});
