// Security of the admin surface: what a holder of the admin token (or a page the dashboard's browser
// visits) can and cannot reach. The operator's environment belongs to the config file: data sent
// over the admin API never expands `${ENV}` unless the config names the variable in `admin.env`.
// Changes authorised by the dashboard cookie must come from the gateway's own origin (CSRF).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { ADMIN_TOKEN, createHarness, type Harness } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

const SECRET = 'the-master-secret-of-the-operator';

function admin(gateway: Gateway, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.adminUrl}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      'content-type': 'application/json',
      ...init.headers,
    },
  });
}

describe('admin API data never reads the environment (finding 1)', () => {
  it('refuses a service whose header names an environment variable the config did not allow', async () => {
    const gateway = await harness.start({ services: [] }, { env: { TW_SECRETS: SECRET } });
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'leak',
        path: '/leak',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Leak': '${TW_SECRETS}', 'X-Default': '${TW_SECRETS:-x}' },
      }),
    });
    expect(created.status).toBe(400);
    const problem = (await created.json()) as { code: string; detail: string };
    expect(problem.code).toBe('invalid_config');
    expect(problem.detail).toContain('admin.env');
    expect((await fetch(`${gateway.url}/leak`)).status).toBe(404);
    expect(JSON.stringify(harness.received)).not.toContain(SECRET);
  });

  it('expands only the variables listed in admin.env; `$$` stays a literal dollar', async () => {
    const gateway = await harness.start(
      { admin: { token: ADMIN_TOKEN, env: ['UPSTREAM_KEY'] }, services: [] },
      { env: { UPSTREAM_KEY: 'k-123', TW_SECRETS: SECRET } },
    );
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'api',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Api-Key': '${UPSTREAM_KEY}', 'X-Literal': '$${TW_SECRETS}' },
      }),
    });
    expect(created.status).toBe(201);
    expect((await fetch(`${gateway.url}/x`)).status).toBe(200);
    expect(harness.received[0]?.headers).toMatchObject({
      'x-api-key': 'k-123',
      'x-literal': '${TW_SECRETS}',
    });
  });

  it('refuses, at start, an overlay file that names a variable the config did not allow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-overlay-'));
    writeFileSync(
      join(dir, 'services.json'),
      JSON.stringify({
        services: [
          {
            name: 'leak',
            service: {
              upstream: harness.upstream.url,
              auth: 'off',
              headers: { X: '${TW_SECRETS}' },
            },
          },
        ],
      }),
    );
    const error = await harness
      .start({ dataDir: dir, services: [] }, { env: { TW_SECRETS: SECRET } })
      .catch((caught: unknown) => caught);
    rmSync(dir, { recursive: true, force: true });
    expect(String(error)).toContain('admin.env');
  });

  it('refuses header values that would break the request line (CR, LF, NUL), from the API and the file', async () => {
    const gateway = await harness.start({ services: [] });
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'split',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Split': 'a\r\nX-Injected: 1' },
      }),
    });
    expect(created.status).toBe(400);
    expect(await created.json()).toMatchObject({ code: 'invalid_config' });
    await expect(
      harness.start({
        services: [
          { name: 's', upstream: harness.upstream.url, auth: 'off', headers: { X: 'a\u0000b' } },
        ],
      }),
    ).rejects.toThrow(/headers\.X/);
  });
});
