// The ledger view of `tollway ledger --serve` in real Chromium, after a known sequence of real
// payments: two agents' paying fetches (and one `tollway fetch`, untagged) pay Tollway's own
// engine on loopback through the embedded dev Lightning node, one of them in an MPP session whose
// close refunds what it did not draw. The page must show what the ledger holds, exactly; its kill
// switch must stop the next payment of every agent on the ledger, wallet untouched, until resumed.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTollwayError } from '@tollway/sdk';
import {
  type AgentBudget,
  type ClientStore,
  createBudget,
  createPayingFetch,
  createSqliteClientStore,
  type LedgerEntry,
  type PayingFetch,
} from '@tollway/sdk/client';
import { wrapBackend } from '@tollway/sdk/lightning';
import {
  createDevNetwork,
  createDevServer,
  type DevNetwork,
  type DevServer,
} from '@tollway/sdk/lightning/dev';
import { withPaywall } from '@tollway/sdk/node';
import { createMasterSecret, createPaywall } from '@tollway/sdk/server';
import { createMemoryStore } from '@tollway/sdk/stores/memory';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerView, startLedgerView } from '../../src/ledger-view/server.js';
import { runCli } from '../run-cli.js';
import { launchChromium, requireChromium, type TestBrowser } from '../support/browser.js';

const FUNDS = 1_000_000_000n;
const TOKEN = 'ledger-view-test-token';
/** The budget windows the agents hold in, and the view is told (as `--budget-hour 500 --budget-day 1000`). */
const WINDOWS = { hour: 500_000n, day: 1_000_000n };

let dir: string;
let network: DevNetwork;
let devServer: DevServer;
let shop: Server;
let base: string;
let store: ClientStore;
let budget: AgentBudget;
let researcher: PayingFetch;
let writer: PayingFetch;
let view: LedgerView;
let viewStore: ClientStore;
let browser: TestBrowser;
let page: Page;
let cliWallet: string[];
const db = () => join(dir, 'agent.sqlite');
const balance = () => network.getWallet('agent')?.balanceMsat ?? 0n;

/** Whole sats as the page writes them: `30 sat`, `-15 sat`. */
function sat(msat: bigint): string {
  if (msat % 1000n !== 0n) throw new Error(`${msat} msat is not whole sats`);
  return `${msat / 1000n} sat`;
}

/** The spend of the entries of one group, summed here from the ledger's entries. */
function groupSpend(entries: readonly LedgerEntry[]) {
  const total = (kind: LedgerEntry['kind'], status: LedgerEntry['status']) =>
    entries
      .filter((e) => e.kind === kind && e.status === status)
      .reduce((sum, e) => ({ count: sum.count + 1, msat: sum.msat + e.amountMsat }), {
        count: 0,
        msat: 0n,
      });
  const paid = total('purchase', 'succeeded');
  const fees = entries
    .filter((e) => e.kind === 'purchase' && e.status === 'succeeded')
    .reduce((sum, e) => sum + e.feeMsat, 0n);
  const refunded = total('refund', 'succeeded').msat;
  const charged = total('draw', 'succeeded');
  const unsettled = total('draw', 'pending');
  return [
    `${sat(paid.msat)} (${paid.count})`,
    sat(fees),
    sat(refunded),
    sat(paid.msat + fees - refunded),
    String(charged.count + unsettled.count),
    sat(charged.msat),
    sat(unsettled.msat),
    String(entries.filter((e) => e.kind === 'release').length),
  ];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollway-ledger-view-'));
  network = createDevNetwork({ path: ':memory:' });
  network.openWallet('shop', { balanceMsat: FUNDS });
  const { token } = network.openWallet('agent', { balanceMsat: FUNDS });
  devServer = await createDevServer({ network });
  cliWallet = ['--wallet', `dev+${devServer.url}?wallet=agent&token=${token}`, '--db', db()];

  const paywall = createPaywall({
    lightning: wrapBackend(network.backend('shop')),
    store: createMemoryStore(),
    secrets: [createMasterSecret()],
    rateLimits: { challenges: false },
    logger: { warn: () => undefined, error: () => undefined },
    sessions: { idleTimeout: 600 },
  });
  const answer = withPaywall.bind(null, paywall);
  const ok = (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  };
  const routes = new Map([
    ['/forecast', answer(paywall.route({ service: 'forecast', price: '10 sat' }), ok)],
    ['/report', answer(paywall.route({ service: 'report', price: '20 sat' }), ok)],
    ['/fresh', answer(paywall.route({ service: 'fresh', price: '5 sat' }), ok)],
    ['/news', answer(paywall.route({ service: 'news', price: '5 sat' }), ok)],
    ['/chat', answer(paywall.route({ service: 'chat', price: '10 sat', balance: '50 sat' }), ok)],
  ]);
  shop = createServer((req, res) => {
    const handler = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (handler === undefined) res.writeHead(404).end();
    else void handler(req, res);
  });
  await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;

  store = createSqliteClientStore({ path: db() });
  budget = createBudget({ store, limits: { hour: '500 sat', day: '1000 sat' } });
  const wallet = wrapBackend(network.backend('agent'));
  researcher = createPayingFetch({ wallets: wallet, store, budget, tags: { agent: 'researcher' } });
  writer = createPayingFetch({
    wallets: wallet,
    store,
    budget,
    tags: { agent: 'writer' },
    preferences: ['mpp-session', 'l402'],
  });

  // The known sequence: researcher pays 10 + 20 sat for task t1; writer opens a 50 sat session for
  // task t2 with model "mini", draws 3 × 10 sat, closes it and gets 20 sat back; one `tollway
  // fetch` (no tags, no budget window) pays 5 sat.
  const t1 = { tags: { task: 't1' } };
  expect((await researcher(`${base}/forecast`, t1)).status).toBe(200);
  expect((await researcher(`${base}/report`, t1)).status).toBe(200);
  for (let i = 0; i < 3; i++) {
    const response = await writer(`${base}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mini', prompt: `question ${i}` }),
      tags: { task: 't2' },
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }
  expect(await writer.close()).toEqual([expect.objectContaining({ refundMsat: 20_000n })]);
  const cli = await runCli('fetch', `${base}/news`, ...cliWallet);
  expect(cli.code).toBe(0);
  expect(FUNDS - balance()).toBe(10_000n + 20_000n + 50_000n - 20_000n + 5_000n);

  // The view opens the agent's file on a connection of its own, as `tollway ledger --serve` does.
  viewStore = createSqliteClientStore({ path: db() });
  view = await startLedgerView({
    store: viewStore,
    budget: createBudget({ store: viewStore, limits: WINDOWS }),
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    logError: (error) => {
      throw error;
    },
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await view?.close();
  await viewStore?.close();
  await store?.close();
  shop?.closeAllConnections();
  await new Promise((resolve) => shop?.close(resolve));
  await devServer?.close();
  await network?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the ledger view API', () => {
  const api = (path: string, init: RequestInit = {}) => fetch(`${view.url}${path}`, init);
  const bearer = { authorization: `Bearer ${TOKEN}` };

  it('answers nothing without the token, and a wrong sign-in link is refused', async () => {
    for (const path of ['/', '/api/budget', '/api/entries']) {
      const response = await api(path);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ code: 'admin_unauthorized' });
    }
    expect((await api('/?token=wrong', { redirect: 'manual' })).status).toBe(401);
    expect((await api('/api/pause', { method: 'POST' })).status).toBe(401);
    expect(await viewStore.isPaused()).toBe(false);
  });

  it('signs a browser in by the link with an HttpOnly, SameSite=Strict cookie', async () => {
    const response = await api(`/?token=${TOKEN}`, { redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/');
    expect(response.headers.get('set-cookie')).toMatch(
      /^tollway_ledger=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/,
    );
    expect(response.headers.get('set-cookie')).not.toContain(TOKEN);
  });

  it('refuses a pause with the cookie from another origin (CSRF), and takes it with the bearer token', async () => {
    const signIn = await api(`/?token=${TOKEN}`, { redirect: 'manual' });
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const forged = await api('/api/pause', {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ code: 'cross_origin_refused' });
    const noOrigin = await api('/api/pause', { method: 'POST', headers: { cookie } });
    expect(noOrigin.status).toBe(403);
    expect(await viewStore.isPaused()).toBe(false);
    // Reads with the cookie are fine from anywhere the browser sends it: they change nothing.
    expect((await api('/api/budget', { headers: { cookie } })).status).toBe(200);
    const paused = await api('/api/pause', { method: 'POST', headers: bearer });
    expect(await paused.json()).toEqual({ paused: true });
    expect(await store.isPaused()).toBe(true);
    const resumed = await api('/api/resume', { method: 'POST', headers: bearer });
    expect(await resumed.json()).toEqual({ paused: false });
    expect(await store.isPaused()).toBe(false);
  });

  it('answers bad parameters with 400 invalid_request, and unknown endpoints with 404', async () => {
    for (const path of ['/api/spend?by=colour', '/api/spend?bucket=week', '/api/entries?limit=x']) {
      const response = await api(path, { headers: bearer });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: 'invalid_request' });
    }
    expect((await api('/api/nothing', { headers: bearer })).status).toBe(404);
    expect((await api('/api/budget', { method: 'DELETE', headers: bearer })).status).toBe(404);
  });
});

describe.skipIf(!requireChromium())('the ledger view in Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.context.newPage();
    await page.goto(view.signInUrl);
    await page.waitForSelector('body[data-state="ready"]');
  });

  /** The cells of every row of the table in `id`, by its first cell. */
  async function rows(id: string): Promise<Record<string, string[]>> {
    const all: Record<string, string[]> = {};
    for (const row of await page.locator(`#${id} tbody tr`).all()) {
      const [key = '', ...cells] = await row.locator('td').allTextContents();
      all[key] = cells;
    }
    return all;
  }

  /** Chooses a grouping and bucket and waits for the page to show them. */
  async function show(by: string, bucket: 'hour' | 'day') {
    await page.selectOption('#by', by);
    await page.selectOption('#bucket', bucket);
    await page.waitForSelector(`body[data-view="${by}/${bucket}"]`);
  }

  it('signs in by the link, then drops the token from the address bar', () => {
    expect(page.url()).toBe(`${view.url}/`);
  });

  it('shows spend by agent, task and model as the ledger holds it', async () => {
    const entries = await store.list();
    for (const tag of ['agent', 'task', 'model'] as const) {
      await show(tag, 'hour');
      const keys = [...new Set(entries.map((e) => e.tags[tag] ?? ''))].sort();
      const expected = Object.fromEntries(
        keys.map((key) => [
          key === '' ? '(none)' : key,
          groupSpend(entries.filter((e) => (e.tags[tag] ?? '') === key)),
        ]),
      );
      expect(await rows('spend-groups')).toEqual(expected);
    }
    // The same, written out for the agents: researcher paid 30 sat for two tokens; writer 50 sat
    // for the session, drew 30 sat of it in three calls and got 20 sat back.
    await show('agent', 'hour');
    const byAgent = await rows('spend-groups');
    expect(byAgent.researcher?.slice(0, 4)).toEqual(['30 sat (2)', '0 sat', '0 sat', '30 sat']);
    expect(byAgent.writer?.slice(0, 6)).toEqual([
      '50 sat (1)',
      '0 sat',
      '20 sat',
      '30 sat',
      '3',
      '30 sat',
    ]);
    expect(byAgent['(none)']?.slice(0, 4)).toEqual(['5 sat (1)', '0 sat', '0 sat', '5 sat']);
    await show('model', 'hour');
    expect((await rows('spend-groups')).mini?.slice(0, 6)).toEqual([
      '50 sat (1)',
      '0 sat',
      '0 sat',
      '50 sat',
      '3',
      '30 sat',
    ]);
  });

  it('shows the totals, and per hour or per day, net spend that adds up to them', async () => {
    for (const bucket of ['hour', 'day'] as const) {
      await show('origin', bucket);
      expect(await page.locator('#net').textContent()).toBe('65 sat');
      expect(await page.locator('#paid').textContent()).toBe('85 sat');
      expect(await page.locator('#refunded').textContent()).toBe('20 sat');
      expect(await page.locator('#charged').textContent()).toBe(
        sat(
          (await store.list({ kind: 'draw', status: 'succeeded' })).reduce(
            (sum, e) => sum + e.amountMsat,
            0n,
          ),
        ),
      );
      // One origin: its column of the per-period table sums to the net spend.
      const periods = Object.values(await rows('spend-buckets'));
      const net = periods.reduce(
        (sum, [cell = '—']) => sum + (cell === '—' ? 0 : parseInt(cell, 10)),
        0,
      );
      expect(net).toBe(65);
      // The chart draws the periods that spent more than they got back (a refund may fall in a
      // later period than its deposit).
      const positive = periods.reduce(
        (sum, [cell = '—']) => sum + Math.max(0, parseInt(cell, 10) || 0),
        0,
      );
      const bars = await page.locator('#chart rect.bar title').allTextContents();
      expect(bars.reduce((sum, title) => sum + parseInt(title.split(': ')[1] ?? '', 10), 0)).toBe(
        positive,
      );
    }
  });

  it('shows what each budget window has left, as the budget counts it', async () => {
    // The budget holds what the agents' paying fetches paid under it (not the untagged tollway
    // fetch, which had no window): 10 + 20 + 50 − 20 (the refund) = 60 sat.
    const status = await budget.status();
    expect(status.map((w) => [w.window, w.spentMsat])).toEqual([
      ['hour', 60_000n],
      ['day', 60_000n],
    ]);
    expect(await rows('windows')).toEqual({
      'Last hour': ['500 sat', '60 sat', '0 sat', '440 sat'],
      'Last 24 hours': ['1,000 sat', '60 sat', '0 sat', '940 sat'],
      'Last 30 days': ['no limit', '60 sat', '0 sat', '—'],
      'All time': ['no limit', '60 sat', '0 sat', '—'],
    });
  });

  it('lists the recent payments, draws and the refund, newest first', async () => {
    const entries = await store.list({ limit: 50 });
    const shown = await page.locator('#entries tbody tr').all();
    expect(shown).toHaveLength(entries.length);
    const cells = await Promise.all(
      shown.map(async (row) => (await row.locator('td').allTextContents()).slice(1, 8)),
    );
    expect(cells).toEqual(
      entries.map((e) => [
        e.kind,
        e.status,
        e.origin,
        new URL(e.url).pathname,
        e.protocol,
        sat(e.amountMsat),
        sat(e.feeMsat),
      ]),
    );
    expect(cells.filter(([kind]) => kind === 'refund')).toEqual([
      ['refund', 'succeeded', base, '/chat', 'mpp-session', '20 sat', '0 sat'],
    ]);
  });

  it('stops every agent of the ledger with one click, wallet untouched, until resumed', async () => {
    const before = balance();
    const entries = (await store.list()).length;
    await page.click('#pause-button');
    await page.waitForSelector('body[data-paused="true"]');
    expect(await page.locator('#pause-state').textContent()).toBe('paused');
    expect(await page.locator('#notice').textContent()).toContain('Payments paused');
    expect(await store.isPaused()).toBe(true);

    // tollway fetch: refused before paying, exit 2 (a refusal of the budget kind).
    const refused = await runCli('fetch', `${base}/fresh`, ...cliWallet);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('payments_paused');
    // A paying fetch of the SDK (the agents above): refused the same way.
    const error = await researcher(`${base}/fresh`).catch((caught: unknown) => caught);
    expect(isTollwayError(error, 'payments_paused')).toBe(true);
    expect(balance()).toBe(before);
    expect(await store.list()).toHaveLength(entries);

    await page.click('#pause-button');
    await page.waitForSelector('body[data-paused="false"]');
    expect(await page.locator('#pause-button').textContent()).toBe('Pause all payments');
    const paid = await runCli('fetch', `${base}/fresh`, ...cliWallet);
    expect(paid.code).toBe(0);
    expect(balance()).toBe(before - 5_000n);
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]');
    expect(await page.locator('#entries tbody tr').first().locator('td').nth(4).textContent()).toBe(
      '/fresh',
    );
    // For a person to look at (not committed): the page after the sequence.
    await show('agent', 'hour');
    const screenshot = join(tmpdir(), 'tollway-ledger-view.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`ledger view screenshot: ${screenshot}`);
  });
});
