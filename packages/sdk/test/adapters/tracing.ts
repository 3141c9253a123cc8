/**
 * Tracing through an adapter, over real HTTP on loopback: a paywall with `tracing: true` behind the
 * adapter, an in-process collector (the OpenTelemetry SDK's in-memory exporter) registered as the
 * global tracer provider, and a paid L402 request. Checks the span tree, the payment attributes,
 * and that no secret the test knows (preimage, macaroon, Authorization value, master secret, root
 * key, MPP challenge key) appears in any span. Every adapter test runs it.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bytesToHex } from '../../src/internal/bytes.js';
import { parseL402Credential } from '../../src/l402/credential.js';
import { decodeIdentifier } from '../../src/l402/identifier.js';
import { decodeInvoice } from '../../src/lightning/bolt11.js';
import { createPaywall, type Paywall } from '../../src/server/paywall.js';
import { createMasterSecret, createRootKeys } from '../../src/server/root-keys.js';
import { createMemoryStore } from '../../src/stores/memory.js';
import {
  createDevSetup,
  createMemoryLogger,
  offersOf,
  payL402,
  problemOf,
} from '../support/paywall.js';
import {
  type Collector,
  collectSpans,
  leakedSecrets,
  spansNamed,
  treeOf,
} from '../support/tracing.js';
import { type AdapterHarness, type Served, send } from './conformance.js';

/** The one request span that ended, once it did, with every span collected by then. */
async function requestSpan(
  collector: Collector,
): Promise<{ root: ReadableSpan; spans: ReadableSpan[] }> {
  return vi.waitFor(() => {
    const spans = collector.spans();
    const [root, ...more] = spansNamed(spans, 'tollway.request');
    expect(more).toHaveLength(0);
    if (root === undefined) throw new Error('no request span yet');
    return { root, spans };
  });
}

export function describeTracing(harness: AdapterHarness): void {
  describe(`${harness.name} adapter: OpenTelemetry spans`, () => {
    const secret = createMasterSecret();
    let collector: Collector;
    let dev: ReturnType<typeof createDevSetup>;
    let traced: Paywall;
    let untraced: Paywall;
    let app: Served;
    let plain: Served;

    beforeAll(async () => {
      collector = collectSpans();
      dev = createDevSetup();
      const options = {
        lightning: dev.shop,
        store: createMemoryStore(),
        secrets: [secret],
        logger: createMemoryLogger(),
      };
      traced = createPaywall({ ...options, tracing: true });
      untraced = createPaywall(options);
      const onError = (error: unknown) => {
        throw error;
      };
      app = await harness.serve(
        traced,
        [
          {
            method: 'GET',
            path: '/twice',
            route: traced.route({ service: 'twice', price: '10 sat', uses: 2 }),
          },
          {
            method: 'GET',
            path: '/forecast',
            route: traced.route({ service: 'forecast', price: '10 sat', validFor: '1h' }),
          },
        ],
        { onError },
      );
      plain = await harness.serve(
        untraced,
        [
          {
            method: 'GET',
            path: '/forecast',
            route: untraced.route({ service: 'forecast', price: '10 sat', validFor: '1h' }),
          },
        ],
        { onError },
      );
    });

    afterAll(async () => {
      await app?.close();
      await plain?.close();
      await traced?.close();
      await untraced?.close();
      await dev?.network.close();
    });

    it('traces a 402: the request span with the challenge under it, the price and the invoice', async () => {
      collector.reset();
      const unpaid = await send(`${app.url}/twice?city=Oslo`);
      expect(unpaid.status).toBe(402);
      const { root, spans } = await requestSpan(collector);
      expect(treeOf(root, spans)).toEqual({
        name: 'tollway.request',
        children: [{ name: 'tollway.challenge', children: [] }],
      });
      const { paymentHash } = decodeInvoice(offersOf(unpaid).l402.invoice);
      expect(root.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/twice',
        'http.response.status_code': 402,
        'tollway.service': 'twice',
        'tollway.outcome': 'challenged',
        'tollway.error.code': 'payment_required',
        'tollway.price.amount': '10000',
        'tollway.price.unit': 'msat',
        'tollway.offers': (problemOf(unpaid).offers as Array<{ protocol: string }>).map(
          (offer) => offer.protocol,
        ),
        'tollway.payment.hash': paymentHash,
      });
    });

    it('traces a paid L402 request: verify, reserve, handler, settle; what it paid and was charged; no secret', async () => {
      const unpaid = await send(`${app.url}/twice`);
      const macaroon = offersOf(unpaid).l402.macaroon;
      const authorization = await payL402(unpaid, dev.agent);
      collector.reset();
      const paid = await send(`${app.url}/twice`, { headers: [['Authorization', authorization]] });
      expect(paid.status).toBe(200);
      const { root, spans } = await requestSpan(collector);
      expect(treeOf(root, spans)).toEqual({
        name: 'tollway.request',
        children: [
          { name: 'tollway.verify', children: [] },
          { name: 'tollway.reserve', children: [] },
          { name: 'tollway.handler', children: [] },
          { name: 'tollway.settle', children: [] },
        ],
      });
      const credential = parseL402Credential(authorization);
      const token = credential?.macaroons[0];
      if (credential === undefined || token === undefined) throw new Error('no credential');
      const identifier = decodeIdentifier(token.identifier);
      expect(root.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/twice',
        'http.response.status_code': 200,
        'tollway.service': 'twice',
        'tollway.outcome': 'paid',
        'tollway.protocol': 'l402',
        'tollway.token.id': bytesToHex(identifier.tokenId),
        'tollway.payment.hash': bytesToHex(identifier.paymentHash),
        'tollway.paid.amount': '10000',
        'tollway.paid.unit': 'msat',
        'tollway.charged.amount': '1',
        'tollway.charged.unit': 'uses',
      });
      const keys = createRootKeys([secret]);
      expect(
        leakedSecrets(spans, {
          preimage: credential.preimage,
          macaroon,
          'macaroon signature': token.signature,
          authorization,
          'master secret': secret,
          'root key': keys.rootKey(token.identifier),
          'MPP challenge key': keys.challengeKey(),
        }),
      ).toEqual([]);
    });

    it('ends the request span of a time-bound token with the answer, with no settle span', async () => {
      const authorization = await payL402(await send(`${app.url}/forecast`), dev.agent);
      collector.reset();
      const paid = await send(`${app.url}/forecast`, {
        headers: [['Authorization', authorization]],
      });
      expect(paid.status).toBe(200);
      const { root, spans } = await requestSpan(collector);
      expect(treeOf(root, spans).children.map((child) => child.name)).toEqual([
        'tollway.verify',
        'tollway.handler',
      ]);
      expect(root.attributes).toMatchObject({
        'tollway.outcome': 'paid',
        'http.response.status_code': 200,
      });
    });

    it('makes no span when tracing is off', async () => {
      collector.reset();
      const authorization = await payL402(await send(`${plain.url}/forecast`), dev.agent);
      const paid = await send(`${plain.url}/forecast`, {
        headers: [['Authorization', authorization]],
      });
      expect(paid.status).toBe(200);
      expect(collector.spans()).toEqual([]);
    });
  });
}
