import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { parseLightningConnection } from './connection-string.js';

function codeOf(text: string): string {
  try {
    parseLightningConnection(text);
    return 'parsed';
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

describe('parseLightningConnection', () => {
  it('parses every backend form', () => {
    expect(parseLightningConnection('lnd+https://node.example:8080?macaroon=0201AB')).toEqual({
      kind: 'lnd',
      url: 'https://node.example:8080',
      macaroonHex: '0201ab',
    });
    expect(parseLightningConnection('cln+https://10.0.0.2:3010?rune=abc-123=')).toEqual({
      kind: 'cln',
      url: 'https://10.0.0.2:3010',
      rune: 'abc-123=',
    });
    expect(
      parseLightningConnection('lnbits+https://legend.lnbits.com/?invoiceKey=inv&adminKey=adm'),
    ).toEqual({
      kind: 'lnbits',
      url: 'https://legend.lnbits.com',
      invoiceKey: 'inv',
      adminKey: 'adm',
    });
    expect(
      parseLightningConnection('lnbits+http://127.0.0.1:5000?adminKey=adm&network=regtest'),
    ).toEqual({
      kind: 'lnbits',
      url: 'http://127.0.0.1:5000',
      invoiceKey: 'adm',
      adminKey: 'adm',
      network: 'regtest',
    });
    expect(parseLightningConnection('phoenixd+http://127.0.0.1:9740?password=pw')).toEqual({
      kind: 'phoenixd',
      url: 'http://127.0.0.1:9740',
      password: 'pw',
    });
    expect(parseLightningConnection('dev+http://127.0.0.1:4242?wallet=alice&token=t0k')).toEqual({
      kind: 'dev',
      url: 'http://127.0.0.1:4242',
      wallet: 'alice',
      token: 't0k',
    });
    const nwc = `nostr+walletconnect://${'a'.repeat(64)}?relay=wss%3A%2F%2Frelay.example&secret=${'b'.repeat(64)}`;
    expect(parseLightningConnection(nwc)).toEqual({ kind: 'nwc', uri: nwc });
  });

  it('reads an lndconnect URI: base64url macaroon and DER certificate', () => {
    const parsed = parseLightningConnection(
      'lndconnect://127.0.0.1:10009?cert=MIIB&macaroon=AgEDbG5k',
    );
    expect(parsed).toMatchObject({
      kind: 'lnd',
      url: 'https://127.0.0.1:10009',
      macaroonHex: '0201036c6e64',
    });
    expect(parsed.kind === 'lnd' && parsed.certPem).toBe(
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    );
  });

  it('reads macaroon and certificate files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-conn-'));
    writeFileSync(join(dir, 'admin.macaroon'), Buffer.from([2, 1, 3]));
    writeFileSync(
      join(dir, 'tls.cert'),
      '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
    );
    const parsed = parseLightningConnection(
      `lnd+https://localhost:8080?macaroonPath=${join(dir, 'admin.macaroon')}&certPath=${join(dir, 'tls.cert')}`,
    );
    expect(parsed).toMatchObject({
      macaroonHex: '020103',
      certPem: expect.stringContaining('AA=='),
    });
  });

  it('rejects unknown schemes and missing credentials with a typed error', () => {
    expect(codeOf('')).toBe('invalid_connection_string');
    expect(codeOf('ftp://x')).toBe('invalid_connection_string');
    expect(codeOf('lnd+https://host:8080')).toBe('invalid_connection_string');
    expect(codeOf('phoenixd+http://host:9740')).toBe('invalid_connection_string');
    expect(codeOf('dev+http://host:1?wallet=a')).toBe('invalid_connection_string');
    expect(codeOf('lnd+https://host:8080?macaroon=***')).toBe('invalid_base64');
    expect(codeOf('lnbits+https://host?invoiceKey=k&network=moon')).toBe(
      'invalid_connection_string',
    );
  });
});
