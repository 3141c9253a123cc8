/**
 * Tracing through a real gateway (`createGateway`, what `tollway serve` runs) with
 * `tracing: { enabled: true }`, its spans exported to an in-process collector registered as the
 * global tracer provider (as `node --import` with the OpenTelemetry Node SDK registers one): a
 * 402, a paid L402 request with the upstream call under the engine's handler span, a paid request
 * whose upstream is down (released, the upstream span failed), and no secret anywhere — the
 * preimage, the macaroon, the Authorization value, the master secret, the token's root key, the
 * admin token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { parseL402Credential } from '@tollway/sdk/l402';
import { createDevNetwork, type DevNetwork } from '@tollway/sdk/lightning/dev';
import { createMasterSecret } from '@tollway/sdk/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRootKeys } from '../../../sdk/src/server/root-keys.js';
import {
  type Collector,
  collectSpans,
  leakedSecrets,
  spansNamed,
  treeOf,
} from '../../../sdk/test/support/tracing.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { createGateway, type Gateway, type GatewayLogger } from '../../src/gateway/gateway.js';
import { payL402, startUpstream, type Upstream } from './support.js';

const quiet: GatewayLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** The one request span that ended, once the spans under it did too. */
async function requestTree(collector: Collector, children: number) {
  return vi.waitFor(() => {
    const spans = collector.spans();
    const [root, ...more] = spansNamed(spans, 'tollway.request');
    expect(more).toHaveLength(0);
    if (root === undefined) throw new Error('no request span yet');
    expect(spans.length).toBeGreaterThanOrEqual(children + 1);
    return { root, spans };
  });
}

describe('tollway serve with tracing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-tracing-'));
  const secret = createMasterSecret();
  const adminToken = 'admin-token-of-the-tracing-test';
  let collector: Collector;
  let network: DevNetwork;
  let upstream: Upstream;
  let gateway: Gateway;
  const agent = () => network.backend('agent');

  beforeAll(async () => {
    collector = collectSpans();
    network = createDevNetwork({ path: ':memory:' });
    network.openWallet('shop', { balanceMsat: 0n });
    network.openWallet('agent');
    upstream = await startUpstream((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"sunny":true}');
    });
    const config = parseGatewayConfig(
      {
        listen: '127.0.0.1:0',
        dataDir: dir,
        lightning: 'dev+http://127.0.0.1:9?wallet=shop&token=unused',
        secrets: { env: 'TRACING_TEST_SECRETS' },
        admin: { token: adminToken },
        tracing: { enabled: true },
        paywall: { rateLimits: { challenges: false } },
        services: [
          { name: 'forecast', path: '/forecast', upstream: upstream.url, price: '10 sat', uses: 2 },
          { name: 'down', path: '/down', upstream: 'http://127.0.0.1:9', price: '5 sat', uses: 1 },
        ],
      },
      { env: {} },
    );
    gateway = await createGateway({
      config,
      lightning: network.backend('shop'),
      logger: quiet,
      baseDir: dir,
      env: { TRACING_TEST_SECRETS: secret },
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    await network?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('traces a 402: the request span and its challenge', async () => {
    collector.reset();
    const unpaid = await fetch(`${gateway.url}/forecast`);
    expect(unpaid.status).toBe(402);
    const { root, spans } = await requestTree(collector, 1);
    expect(treeOf(root, spans)).toEqual({
      name: 'tollway.request',
      children: [{ name: 'tollway.challenge', children: [] }],
    });
    expect(root.attributes).toMatchObject({
      'tollway.service': 'forecast',
      'tollway.outcome': 'challenged',
      'tollway.error.code': 'payment_required',
      'http.response.status_code': 402,
    });
  });

  it('traces a paid request: the upstream call under the handler span; no secret in any span', async () => {
    const unpaid = await fetch(`${gateway.url}/forecast`);
    const authorization = await payL402(unpaid, agent());
    collector.reset();
    const paid = await fetch(`${gateway.url}/forecast?city=Oslo`, {
      headers: { authorization },
    });
    expect(paid.status).toBe(200);
    await paid.text();
    const { root, spans } = await requestTree(collector, 5);
    expect(treeOf(root, spans)).toEqual({
      name: 'tollway.request',
      children: [
        { name: 'tollway.verify', children: [] },
        { name: 'tollway.reserve', children: [] },
        { name: 'tollway.handler', children: [{ name: 'tollway.upstream', children: [] }] },
        { name: 'tollway.settle', children: [] },
      ],
    });
    expect(root.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/forecast',
      'http.response.status_code': 200,
      'tollway.service': 'forecast',
      'tollway.outcome': 'paid',
      'tollway.protocol': 'l402',
      'tollway.paid.amount': '10000',
      'tollway.charged.amount': '1',
      'tollway.charged.unit': 'uses',
    });
    const [call] = spansNamed(spans, 'tollway.upstream') as [ReadableSpan];
    expect(call.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': `${upstream.url}/forecast`,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(upstream.url).port),
      'tollway.service': 'forecast',
      'http.response.status_code': 200,
    });
    const credential = parseL402Credential(authorization);
    const macaroon = credential?.macaroons[0];
    if (credential === undefined || macaroon === undefined) throw new Error('no credential');
    expect(
      leakedSecrets(spans, {
        preimage: credential.preimage,
        authorization,
        'macaroon signature': macaroon.signature,
        'master secret': secret,
        'root key': createRootKeys([secret]).rootKey(macaroon.identifier),
        'admin token': adminToken,
      }),
    ).toEqual([]);
  });

  it('traces a paid request whose upstream is down: released, the upstream span failed', async () => {
    const authorization = await payL402(await fetch(`${gateway.url}/down`), agent());
    collector.reset();
    const failed = await fetch(`${gateway.url}/down`, { headers: { authorization } });
    expect(failed.status).toBe(502);
    const { root, spans } = await requestTree(collector, 4);
    const [call] = spansNamed(spans, 'tollway.upstream') as [ReadableSpan];
    expect(call.attributes['error.type']).toBe('upstream_unavailable');
    expect(root.attributes).toMatchObject({
      'tollway.outcome': 'paid',
      'tollway.released.amount': '1',
      'tollway.released.unit': 'uses',
    });
    expect(root.attributes['tollway.charged.amount']).toBeUndefined();
  });
});
