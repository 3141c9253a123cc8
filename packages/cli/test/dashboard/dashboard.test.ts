import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeIdentifier, parseL402Credential } from '@tollway/sdk/l402';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DemoResult, runDemo } from '../../src/dev/demo.js';
import { type DevSandbox, startDevSandbox } from '../../src/dev/dev.js';
import { launchChromium, requireChromium, type TestBrowser } from '../support/browser.js';

/** The token id (hex) inside an `Authorization: L402 …` value. */
function tokenIdOf(authorization: string): string {
  const macaroon = parseL402Credential(authorization)?.macaroons[0];
  if (macaroon === undefined) throw new Error('no macaroon in the credential');
  return Buffer.from(decodeIdentifier(macaroon.identifier).tokenId).toString('hex');
}

function paid(result: DemoResult): Extract<DemoResult, { ok: true }> {
  if (!result.ok) throw new Error(`the payment failed at step ${result.step}: ${result.message}`);
  return result;
}

// Real Chromium against a real gateway (the `tollway dev` sandbox on a free port) after a known
// sequence of payments: two forecasts at 10 sat, one stream at 20 sat, and a 100 sat balance for
// the metered chat, drawn by one call.
describe.skipIf(!requireChromium())('the gateway dashboard in Chromium', () => {
  let dir: string;
  let sandbox: DevSandbox;
  let browser: TestBrowser;
  let page: Page;
  const payments: Array<Extract<DemoResult, { ok: true }>> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollway-dashboard-'));
    sandbox = await startDevSandbox({ dir, port: 0, print: () => {}, warn: () => {} });
    payments.push(paid(await sandbox.demo()), paid(await sandbox.demo()));
    payments.push(
      paid(
        await runDemo({
          url: `${sandbox.gatewayUrl}/v1/stream`,
          wallet: sandbox.network.backend('demo-agent'),
          walletName: 'demo-agent',
          print: () => {},
        }),
      ),
    );
    const metered = await sandbox.meteredDemo();
    if (!metered.ok) throw new Error(`the metered call failed: ${metered.message}`);
    // Settlements are recorded in the background: wait until the gateway has all four.
    await vi.waitFor(
      async () => {
        const res = await fetch(`${sandbox.adminUrl}/payments`, {
          headers: { authorization: `Bearer ${sandbox.adminToken}` },
        });
        expect(((await res.json()) as { payments: unknown[] }).payments).toHaveLength(4);
      },
      { timeout: 10_000, interval: 100 },
    );
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(sandbox.dashboardUrl);
    await page.waitForSelector('body[data-state="ready"]');
  });

  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The text of the first element matching `selector`. */
  const text = async (selector: string) =>
    ((await page.locator(selector).first().textContent()) ?? '').trim();

  it('signs in by the link, then drops the token from the address bar', () => {
    expect(page.url()).toBe(`${sandbox.adminUrl}/dashboard`);
  });

  it('labels the sandbox and shows the revenue total, the payment count and the active tokens', async () => {
    const banner = await text('[role="note"]');
    expect(banner).toContain('SANDBOX');
    expect(banner).toContain('play money');
    expect(await page.title()).toContain('SANDBOX');
    expect(await text('#revenue-total')).toBe('140 sat');
    expect(await text('#revenue-day')).toBe('140 sat');
    expect(await text('#payments-count')).toBe('4');
    expect(await text('#tokens-active')).toBe('4');
    // This hour's bar of the chart holds all four payments.
    expect(await page.locator('#chart rect.bar').count()).toBe(1);
    expect(await page.locator('#chart rect.bar title').textContent()).toMatch(
      /: 140 sat from 4 payments$/,
    );
  });

  it('lists each recent payment with its service, protocol and amount', async () => {
    const rows = page.locator('#payments tbody tr');
    expect(await rows.count()).toBe(4);
    expect(await rows.filter({ hasText: 'llm' }).textContent()).toContain('100 sat');
    const stream = await rows.filter({ hasText: 'stream' }).textContent();
    expect(stream).toContain('L402');
    expect(stream).toContain('20 sat');
    expect(await rows.filter({ hasText: 'forecast' }).count()).toBe(2);
    const hash = payments[0]?.paymentHash ?? '';
    expect(await page.locator(`#payments code[title="${hash}"]`).count()).toBe(1);
  });

  it('lists the services with their prices', async () => {
    const service = (name: string) =>
      page
        .locator('#services tbody tr')
        .filter({ has: page.getByRole('cell', { name, exact: true }) })
        .textContent();
    expect(await service('forecast')).toContain('10 sat per token');
    expect(await service('forecast')).toContain('valid for 1h');
    expect(await service('chat')).toContain('model = tollway-max: 50 sat');
    expect(await service('hello')).toContain('free');
    expect(await service('llm')).toContain(
      'per million tokens, tollway-mini: 20000 sat in, 60000 sat out; tollway-max: 100000 sat in, 300000 sat out',
    );
    expect(await service('llm')).toContain('a prepaid balance of 100 sat');
  });

  it('shows the tokens and charges of metered LLM calls by model', async () => {
    const rows = page.locator('#models tbody tr');
    expect(await rows.count()).toBe(1);
    // The sandbox's call: 11 tokens in, 25 out, 11 × 20 + 25 × 60 msat.
    const cells = await rows.first().locator('td').allTextContents();
    expect(cells).toEqual(['llm', 'tollway-mini', '1', '11', '0', '25', '1.72 sat']);
  });

  it('shows what a service in shadow mode would have charged, while it charged nothing', async () => {
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${sandbox.adminUrl}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${sandbox.adminToken}`,
          'content-type': 'application/json',
        },
      });
    const forecast = (await (await admin('/services/forecast')).json()) as {
      config: { upstream: string };
    };
    const put = await admin('/services/preview', {
      method: 'PUT',
      body: JSON.stringify({
        path: '/preview',
        upstream: forecast.config.upstream,
        price: '7 sat',
        shadow: true,
      }),
    });
    expect(put.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      // Passed to the sample upstream unpaid (which knows no /preview: its 404, not a 402).
      const response = await fetch(`${sandbox.gatewayUrl}/preview/x`);
      expect(response.status).toBe(404);
      expect(response.headers.get('www-authenticate')).toBeNull();
      await response.arrayBuffer();
    }
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]');
    const row = page
      .locator('#shadow tbody tr')
      .filter({ has: page.getByRole('cell', { name: 'preview', exact: true }) });
    expect(await row.locator('td').allTextContents()).toEqual(['preview', '3', '21 sat']);
    expect(
      await page
        .locator('#services tbody tr')
        .filter({ has: page.getByRole('cell', { name: 'preview', exact: true }) })
        .textContent(),
    ).toContain('7 sat per token (shadow mode: not charged)');
    // Nothing was paid: the count is that of the payments before.
    expect(await text('#payments-count')).toBe('4');
  });

  it('revokes a token from its row, and the gateway refuses it from then on', async () => {
    const first = payments[0];
    if (first === undefined) throw new Error('no payment');
    const tokenId = tokenIdOf(first.authorization);
    const again = () =>
      fetch(`${sandbox.gatewayUrl}/v1/forecast?city=Lisbon`, {
        headers: { authorization: first.authorization },
      });
    expect((await again()).status).toBe(200);

    const row = page.locator('#tokens tbody tr', { has: page.locator(`code[title="${tokenId}"]`) });
    expect(await row.textContent()).toMatch(/forecast[\s\S]*active/);

    await row.getByRole('button', { name: /Revoke/ }).click();
    await expect
      .poll(() => text('#notice'))
      .toBe(`Token ${tokenId.slice(0, 10)}… of forecast revoked.`);
    await expect.poll(() => row.textContent()).toContain('revoked');
    expect(await row.getByRole('button').count()).toBe(0);
    expect(await text('#tokens-active')).toBe('3');
    // For a person to look at (not committed): the page after the revocation.
    const screenshot = join(tmpdir(), 'tollway-dashboard.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`dashboard screenshot: ${screenshot}`);
    await expect.poll(async () => (await again()).status).toBe(401);
  });
});
