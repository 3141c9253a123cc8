import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
