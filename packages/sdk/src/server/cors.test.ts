import { describe, expect, it } from 'vitest';
import { createCors } from './cors.js';
import type { PaywallRequest } from './types.js';

const request = (method: string, headers: Record<string, string> = {}): PaywallRequest => ({
  method,
  url: '/x',
  headers: new Headers(headers),
  clientIp: '203.0.113.1',
});

describe('createCors', () => {
  it('allows any origin by default and exposes the payment headers', () => {
    const fromBrowser = request('GET', { origin: 'https://a.example' });
    expect(createCors(undefined).headers(fromBrowser)).toEqual([
      ['Access-Control-Allow-Origin', '*'],
      [
        'Access-Control-Expose-Headers',
        'WWW-Authenticate, Payment-Receipt, PAYMENT-REQUIRED, PAYMENT-RESPONSE, Tollway-Charged, Tollway-Remaining, Tollway-Reserved, Tollway-Credential',
      ],
    ]);
  });

  it('answers a request without Origin (no browser asks) with none, but a free answer always', () => {
    for (const cors of [createCors(undefined), createCors({ origin: 'https://a.example' })]) {
      expect(cors.headers(request('GET'))).toEqual([]);
      expect(cors.originHeaders(request('POST'))).toEqual([]);
    }
    expect(createCors(undefined).freeHeaders(request('GET'))).toEqual([
      ['Access-Control-Allow-Origin', '*'],
    ]);
    expect(createCors({ origin: 'https://a.example' }).freeHeaders(request('GET'))).toEqual([
      ['Vary', 'Origin'],
    ]);
  });

  it('answers preflights only', () => {
    const cors = createCors({ origin: 'https://a.example' });
    const preflight = cors.preflight(
      request('OPTIONS', { origin: 'https://a.example', 'access-control-request-method': 'POST' }),
      'OPTIONS',
    );
    expect(preflight?.status).toBe(204);
    expect(preflight?.headers).toContainEqual(['Access-Control-Allow-Origin', 'https://a.example']);
    expect(cors.preflight(request('OPTIONS'), 'OPTIONS')).toBeUndefined();
    expect(
      cors.preflight(request('GET', { 'access-control-request-method': 'GET' }), 'GET'),
    ).toBeUndefined();
  });

  it('sends nothing when turned off', () => {
    const cors = createCors(false);
    expect(cors.headers(request('GET'))).toEqual([]);
    expect(
      cors.preflight(request('OPTIONS', { 'access-control-request-method': 'GET' }), 'OPTIONS'),
    ).toBeUndefined();
  });
});
