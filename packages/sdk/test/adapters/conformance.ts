/**
 * The one conformance suite every framework adapter passes, over real HTTP on loopback: a real
 * paywall engine, a dev Lightning network whose `shop` wallet issues the invoices and whose
 * `agent` wallet pays them, and raw `node:http` requests (so repeated headers stay separate lines).
 *
 * An adapter test supplies an {@link AdapterHarness}: it mounts the suite's routes on a real server
 * of its framework, each behind the adapter, with a handler that answers 200 and
 * `{ payment, body }` (the PaymentContext it was given, and for POST the JSON body it read itself).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PaywallHandler } from '../../src/adapters/common.js';
import { bytesToHex, hexToBytes } from '../../src/internal/bytes.js';
import { parseChallenges } from '../../src/internal/www-authenticate.js';
import { formatL402Credential } from '../../src/l402/credential.js';
import { decodeIdentifier } from '../../src/l402/identifier.js';
import { formatMacaroon, parseMacaroon } from '../../src/l402/macaroon.js';
import { decodeInvoice } from '../../src/lightning/bolt11.js';
import { createLlmPricing } from '../../src/llm/pricing.js';
import { type PaymentChallenge, parsePaymentChallenges } from '../../src/mpp/challenge.js';
import { formatPaymentCredential } from '../../src/mpp/credential.js';
import { parsePaymentReceipt } from '../../src/mpp/receipt.js';
import { decodeSessionRequest } from '../../src/mpp/session-request.js';
import { createEventMeter } from '../../src/server/event-meter.js';
import type { OfferKind } from '../../src/server/offers.js';
import { createPaywall, type Paywall } from '../../src/server/paywall.js';
import { createMasterSecret } from '../../src/server/root-keys.js';
import type { Route } from '../../src/server/route.js';
import type { Store } from '../../src/server/store.js';
import type { PaywallDecision, PaywallRequest, PaywallResponse } from '../../src/server/types.js';
import { createMemoryStore } from '../../src/stores/memory.js';
import { createPostgresStore } from '../../src/stores/postgres.js';
import { createSqliteStore } from '../../src/stores/sqlite.js';
import {
  createDevSetup,
  createMemoryLogger,
  headerValues,
  invoiceOf,
  mppCredential,
  offersOf,
  payL402,
  problemOf,
} from '../support/paywall.js';
import { startTestPostgres } from '../support/postgres.js';

/** A route of the test app: where it is mounted, and its paywall route. */
interface AppRoute {
  method: 'GET' | 'POST';
  path: string;
  route: Route;
  /**
   * Makes the handler stream instead: it answers 200 `text/plain`, writes `first\n`, waits for
   * this promise, then ends with `last\n`.
   */
  stream?: () => Promise<void>;
  /** The status the handler answers with (read per request); default 200. */
  status?: () => number;
  /**
   * Makes the handler answer these chunks instead, as `text/event-stream` (after reading a POST's
   * JSON body its usual way), each written as it comes.
   */
  chunks?: readonly string[];
}

/** A running test app. */
export interface Served {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/** What an adapter test provides: how to serve routes behind its adapter. */
export interface AdapterHarness {
  name: string;
  /**
   * Whether a handler's error reaches the adapter before the framework answers it (a paywall
   * wrapped around the handler): the adapter then releases the charge, where a middleware sees the
   * framework's 500 and commits it, which charges nothing either.
   */
  handlerErrorsReachAdapter?: boolean;
  /**
   * Serves each route behind the adapter on 127.0.0.1 (port 0). Each handler answers 200 with the
   * JSON `{ payment, body }`, bigints as strings: the PaymentContext it got, and for POST the JSON
   * body it read the framework's usual way. `onError` goes to the adapter's option.
   */
  serve(
    paywall: PaywallHandler,
    routes: readonly AppRoute[],
    options: { onError: (error: unknown) => void },
  ): Promise<Served>;
}

/** A streamed answer: its head, its first chunk, what came so far, and its whole body. */
interface StreamedResult extends HttpResult {
  firstChunk: Promise<string>;
  whole: Promise<string>;
  /** The body received so far. */
  received(): string;
}

/** Sends a request (a GET without `body`) and resolves once the answer's head arrived. */
function openStream(
  url: string,
  headers: Array<[string, string]>,
  body?: string,
): Promise<StreamedResult> {
  const lines: Array<[string, string]> = [['Host', new URL(url).host], ...headers];
  if (body !== undefined) lines.push(['Content-Type', 'application/json']);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: body === undefined ? 'GET' : 'POST', headers: lines.flat(), agent: false },
      (res) => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          pairs.push([res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '']);
        }
        res.setEncoding('utf8');
        let body = '';
        const firstChunk = new Promise<string>((first) => res.once('data', first));
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        const whole = new Promise<string>((done, fail) => {
          res.on('end', () => done(body));
          res.on('error', fail);
        });
        resolve({
          status: res.statusCode ?? 0,
          headers: pairs,
          body: '',
          json: () => ({}),
          firstChunk,
          whole,
          received: () => body,
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Listens on 127.0.0.1, port 0. */
export async function listen(server: Server): Promise<Served> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A response as the engine's test helpers read it, from a real HTTP exchange. */
export interface HttpResult extends PaywallResponse {
  json(): Record<string, unknown>;
}

/** Serialises a PaymentContext (or anything with bigints) the way every harness handler does. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? item.toString() : item));
}

/**
 * Sends one request with exactly these header lines (repeats stay separate lines) and reads the
 * whole response.
 */
export function send(
  url: string,
  init: { method?: string; headers?: Array<[string, string]>; body?: string } = {},
): Promise<HttpResult> {
  // Header lines given as an array go out as they are: Node adds no Host line of its own.
  const headers: Array<[string, string]> = [['Host', new URL(url).host], ...(init.headers ?? [])];
  if (init.body !== undefined) headers.push(['Content-Type', 'application/json']);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? 'GET', headers: headers.flat(), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const pairs: Array<[string, string]> = [];
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            pairs.push([res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '']);
          }
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: pairs,
            body,
            json: () => JSON.parse(body) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const authorization = (value: string): Array<[string, string]> => [['Authorization', value]];
/** What a browser adds to a cross-origin request, which CORS headers answer. */
const browser: Array<[string, string]> = [['Origin', 'https://app.example.com']];

/**
 * The schemes of every challenge, in order. Node-based frameworks send one header line per
 * challenge; a Web `Response` (Hono) joins them into one comma-separated line: both are HTTP.
 */
function challengeSchemes(response: HttpResult): string[] {
  return parseChallenges(headerValues(response, 'www-authenticate')).map((c) => c.scheme);
}

/** The MPP charge challenge of a 402 (in its own line or joined with the others). */
function mppOffer(response: HttpResult): PaymentChallenge {
  const [challenge] = parsePaymentChallenges(headerValues(response, 'www-authenticate'));
  if (challenge === undefined) throw new Error('no MPP offer');
  return challenge;
}

/** The MPP session challenge of a 402. */
function sessionChallenge(response: HttpResult): PaymentChallenge {
  const found = parsePaymentChallenges(headerValues(response, 'www-authenticate')).find(
    (challenge) => challenge.intent === 'session',
  );
  if (found === undefined) throw new Error('no session offer');
  return found;
}

/** The refusal a response carries: its status and problem code. */
function refusal(response: HttpResult): [number, string] {
  return [response.status, problemOf(response).code];
}

/** An OpenAI chat completion stream with its usage chunk, as the metered route's handler sends it. */
const CHAT_STREAM: readonly string[] = [
  'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}\n\n',
  'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}],"usage":null}\n\n',
  'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}\n\n',
  'data: [DONE]\n\n',
];

/** Four events, priced 5 sat each on the `/ticks` route. */
const TICKS: readonly string[] = ['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n', 'data: 4\n\n'];

/** Runs the conformance suite against one adapter. */
export function describeConformance(harness: AdapterHarness): void {
  describe(`${harness.name} adapter conformance`, () => {
    let dev: ReturnType<typeof createDevSetup>;
    let paywall: Paywall;
    let app: Served;
    let clockOffsetMs = 0;
    const errors: unknown[] = [];
    const routes: Record<string, Route> = {};
    /** What the `/once` handler answers with. */
    let onceStatus = 200;
    const store = createMemoryStore();
    const llm = createLlmPricing({
      models: { 'test-model': { input: '100 sat', output: '400 sat' } },
    });

    beforeAll(async () => {
      dev = createDevSetup();
      paywall = createPaywall({
        lightning: dev.shop,
        store,
        secrets: [createMasterSecret()],
        // One test moves this clock two hours ahead and back. The total challenge bucket is
        // shared through the store in the clock of whoever took from it, so it would stay two
        // hours in debt afterwards; no test here is about challenge limits.
        rateLimits: { challenges: false, challengesTotal: false },
        logger: createMemoryLogger(),
        now: () => Date.now() + clockOffsetMs,
        sessions: { idleTimeout: 3600 },
      });
      routes.free = paywall.route({ free: true });
      routes.forecast = paywall.route({ service: 'forecast', price: '10 sat', validFor: '1h' });
      routes.other = paywall.route({ service: 'other', price: '10 sat' });
      routes.scoped = paywall.route({
        service: 'scoped',
        price: '10 sat',
        scope: { paths: ['/scoped/a'], methods: ['GET'] },
      });
      routes.twice = paywall.route({ service: 'twice', price: '10 sat', uses: 2 });
      routes.once = paywall.route({ service: 'once', price: '10 sat', uses: 1 });
      routes.llm = paywall.route({
        service: 'llm',
        readsBody: true,
        price: llm.price,
        meter: llm.meter,
        balance: '50 sat',
      });
      routes.ticks = paywall.route({
        service: 'ticks',
        price: '10 sat',
        balance: '10 sat',
        meter: createEventMeter('5 sat'),
      });
      routes.priced = paywall.route({
        service: 'priced',
        readsBody: true,
        price: (request) => `${(request.body as { sats: number }).sats} sat`,
      });
      app = await harness.serve(
        paywall,
        [
          { method: 'GET', path: '/free', route: routes.free },
          { method: 'GET', path: '/forecast', route: routes.forecast },
          { method: 'GET', path: '/other', route: routes.other },
          { method: 'GET', path: '/scoped/a', route: routes.scoped },
          { method: 'GET', path: '/scoped/b', route: routes.scoped },
          { method: 'POST', path: '/scoped/a', route: routes.scoped },
          { method: 'GET', path: '/twice', route: routes.twice },
          { method: 'GET', path: '/once', route: routes.once, status: () => onceStatus },
          { method: 'POST', path: '/llm', route: routes.llm, chunks: CHAT_STREAM },
          { method: 'POST', path: '/priced', route: routes.priced },
          { method: 'POST', path: '/ticks', route: routes.ticks, chunks: TICKS },
        ],
        { onError: (error) => errors.push(error) },
      );
    });

    afterAll(async () => {
      await app?.close();
      await paywall?.close();
      await dev?.network.close();
    });

    /** Asks for a 402 at `path`, pays its L402 offer, and returns the credential. */
    async function buyL402(path: string, method = 'GET'): Promise<string> {
      const unpaid = await send(app.url + path, { method });
      expect(unpaid.status).toBe(402);
      return payL402(unpaid, dev.agent);
    }

    it('lets a free route through, with a free PaymentContext', async () => {
      const response = await send(`${app.url}/free`);
      expect(response.status).toBe(200);
      expect(response.json().payment).toEqual({
        protocol: 'free',
        service: 'api',
        freeReason: 'free_route',
      });
      // A free answer may be shared by caches: its CORS headers do not depend on Origin.
      expect(headerValues(response, 'access-control-allow-origin')).toEqual(['*']);
    });

    it('answers an unpaid request with a 402: L402, LSAT and Payment challenges on one invoice', async () => {
      const response = await send(`${app.url}/forecast?city=Oslo`, { headers: browser });
      expect(response.status).toBe(402);
      expect(challengeSchemes(response)).toEqual(['LSAT', 'L402', 'Payment']);
      const { l402 } = offersOf(response);
      expect(headerValues(response, 'www-authenticate').join(', ')).toContain(
        `LSAT macaroon="${l402.macaroon}", invoice="${l402.invoice}"`,
      );
      expect(invoiceOf(mppOffer(response))).toBe(l402.invoice);
      const offers = problemOf(response).offers as Array<Record<string, string>>;
      expect(offers.map((offer) => offer.protocol)).toEqual(['l402', 'mpp']);
      expect(offers[0]?.invoice).toBe(l402.invoice);
      expect(problemOf(response)).toMatchObject({
        status: 402,
        code: 'payment_required',
        price: { amount: '10000', unit: 'msat' },
      });
      expect(headerValues(response, 'content-type')).toEqual(['application/problem+json']);
      expect(headerValues(response, 'cache-control')).toEqual(['no-store']);
      expect(headerValues(response, 'access-control-allow-origin')).toEqual(['*']);
      expect(headerValues(response, 'access-control-expose-headers').join(',')).toContain(
        'WWW-Authenticate',
      );
    });

    it('passes a paid L402 request to the handler with its PaymentContext', async () => {
      const credential = await buyL402('/forecast');
      const response = await send(`${app.url}/forecast`, { headers: authorization(credential) });
      expect(response.status).toBe(200);
      const macaroon = parseMacaroon(credential.slice('L402 '.length).split(':')[0] ?? '');
      const tokenId = bytesToHex(decodeIdentifier(macaroon.identifier).tokenId);
      // The token's `forecast_valid_until` caveat, in ms: when the credential stops being valid.
      const validUntil = macaroon.caveats
        .map((caveat) => new TextDecoder().decode(caveat.identifier))
        .find((condition) => condition.startsWith('forecast_valid_until='));
      expect(response.json().payment).toEqual({
        protocol: 'l402',
        tokenId,
        service: 'forecast',
        tier: 0,
        amount: '10000',
        unit: 'msat',
        expiresAt: Number(validUntil?.split('=')[1]) * 1000,
      });
      // An agent outside a browser sends no Origin: no CORS headers on its paid answer.
      expect(headerValues(response, 'access-control-allow-origin')).toEqual([]);
      const again = await send(`${app.url}/forecast`, {
        headers: [...authorization(credential.replace(/^L402 /, 'LSAT ')), ...browser],
      });
      expect(again.status).toBe(200);
      expect(headerValues(again, 'access-control-allow-origin')).toEqual(['*']);
    });

    it('passes a paid MPP request with a Payment-Receipt, once', async () => {
      const unpaid = await send(`${app.url}/forecast`);
      const challenge = mppOffer(unpaid);
      const paid = await dev.agent.payInvoice({ paymentRequest: invoiceOf(challenge) });
      const credential = mppCredential(challenge, paid.preimage);
      const response = await send(`${app.url}/forecast`, { headers: authorization(credential) });
      expect(response.status).toBe(200);
      expect(response.json().payment).toMatchObject({ protocol: 'mpp', service: 'forecast' });
      const [receipt] = headerValues(response, 'payment-receipt');
      expect(parsePaymentReceipt(receipt ?? '')).toMatchObject({
        status: 'success',
        method: 'lightning',
        reference: decodeInvoice(invoiceOf(challenge)).paymentHash,
        challengeId: challenge.id,
      });
      const replay = await send(`${app.url}/forecast`, { headers: authorization(credential) });
      expect(refusal(replay)).toEqual([401, 'credential_replayed']);
    });

    it('refuses an expired token with 401 token_expired and a fresh challenge', async () => {
      const credential = await buyL402('/forecast');
      clockOffsetMs = 2 * 3600_000;
      try {
        const response = await send(`${app.url}/forecast`, { headers: authorization(credential) });
        expect(refusal(response)).toEqual([401, 'token_expired']);
        expect(offersOf(response).l402.invoice).toMatch(/^lnbcrt/);
      } finally {
        clockOffsetMs = 0;
      }
    });

    it('refuses a token of another service with 401 wrong_service', async () => {
      const credential = await buyL402('/forecast');
      const response = await send(`${app.url}/other`, { headers: authorization(credential) });
      expect(refusal(response)).toEqual([401, 'wrong_service']);
    });

    it('refuses a token outside its scope: another path, another method', async () => {
      const credential = await buyL402('/scoped/a');
      const headers = authorization(credential);
      expect((await send(`${app.url}/scoped/a`, { headers })).status).toBe(200);
      const path = await send(`${app.url}/scoped/b`, { headers });
      expect(refusal(path)).toEqual([401, 'caveat_not_satisfied']);
      const method = await send(`${app.url}/scoped/a`, { method: 'POST', headers, body: '{}' });
      expect(refusal(method)).toEqual([401, 'caveat_not_satisfied']);
    });

    it('counts uses: a 2-use token makes two requests, the third gets 402 uses_exhausted', async () => {
      const headers = authorization(await buyL402('/twice'));
      const first = await send(`${app.url}/twice`, { headers });
      const second = await send(`${app.url}/twice`, { headers });
      expect([first.status, second.status]).toEqual([200, 200]);
      expect([first.json().payment, second.json().payment]).toMatchObject([
        { remainingUses: 1 },
        { remainingUses: 0 },
      ]);
      expect(refusal(await send(`${app.url}/twice`, { headers }))).toEqual([402, 'uses_exhausted']);
    });

    it('charges a use only for an answer below 400: a failed answer leaves the token as it was', async () => {
      const headers = authorization(await buyL402('/once'));
      onceStatus = 500;
      const failed = await send(`${app.url}/once`, { headers });
      expect(failed.status).toBe(500);
      expect(headerValues(failed, 'tollway-charged')).toEqual(['0']);
      onceStatus = 200;
      const served = await send(`${app.url}/once`, { headers });
      expect(served.status).toBe(200);
      expect(headerValues(served, 'tollway-charged')).toEqual(['1 uses']);
      expect(headerValues(served, 'tollway-remaining')).toEqual(['0 uses']);
      expect(refusal(await send(`${app.url}/once`, { headers }))).toEqual([402, 'uses_exhausted']);
    });

    it('meters an LLM stream: holds the reservation, charges the usage the answer reports', async () => {
      const body = JSON.stringify({
        model: 'test-model',
        max_tokens: 64,
        stream: true,
        messages: [],
      });
      const unpaid = await send(`${app.url}/llm`, { method: 'POST', body });
      expect(unpaid.status).toBe(402);
      const credential = await payL402(unpaid, dev.agent);
      const answer = await send(`${app.url}/llm`, {
        method: 'POST',
        body,
        headers: authorization(credential),
      });
      expect(answer.status).toBe(200);
      const cost = await llm.cost('test-model', {
        inputTokens: 12,
        cachedInputTokens: 0,
        outputTokens: 7,
      });
      // The stream ends with its receipt, as comment lines: it was charged before they left.
      const streamed = CHAT_STREAM.join('');
      expect(answer.body.slice(0, streamed.length)).toBe(streamed);
      expect(answer.body.slice(streamed.length)).toMatch(
        new RegExp(`^: tollway-charged ${cost} msat\n: tollway-remaining [0-9]+ msat\n\n$`),
      );
      const held = BigInt(
        (headerValues(answer, 'tollway-reserved')[0] ?? '0').split(' ')[0] ?? '0',
      );
      expect(held).toBe(
        await llm.price({
          method: 'POST',
          path: '/llm',
          query: new URLSearchParams(),
          headers: new Headers(),
          body: JSON.parse(body),
        }),
      );
      // Counters are kept per payment: under the invoice's payment hash.
      const account = bytesToHex(
        decodeIdentifier(
          parseMacaroon(credential.slice('L402 '.length).split(':')[0] ?? '').identifier,
        ).paymentHash,
      );
      await vi.waitFor(async () =>
        expect(await store.getUsage(account)).toMatchObject({ spentMsat: cost, heldMsat: 0n }),
      );
    });

    it('holds a session’s stream for a top-up when it runs out, and goes on once topped up', async () => {
      const ticks = `${app.url}/ticks`;
      const unpaid = await send(ticks, { method: 'POST', body: '{}' });
      const session = sessionChallenge(unpaid);
      const { depositInvoice = '', paymentHash: sessionId } = decodeSessionRequest(session.request);
      const { preimage } = await dev.agent.payInvoice({ paymentRequest: depositInvoice });
      const returnInvoice = (
        await dev.agent.createInvoice({ amountMsat: 0n, expirySeconds: 86_400 })
      ).paymentRequest;
      const open = formatPaymentCredential({
        challenge: session,
        payload: { action: 'open', preimage, returnInvoice },
      });
      // A 10 sat deposit pays two events of 5 sat: the stream waits at the third.
      const stream = await openStream(ticks, authorization(open), '{}');
      expect(stream.status).toBe(200);
      const needTopUp = `event: payment-need-topup\ndata: {"sessionId":"${sessionId}","balanceSpent":10,"balanceRequired":5}\n\n`;
      await vi.waitFor(() => expect(stream.received()).toContain(needTopUp));
      const fresh = sessionChallenge(await send(ticks, { method: 'POST', body: '{}' }));
      const topUpInvoice = decodeSessionRequest(fresh.request).depositInvoice ?? '';
      const topUpPreimage = (await dev.agent.payInvoice({ paymentRequest: topUpInvoice })).preimage;
      const topUp = formatPaymentCredential({
        challenge: fresh,
        payload: { action: 'topUp', sessionId, topUpPreimage },
      });
      const credited = await send(ticks, {
        method: 'POST',
        body: '{}',
        headers: authorization(topUp),
      });
      expect([credited.status, credited.json()]).toEqual([200, { status: 'ok' }]);
      const receipt = ': tollway-charged 20000 msat\n: tollway-remaining 0 msat\n\n';
      expect(await stream.whole).toBe(
        [...TICKS.slice(0, 2), needTopUp, ...TICKS.slice(2), receipt].join(''),
      );
      await vi.waitFor(async () =>
        expect(await store.getUsage(sessionId)).toMatchObject({ spentMsat: 20_000n, heldMsat: 0n }),
      );
    });

    it('refuses a revoked token with 401 token_revoked', async () => {
      const credential = await buyL402('/forecast');
      const headers = authorization(credential);
      const paid = await send(`${app.url}/forecast`, { headers });
      const tokenId = (paid.json().payment as { tokenId: string }).tokenId;
      await paywall.revoke(tokenId);
      expect(refusal(await send(`${app.url}/forecast`, { headers }))).toEqual([
        401,
        'token_revoked',
      ]);
    });

    it('refuses a forged token (one signature bit flipped) with 401 invalid_signature', async () => {
      const credential = await buyL402('/forecast');
      const [text = '', preimage = ''] = credential.slice('L402 '.length).split(':');
      const macaroon = parseMacaroon(text);
      const signature = macaroon.signature.slice();
      signature[0] = (signature[0] ?? 0) ^ 1;
      const forged = `L402 ${formatMacaroon({ ...macaroon, signature })}:${preimage}`;
      const response = await send(`${app.url}/forecast`, { headers: authorization(forged) });
      expect(refusal(response)).toEqual([401, 'invalid_signature']);
    });

    it("refuses token B with token A's preimage with 401 preimage_mismatch", async () => {
      const [a = '', b = ''] = await Promise.all([buyL402('/forecast'), buyL402('/forecast')]);
      const [macaroonB = ''] = b.slice('L402 '.length).split(':');
      const [, preimageA = ''] = a.slice('L402 '.length).split(':');
      const mixed = formatL402Credential({
        macaroons: [parseMacaroon(macaroonB)],
        preimage: hexToBytes(preimageA),
      });
      const response = await send(`${app.url}/forecast`, { headers: authorization(mixed) });
      expect(refusal(response)).toEqual([401, 'preimage_mismatch']);
    });

    it('refuses malformed credentials with 401 and the precise code, with a fresh challenge', async () => {
      const credential = await buyL402('/forecast');
      const [macaroon = ''] = credential.slice('L402 '.length).split(':');
      const cases: Array<[string, string]> = [
        ['L402 this is not a credential', 'invalid_credential'],
        [`L402 %%%not-base64%%%:${'ab'.repeat(32)}`, 'invalid_macaroon'],
        [`L402 ${macaroon}:abcd`, 'invalid_preimage'],
      ];
      for (const [value, code] of cases) {
        const response = await send(`${app.url}/forecast`, { headers: authorization(value) });
        expect([value, ...refusal(response)]).toEqual([value, 401, code]);
        expect(challengeSchemes(response)).toEqual(['LSAT', 'L402', 'Payment']);
      }
    });

    it('refuses two conflicting Authorization headers with 400 conflicting_credentials', async () => {
      const [a = '', b = ''] = await Promise.all([buyL402('/forecast'), buyL402('/forecast')]);
      const lines = await send(`${app.url}/forecast`, {
        headers: [...authorization(a), ...authorization(b)],
      });
      expect(refusal(lines)).toEqual([400, 'conflicting_credentials']);
      const joined = await send(`${app.url}/forecast`, { headers: authorization(`${a}, ${b}`) });
      expect(refusal(joined)).toEqual([400, 'conflicting_credentials']);
      const repeated = await send(`${app.url}/forecast`, {
        headers: [...authorization(a), ...authorization(a)],
      });
      expect(repeated.status).toBe(200);
    });

    it('prices by body: reads the JSON body for the engine and leaves it to the handler', async () => {
      const body = JSON.stringify({ sats: 7, note: 'x'.repeat(100_000) });
      const unpaid = await send(`${app.url}/priced`, { method: 'POST', body });
      expect(unpaid.status).toBe(402);
      expect(problemOf(unpaid).price).toMatchObject({ amount: '7000', unit: 'msat' });
      const credential = await payL402(unpaid, dev.agent);
      const paid = await send(`${app.url}/priced`, {
        method: 'POST',
        body,
        headers: authorization(credential),
      });
      expect(paid.status).toBe(200);
      expect(paid.json().body).toEqual(JSON.parse(body));
      // Fastify (and a body parser mounted before the paywall) refuse malformed JSON themselves.
      const malformed = await send(`${app.url}/priced`, { method: 'POST', body: '{"sats":' });
      expect(malformed.status).toBe(400);
    });

    it('answers 500 with a problem body, and reports it, when the paywall throws', async () => {
      const broken: PaywallHandler = { handle: () => Promise.reject(new Error('engine bug')) };
      const seen: unknown[] = [];
      const failing = await harness.serve(
        broken,
        [{ method: 'GET', path: '/x', route: routes.forecast as Route }],
        { onError: (error) => seen.push(error) },
      );
      try {
        const response = await send(`${failing.url}/x`);
        expect(refusal(response)).toEqual([500, 'internal_error']);
        expect(headerValues(response, 'content-type')).toEqual(['application/problem+json']);
        expect(seen).toEqual([new Error('engine bug')]);
        expect((await send(`${failing.url}/x`)).status).toBe(500);
      } finally {
        await failing.close();
      }
      expect(errors).toEqual([]);
    });

    describe('a payment that settles after the handler', () => {
      const events: string[] = [];
      const seen: unknown[] = [];
      let later: Paywall;
      let served: Served;
      /** What the streaming route waits for between its two chunks. */
      let streamGate: Promise<void> = Promise.resolve();

      /**
       * A settle-after kind (as x402 is): `Authorization: Later <id>` passes once; its settlement
       * fails for ids starting with `fail`. It offers nothing.
       */
      const laterKind: OfferKind = {
        name: 'later',
        offer: () => undefined,
        read(source) {
          const value = source.authorization.find((line) => line.startsWith('Later '));
          if (value === undefined) return undefined;
          const id = value.slice('Later '.length);
          return {
            kind: 'later',
            verify: () => ({
              ok: true,
              proof: {
                protocol: 'x402',
                tokenId: `later-${id}`,
                paymentHash: '00'.repeat(32),
                amountMsat: 10_000n,
                singleUse: { key: `later:${id}`, expiresAt: Date.now() + 60_000 },
                headers: [],
                settleAfter: true,
                settle: async () => {
                  events.push(`settle ${id}`);
                  return id.startsWith('fail')
                    ? {
                        ok: false,
                        code: 'x402_settlement_failed',
                        message: 'the facilitator refused',
                        headers: [['Payment-Response', `failed ${id}`]],
                      }
                    : {
                        ok: true,
                        headers: [['Payment-Response', `settled ${id}`]],
                        settlement: { reference: `tx-${id}`, amount: 10n, unit: 'usdc' },
                      };
                },
              },
            }),
          };
        },
      };

      /**
       * The engine, watched: reading the PaymentContext's `tokenId` marks the handler running (it
       * serialises it), and fails it for ids starting with `broken`; `finalize` records the status
       * the adapter commits the charge with.
       */
      const watched: PaywallHandler = {
        async handle(request: PaywallRequest, route: Route): Promise<PaywallDecision> {
          const decision = await later.handle(request, route);
          if (decision.kind !== 'pass' || decision.charge === undefined) return decision;
          const { charge } = decision;
          const tokenId = decision.payment.tokenId ?? '';
          Object.defineProperty(decision.payment, 'tokenId', {
            enumerable: true,
            get: () => {
              events.push(`handler ${tokenId}`);
              if (tokenId.startsWith('later-broken')) throw new Error('handler bug');
              return tokenId;
            },
          });
          return {
            ...decision,
            charge: {
              commit: (status) => {
                events.push(`finalize ${status}`);
                return charge.commit(status);
              },
              release: () => {
                events.push('release');
                return charge.release();
              },
            },
          };
        },
      };

      beforeAll(async () => {
        later = createPaywall({
          lightning: dev.shop,
          store: createMemoryStore(),
          secrets: [createMasterSecret()],
          rateLimits: { challenges: false },
          logger: createMemoryLogger(),
          offers: [laterKind],
        });
        const route = later.route({ service: 'later', price: '10 sat' });
        const routes: AppRoute[] = [
          { method: 'GET', path: '/later', route },
          { method: 'GET', path: '/later-stream', route, stream: () => streamGate },
        ];
        served = await harness.serve(watched, routes, { onError: (error) => seen.push(error) });
      });

      afterAll(async () => {
        await served?.close();
        await later?.close();
      });

      it('runs the handler, then settles with its status, and sends the settlement headers', async () => {
        events.length = 0;
        const response = await send(`${served.url}/later`, {
          headers: authorization('Later ok-1'),
        });
        expect(response.status).toBe(200);
        expect(response.json().payment).toMatchObject({ protocol: 'x402', tokenId: 'later-ok-1' });
        expect(headerValues(response, 'payment-response')).toEqual(['settled ok-1']);
        expect(events).toEqual(['handler later-ok-1', 'finalize 200', 'settle ok-1']);
        const replay = await send(`${served.url}/later`, { headers: authorization('Later ok-1') });
        expect(refusal(replay)).toEqual([401, 'credential_replayed']);
        expect(seen).toEqual([]);
      });

      it('settles when the status is committed, so a streamed answer streams', async () => {
        events.length = 0;
        let open: () => void = () => undefined;
        streamGate = new Promise((resolve) => {
          open = resolve;
        });
        const response = await openStream(
          `${served.url}/later-stream`,
          authorization('Later stream-1'),
        );
        expect(response.status).toBe(200);
        expect(headerValues(response, 'payment-response')).toEqual(['settled stream-1']);
        // The first chunk arrives while the handler still waits: nothing holds the body back.
        expect(await response.firstChunk).toBe('first\n');
        expect(events).toEqual(['finalize 200', 'settle stream-1']);
        open();
        expect(await response.whole).toBe('first\nlast\n');
        expect(seen).toEqual([]);
      });

      it('replaces the answer with the 402 when the settlement fails', async () => {
        events.length = 0;
        const response = await send(`${served.url}/later`, {
          headers: authorization('Later fail-1'),
        });
        expect(refusal(response)).toEqual([402, 'x402_settlement_failed']);
        expect(headerValues(response, 'payment-response')).toEqual(['failed fail-1']);
        expect(headerValues(response, 'content-type')).toEqual(['application/problem+json']);
        expect(response.body).not.toContain('later-fail-1');
        expect(events).toEqual(['handler later-fail-1', 'finalize 200', 'settle fail-1']);
        expect(seen).toEqual([]);
      });

      // The node harness's handler does not catch its own errors (they are the app's, unanswered).
      it.skipIf(harness.name === 'node')(
        'does not settle when the handler answers >= 400',
        async () => {
          events.length = 0;
          const response = await send(`${served.url}/later`, {
            headers: authorization('Later broken-1'),
          });
          expect(response.status).toBe(500);
          expect(headerValues(response, 'payment-response')).toEqual([]);
          const outcome = harness.handlerErrorsReachAdapter ? 'release' : 'finalize 500';
          expect(events).toEqual(['handler later-broken-1', outcome]);
        },
      );
    });
  });
}

/** Fires `count` requests with one credential at once, spread over `urls`; returns the statuses. */
async function burst(urls: readonly string[], credential: string, count: number) {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      send(urls[index % urls.length] ?? '', { headers: authorization(credential) }),
    ),
  );
  return responses.map((response) =>
    response.status === 200 ? 'ok' : `${response.status} ${problemOf(response).code}`,
  );
}

/** Paywalls on `stores` (one instance each, one shared secret), each served by the adapter. */
async function serveInstances(harness: AdapterHarness, stores: readonly Store[]) {
  const dev = createDevSetup();
  const secret = createMasterSecret();
  const errors: unknown[] = [];
  const instances = await Promise.all(
    stores.map(async (store) => {
      const paywall = createPaywall({
        lightning: dev.shop,
        store,
        secrets: [secret],
        rateLimits: { challenges: false },
        logger: createMemoryLogger(),
      });
      const route = paywall.route({ service: 'bundle', price: '10 sat', uses: 10 });
      const served = await harness.serve(paywall, [{ method: 'GET', path: '/ten', route }], {
        onError: (error) => errors.push(error),
      });
      return { paywall, served, store };
    }),
  );
  return {
    dev,
    errors,
    urls: instances.map((instance) => `${instance.served.url}/ten`),
    async close() {
      for (const { paywall, served, store } of instances) {
        await served.close();
        await paywall.close();
        await store.close();
      }
      await dev.network.close();
    },
  };
}

/**
 * Concurrency on one SQLite store: 50 parallel requests with a 10-use token, exactly 10 pass.
 */
export function describeSqliteConcurrency(harness: AdapterHarness): void {
  describe(`${harness.name} adapter: 50 parallel requests on a 10-use token (sqlite)`, () => {
    it('lets exactly 10 through', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tollway-adapter-'));
      const store = createSqliteStore({ path: join(dir, 'paywall.sqlite') });
      const setup = await serveInstances(harness, [store]);
      try {
        const [url = ''] = setup.urls;
        const credential = await payL402(await send(url), setup.dev.agent);
        const outcomes = await burst(setup.urls, credential, 50);
        expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(10);
        expect(new Set(outcomes.filter((outcome) => outcome !== 'ok'))).toEqual(
          new Set(['402 uses_exhausted']),
        );
        expect(setup.errors).toEqual([]);
      } finally {
        await setup.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * Concurrency across two engine instances on one PostgreSQL: 50 parallel requests with a 10-use
 * token, split between the instances, exactly 10 pass. Under CI a missing PostgreSQL fails the run;
 * locally the test is skipped loudly.
 */
export async function describePostgresConcurrency(harness: AdapterHarness): Promise<void> {
  const postgres = await startTestPostgres();
  afterAll(async () => {
    await postgres?.stop();
  });
  const title = `${harness.name} adapter: 50 parallel requests on a 10-use token, two instances (postgres)`;
  if (postgres === undefined) {
    describe.skip(`${title}: SKIPPED, PostgreSQL is unavailable (see the warning above)`, () => {
      it('runs once PostgreSQL is available', () => {});
    });
    return;
  }
  describe(title, () => {
    it('lets exactly 10 through', async () => {
      const connectionString = await postgres.createDatabase();
      const stores = [0, 1].map(() => createPostgresStore({ connectionString }));
      await stores[0]?.init();
      const setup = await serveInstances(harness, stores);
      try {
        const [url = ''] = setup.urls;
        const credential = await payL402(await send(url), setup.dev.agent);
        const outcomes = await burst(setup.urls, credential, 50);
        expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(10);
        expect(new Set(outcomes.filter((outcome) => outcome !== 'ok'))).toEqual(
          new Set(['402 uses_exhausted']),
        );
        expect(setup.errors).toEqual([]);
      } finally {
        await setup.close();
      }
    });
  });
}
