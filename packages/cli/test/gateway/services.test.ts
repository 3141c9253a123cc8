import { createDevNetwork } from '@tollway/sdk/lightning/dev';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig, parseServiceConfig } from '../../src/gateway/config.js';
import { createServiceTable, pathWithin } from '../../src/gateway/services.js';

const network = createDevNetwork({ path: ':memory:' });
network.openWallet('shop');
const paywall = createPaywall({
  lightning: network.backend('shop'),
  store: createMemoryStore(),
  secrets: [createMasterSecret()],
});
afterAll(() => network.close());

function table(services: unknown[]) {
  const config = parseGatewayConfig({
    lightning: 'dev+http://127.0.0.1:9?wallet=a&token=b',
    services,
  });
  return createServiceTable(config.services, () => paywall);
}

describe('gateway services', () => {
  it('matches by host and path prefix on segment boundaries; the first match wins', () => {
    const services = table([
      { name: 'tenant', host: '*.tenants.test', upstream: 'http://127.0.0.1:1', auth: 'off' },
      { name: 'ported', host: 'api.test:8443', upstream: 'http://127.0.0.1:1', auth: 'off' },
      {
        name: 'weather',
        host: 'API.test',
        path: '/weather',
        upstream: 'http://127.0.0.1:1',
        auth: 'off',
      },
      { name: 'all', upstream: 'http://127.0.0.1:1', auth: 'off' },
    ]);
    const name = (host: string | undefined, path: string) => services.match(host, path)?.name;
    expect(name('a.tenants.test', '/weather')).toBe('tenant');
    expect(name('tenants.test', '/x')).toBe('all');
    expect(name('api.test:8443', '/weather')).toBe('ported');
    expect(name('api.test:80', '/weather/today')).toBe('weather');
    expect(name('api.test', '/weather')).toBe('weather');
    expect(name('api.test', '/weatherman')).toBe('all');
    expect(name('other.test', '/weather')).toBe('all');
    expect(name(undefined, '/weather')).toBe('all');
  });

  it('rewrites upstream paths: strip the service prefix or another, below the upstream base path', () => {
    const services = table([
      {
        name: 'strip',
        path: '/llm',
        upstream: 'https://api.example.com/v1/',
        stripPrefix: true,
        auth: 'off',
      },
      { name: 'keep', path: '/keep', upstream: 'http://127.0.0.1:1', auth: 'off' },
      {
        name: 'other',
        path: '/a',
        upstream: 'http://127.0.0.1:1/base',
        stripPrefix: '/a/b',
        auth: 'off',
      },
    ]);
    const rewrite = (path: string, target: string) =>
      services.match(undefined, path)?.rewrite(target);
    expect(rewrite('/llm/chat', '/llm/chat/completions?stream=true')).toBe(
      '/v1/chat/completions?stream=true',
    );
    expect(rewrite('/llm', '/llm')).toBe('/v1/');
    expect(rewrite('/keep', '/keep/x?y=1')).toBe('/keep/x?y=1');
    expect(rewrite('/a', '/a/b/c')).toBe('/base/c');
    expect(rewrite('/a', '/a/bc')).toBe('/base/a/bc');
    expect(services.match(undefined, '/llm')?.origin).toBe('https://api.example.com');
  });

  it('names the service when the engine refuses its options', () => {
    // A service the admin API receives is checked on its own, so a dollar price without a rate
    // reaches the engine (a config file is refused earlier, naming `paywall.usdPerBtc`).
    const service = parseServiceConfig(
      { name: 'svc', upstream: 'http://127.0.0.1:1', price: '$0.01' },
      {},
      [],
    );
    expect(() => createServiceTable([service], () => paywall)).toThrow(
      /services\[0\] \(svc\): price is in dollars but the paywall has no `rates`/,
    );
  });

  it('matches path prefixes on segment boundaries', () => {
    expect(pathWithin('/v1', '/v1')).toBe(true);
    expect(pathWithin('/v1/x', '/v1')).toBe(true);
    expect(pathWithin('/v10', '/v1')).toBe(false);
    expect(pathWithin('/v1/x', '/v1/')).toBe(true);
    expect(pathWithin('/v1', '/v1/')).toBe(false);
    expect(pathWithin('/anything', '/')).toBe(true);
  });
});
